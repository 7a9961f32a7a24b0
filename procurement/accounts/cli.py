"""`localvalue tokens ...`: API tokens (shown once, stored hashed): create, list, revoke."""

from __future__ import annotations

import datetime as dt

import click

from procurement.commands import run_async

ROLES = ("admin", "editor", "reviewer", "cross_reviewer")


@click.group(name="tokens", help="API tokens for people and scripts: create (shown once), list and revoke.")
def tokens_group() -> None:
    pass


@tokens_group.command(name="create")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option(
    "--org",
    "orgs",
    multiple=True,
    help="Organisation id, ODS or GSS code: the editor's one organisation, or each one a reviewer reviews.",
)
@click.option(
    "--group", "groups", multiple=True, help="Anchor group slug a reviewer reviews (its members as they change)."
)
@click.option("--name", required=True, help="Who the token is for, e.g. 'jo.bloggs@uhb' (unique).")
@click.option("--expires-in", default=None, help="Lifetime such as 90d, 12h or 2w (default: until revoked).")
def create_token_command(
    role: str, orgs: tuple[str, ...], groups: tuple[str, ...], name: str, expires_in: str | None
) -> None:
    """Create a user with ROLE (and its organisations) and print a new token for it, once.

    \b
    Editors act for one organisation (--org RBK); reviewers review the organisations and anchor groups given
    (--org RRK --org E08000025, --group birmingham-and-solihull); cross_reviewer reviews every organisation.
    """
    from procurement.accounts.service import create_token, parse_duration
    from procurement.db import session_scope

    async def go() -> str:
        lifetime = parse_duration(expires_in) if expires_in else None
        async with session_scope() as session:
            token, _ = await create_token(session, role=role, orgs=orgs, groups=groups, name=name, expires_in=lifetime)
            return token

    token = run_async(go)
    click.echo(token)
    click.echo(f"# {role} token for {name}; shown once, store it safely.", err=True)


@tokens_group.command(name="list")
@click.option("--active", is_flag=True, help="Leave out revoked tokens.")
def list_tokens_command(active: bool) -> None:
    """List tokens: id, prefix, user, role, organisations, created, expires, last used, revoked."""
    from procurement.accounts.service import list_tokens
    from procurement.db import session_scope

    async def go() -> list[str]:
        def day(value: dt.datetime | None) -> str:
            return value.isoformat(timespec="minutes") if value is not None else "-"

        async with session_scope() as session:
            rows, _ = await list_tokens(session, include_revoked=not active)
            return [
                "\t".join(
                    (
                        str(r.token.id),
                        r.token.token_prefix,
                        r.token.name,
                        r.user.role,
                        ",".join((*r.organisations, *(f"group:{g}" for g in r.groups))) or "all",
                        f"created {day(r.token.created_at)}",
                        f"expires {day(r.token.expires_at)}",
                        f"used {day(r.token.last_used_at)}",
                        f"revoked {day(r.token.revoked_at)}",
                    )
                )
                for r in rows
            ]

    lines = run_async(go)
    for line in lines:
        click.echo(line)
    if not lines:
        click.echo("No tokens.", err=True)


@tokens_group.command(name="revoke")
@click.argument("token_id", type=click.IntRange(min=1, max=2**63 - 1))
@click.option("--reason", required=True, help="Why, for the audit trail, e.g. 'left the trust'.")
def revoke_token_command(token_id: int, reason: str) -> None:
    """Revoke the token TOKEN_ID (see `tokens list`); requests with it get 401 within 3 seconds."""
    from procurement.accounts.service import revoke_token
    from procurement.db import session_scope

    async def go() -> str:
        async with session_scope() as session:
            token = await revoke_token(session, token_id, reason=reason, actor=None)
            return f"Revoked token {token.id} ({token.token_prefix}…, {token.name})."

    click.echo(run_async(go))


@click.group(name="users", help="People who sign in to the workspace (passwords set by the person, never shown).")
def users_group() -> None:
    pass


@users_group.command(name="invite")
@click.option("--email", required=True, help="Their email address; they sign in with it.")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--org", "org", default=None, help="Organisation id, ODS or GSS code (required for editors).")
@click.option("--name", default=None, help="Name in the audit trail (default: the email address).")
def invite_command(email: str, role: str, org: str | None, name: str | None) -> None:
    """Invite a person (or re-invite them) and print a one-time set-password link, valid for 72 hours."""
    from procurement.accounts.people import invite_user
    from procurement.db import session_scope
    from procurement.settings import get_settings

    async def go() -> str:
        async with session_scope() as session:
            invitation = await invite_user(session, email=email, role=role, org=org, name=name)
            return invitation.link(get_settings().base_url)

    click.echo(run_async(go))
    click.echo(f"# send this link to {email.strip()}; it works once, for 72 hours.", err=True)
