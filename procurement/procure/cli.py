"""`localvalue uploads prune`: delete spreadsheet uploads checked but never saved or discarded."""

from __future__ import annotations

import click

from procurement.commands import run_async


@click.group(name="uploads", help="Spreadsheet uploads waiting in the work folder (drafts in progress).")
def uploads_group() -> None:
    pass


@uploads_group.command(name="prune")
@click.option(
    "--older-than-hours",
    type=click.IntRange(min=0),
    default=None,
    help="Age after which an unsaved upload goes [default: LOCALVALUE_UPLOAD_MAX_AGE_HOURS, 24].",
)
def prune_command(older_than_hours: int | None) -> None:
    """Delete drafts (and their files) older than the limit, and any older file in the uploads folder."""
    import datetime as dt

    from procurement.db import session_scope
    from procurement.procure.drafts import Pruned, prune_uploads, uploads_dir
    from procurement.settings import get_settings

    settings = get_settings()
    hours = settings.upload_max_age_hours if older_than_hours is None else older_than_hours

    async def go() -> Pruned:
        async with session_scope() as session:
            return await prune_uploads(session, settings.work_dir, dt.timedelta(hours=hours))

    pruned = run_async(go)
    click.echo(
        f"{pruned.drafts} draft{'' if pruned.drafts == 1 else 's'} and {pruned.files} "
        f"file{'' if pruned.files == 1 else 's'} older than {hours} hours deleted from {uploads_dir(settings.work_dir)}"
    )
