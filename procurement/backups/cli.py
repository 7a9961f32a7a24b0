"""`localvalue backup PATH` and `localvalue restore PATH`."""

from __future__ import annotations

from pathlib import Path

import click

from procurement.commands import run_async


@click.command(name="backup")
@click.argument("path", type=click.Path(dir_okay=False, resolve_path=True, path_type=Path))
def backup_command(path: Path) -> None:
    """Copy the whole database, live, to PATH (SQLite: a SQLite file; PostgreSQL: a pg_dump custom archive)."""
    from procurement.backups.service import backup
    from procurement.db import get_alchemy_config

    done = run_async(lambda: backup(get_alchemy_config().get_engine(), path))
    click.echo(
        f"backed up the {done.dialect} database at schema revision {done.revision} to {done.path} ({done.size:,} bytes)"
    )


@click.command(name="restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, resolve_path=True, path_type=Path))
@click.option("--yes", is_flag=True, help="Replace a database that holds data.")
@click.option("--force", is_flag=True, help="Restore even though the database is at another schema revision.")
def restore_command(path: Path, yes: bool, force: bool) -> None:
    """Replace the database's contents with a backup made by `localvalue backup` (in one transaction)."""
    from procurement.backups.service import restore
    from procurement.db import get_alchemy_config

    done = run_async(lambda: restore(get_alchemy_config().get_engine(), path, yes=yes, force=force))
    click.echo(
        f"restored {done.path} (schema revision {done.revision}); "
        "next: `localvalue database upgrade`, then `localvalue statements verify`"
    )
