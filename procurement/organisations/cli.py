"""`localvalue seed anchors` and `localvalue seed groups`."""

from __future__ import annotations

import click

from procurement.commands import run_async


@click.command(name="groups")
def seed_groups_command() -> None:
    """Create the "Birmingham and Solihull" anchor group from the seeded anchors (idempotent)."""
    from procurement.commands import run_async
    from procurement.db import session_scope
    from procurement.organisations.groups import seed_groups

    async def go() -> tuple[int, int]:
        async with session_scope() as session:
            return await seed_groups(session)

    created, updated = run_async(go)
    click.echo(f"anchor groups: created {created}, updated {updated}")


@click.command(name="anchors")
@click.option(
    "--list",
    "anchor_list",
    type=click.Choice(["west-midlands", "spend-demo"]),
    default="west-midlands",
    show_default=True,
    help="spend-demo: the trust whose published payments `make demo` imports.",
)
def seed_anchors_command(anchor_list: str) -> None:
    """Load the West Midlands anchor institutions (idempotent)."""
    from procurement.db import session_scope
    from procurement.organisations.seed import seed_anchors

    async def go() -> tuple[int, int]:
        async with session_scope() as session:
            return await seed_anchors(session, anchor_list)

    created, updated = run_async(go)
    click.echo(f"anchors: created {created}, updated {updated}")
