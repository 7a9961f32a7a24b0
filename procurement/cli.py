"""The `localvalue` command: Litestar's CLI (run, database ...) plus this project's groups.

Commands open their own session and commit once when they finish; a failure rolls everything back.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
from litestar.plugins import CLIPluginProtocol
from sqlalchemy import select

T = TypeVar("T")


def run_async(fn: Callable[[], Awaitable[T]], *, interrupted: str | None = None) -> T:
    """Run ``fn`` and dispose the engine after. SIGTERM cancels it like Ctrl-C, so ``fn`` can record that it
    stopped; with ``interrupted`` given, that message is printed and the exit code is 130 instead of a traceback."""

    async def main() -> T:
        from procurement.db import get_alchemy_config

        task = asyncio.current_task()
        # Windows event loops have no signal handlers and only the main thread may set one; there, only
        # Ctrl-C interrupts.
        if task is not None and sys.platform != "win32" and threading.current_thread() is threading.main_thread():
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            return await fn()
        finally:
            engine = get_alchemy_config().engine_instance
            if engine is not None:
                await engine.dispose()

    try:
        return asyncio.run(main())
    except (asyncio.CancelledError, KeyboardInterrupt):
        if interrupted is None:
            raise
        click.echo(interrupted, err=True)
        sys.exit(130)


@click.group(name="tokens", help="API tokens (shown once, stored hashed).")
def tokens_group() -> None:
    pass


@tokens_group.command(name="create")
@click.option("--role", type=click.Choice(["admin", "editor", "reviewer"]), required=True)
@click.option("--org", "org", default=None, help="Organisation id, ODS or GSS code (required for editors).")
@click.option("--name", required=True, help="Who the token is for, e.g. 'jo.bloggs@uhb' (unique).")
def create_token(role: str, org: str | None, name: str) -> None:
    """Create a user with ROLE and print a new token for it, once."""
    from procurement import models as m
    from procurement.auth import hash_token, new_token
    from procurement.db import session_scope
    from procurement.services import record_audit

    async def go() -> str:
        async with session_scope() as session:
            organisation_id = None
            if org is not None:
                condition = [m.Organisation.ods_code == org.upper(), m.Organisation.gss_code == org.upper()]
                if org.isdigit():
                    condition.append(m.Organisation.id == int(org))
                from sqlalchemy import or_

                found = (await session.scalars(select(m.Organisation).where(or_(*condition)))).first()
                if found is None:
                    raise click.ClickException(f"no organisation matches {org!r} (id, ODS or GSS code)")
                organisation_id = found.id
            if role == "editor" and organisation_id is None:
                raise click.ClickException("an editor token needs --org: editors act only for their organisation")
            user = (await session.scalars(select(m.User).where(m.User.name == name))).first()
            if user is None:
                user = m.User(name=name, role=role, organisation_id=organisation_id)
                session.add(user)
            elif user.role != role or user.organisation_id != organisation_id:
                raise click.ClickException(f"user {name!r} exists with role {user.role}; use another --name")
            token = new_token()
            await session.flush()
            session.add(m.ApiToken(user_id=user.id, name=name, token_hash=hash_token(token), token_prefix=token[:8]))
            await record_audit(
                session,
                actor=None,
                actor_name="cli",
                action="token.create",
                entity_type="user",
                entity_id=user.id,
                organisation_id=organisation_id,
                changes={"role": (None, role), "token_prefix": (None, token[:8])},
            )
            return token

    token = run_async(go)
    click.echo(token)
    click.echo(f"# {role} token for {name}; shown once, store it safely.", err=True)


@click.group(name="seed", help="Load reference data shipped with the package.")
def seed_group() -> None:
    pass


@seed_group.command(name="anchors")
def seed_anchors_command() -> None:
    """Load the West Midlands anchor institutions (idempotent)."""
    from procurement.db import session_scope
    from procurement.seed import seed_anchors

    async def go() -> tuple[int, int]:
        async with session_scope() as session:
            return await seed_anchors(session)

    created, updated = run_async(go)
    click.echo(f"anchors: created {created}, updated {updated}")


class LocalValueCLIPlugin(CLIPluginProtocol):
    def on_cli_init(self, cli: click.Group) -> None:
        cli.add_command(tokens_group)
        cli.add_command(seed_group)
        from procurement.cli_imports import import_group

        cli.add_command(import_group)
        from procurement.cli_classification import classify_group, geo_group

        cli.add_command(classify_group)
        cli.add_command(geo_group)
        from procurement.cli_social_value import register as register_social_value

        register_social_value(cli, seed_group)
        from procurement.cli_statements import statements_group

        cli.add_command(statements_group)


def main(argv: list[str] | None = None) -> Any:
    os.environ.setdefault("LITESTAR_APP", "procurement.app:create_app")
    from litestar.cli.main import litestar_group

    return litestar_group.main(args=argv, prog_name="localvalue")
