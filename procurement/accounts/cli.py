"""`localvalue tokens ...`: API tokens (shown once, stored hashed)."""

from __future__ import annotations

import click

from procurement.commands import run_async


@click.group(name="tokens", help="API tokens for machines and scripts (shown once, stored hashed).")
def tokens_group() -> None:
    pass


@tokens_group.command(name="create")
@click.option("--role", type=click.Choice(["admin", "editor", "reviewer"]), required=True)
@click.option("--org", "org", default=None, help="Organisation id, ODS or GSS code (required for editors).")
@click.option("--name", required=True, help="Who the token is for, e.g. 'jo.bloggs@uhb' (unique).")
def create_token_command(role: str, org: str | None, name: str) -> None:
    """Create a user with ROLE and print a new token for it, once."""
    from procurement.accounts.service import create_token
    from procurement.db import session_scope

    async def go() -> str:
        async with session_scope() as session:
            return await create_token(session, role=role, org=org, name=name)

    token = run_async(go)
    click.echo(token)
    click.echo(f"# {role} token for {name}; shown once, store it safely.", err=True)


@click.group(name="users", help="People who sign in to the workspace (passwords set by the person, never shown).")
def users_group() -> None:
    pass


@users_group.command(name="invite")
@click.option("--email", required=True, help="Their email address; they sign in with it.")
@click.option("--role", type=click.Choice(["admin", "editor", "reviewer"]), required=True)
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
