"""`localvalue import spend FILE --anchor CODE` and `localvalue spend ...` (saved mappings, files, review queue)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from procurement.commands import run_async


@click.command(name="spend")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--anchor", required=True, help="The anchor that published the file: id, ODS or GSS code.")
@click.option("--month", default=None, help="The month the file covers (YYYY-MM), for lines without a date.")
@click.option("--mapping", "mapping_name", default=None, help="A saved column mapping (`localvalue spend mapping`).")
@click.option("--reason", default=None, help="Why, when this file replaces one already imported for its months.")
@click.option("--by", default="cli", show_default=True, help="Who is importing (kept in the audit trail).")
def import_spend_command(
    path: Path, anchor: str, month: str | None, mapping_name: str | None, reason: str | None, by: str
) -> None:
    """Import a published spend (payments) file, CSV or XLSX, for the anchor that published it.

    Importing the same file again changes nothing; a corrected file for the same months replaces the old one
    (give --reason). Notes on unreadable rows: `localvalue import notes RUN_ID`."""
    from procurement.db import session_scope
    from procurement.organisations.service import find_organisation
    from procurement.spend.service import SpendImportResult, import_spend_file

    stages = ("reading", "matching payees", "storing")
    resolved = path.resolve()

    async def go() -> SpendImportResult:
        with click.progressbar(length=len(stages), label=f"{path.name}: starting", file=sys.stderr) as bar:

            def progress(stage: str) -> None:
                bar.label = f"{path.name}: {stage}"
                bar.update(stages.index(stage) + 1 - bar.pos)

            async with session_scope() as session:
                org = await find_organisation(session, anchor)
                result = await import_spend_file(
                    session, resolved, org, month=month, mapping_name=mapping_name, reason=reason, by=by,
                    progress=progress,
                )  # fmt: skip
            bar.update(len(stages) - bar.pos)
            return result

    result = run_async(go)
    where = f"file {result.file_id}, run {result.run_id}, months {', '.join(result.months) or '-'}"
    if result.replaced_file_ids:
        where += f"; replaced file {', '.join(str(i) for i in result.replaced_file_ids)}"
    click.echo(where, err=True)
    click.echo(result.summary())


@click.group(name="spend", help="Spend (payments) files: saved column mappings, imported files, payees to review.")
def spend_group() -> None:
    pass


@spend_group.group(name="mapping", help="A publisher's saved column mapping: header as published -> field.")
def mapping_group() -> None:
    pass


@mapping_group.command(name="save")
@click.argument("name")
@click.option("--set", "pairs", multiple=True, help='"Header=field", e.g. --set "Expense Area=expense_type".')
@click.option("--from-json", "json_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None)
@click.option("--by", default="cli", show_default=True)
def mapping_save_command(name: str, pairs: tuple[str, ...], json_path: Path | None, by: str) -> None:
    """Save (or replace) a mapping from --set pairs or a JSON object {"Header": "field"}."""
    from procurement.db import session_scope
    from procurement.spend.service import save_mapping

    mapping: dict[str, Any] = json.loads(json_path.read_text("utf-8")) if json_path else {}
    if not isinstance(mapping, dict):
        raise click.BadParameter('the JSON file must hold one object, e.g. {"Expense Area": "expense_type"}')
    for pair in pairs:
        header, sep, field = pair.rpartition("=")
        if not sep or not header.strip():
            raise click.BadParameter(f'{pair!r}: send "Header=field", e.g. "Expense Area=expense_type"')
        mapping[header.strip()] = field.strip()

    async def go() -> dict[str, str]:
        async with session_scope() as session:
            return dict((await save_mapping(session, name, mapping, by=by)).mapping)

    saved = run_async(go)
    click.echo(f"mapping {name}: " + ", ".join(f"{h!r} -> {f}" for h, f in saved.items()))


@mapping_group.command(name="list")
def mapping_list_command() -> None:
    """Every saved mapping."""
    from sqlalchemy import select

    from procurement import models as m
    from procurement.db import session_scope

    async def go() -> list[tuple[str, dict[str, str]]]:
        async with session_scope() as session:
            rows = await session.scalars(select(m.SpendMapping).order_by(m.SpendMapping.name))
            return [(r.name, dict(r.mapping)) for r in rows]

    for name, mapping in run_async(go):
        click.echo(f"{name}: " + ", ".join(f"{h!r} -> {f}" for h, f in mapping.items()))


@spend_group.command(name="files")
@click.option("--anchor", default=None, help="Anchor id, ODS or GSS code.")
def files_command(anchor: str | None) -> None:
    """Imported spend files with their counts and status."""
    from procurement import models as m
    from procurement.db import session_scope
    from procurement.organisations.service import find_organisation
    from procurement.spend.service import list_files

    async def go() -> list[m.SpendFile]:
        async with session_scope() as session:
            anchor_id = (await find_organisation(session, anchor)).id if anchor else None
            return await list_files(session, anchor_id)

    for f in run_async(go):
        click.echo(
            f"{f.id:>5}  {f.status:<8} run {f.run_id}  {','.join(f.months)}  {f.line_count} lines  "
            f"{f.total_pence / 100:,.2f} GBP  {f.source_name}"
        )


@spend_group.command(name="review")
@click.option("--anchor", default=None, help="Anchor id, ODS or GSS code.")
def review_command(anchor: str | None) -> None:
    """Payees waiting for a person (decide with POST /spend/payees/{id}/decision)."""
    from procurement.db import session_scope
    from procurement.organisations.service import find_organisation
    from procurement.spend.service import review_queue

    async def go() -> list[tuple[int, str, int, int, str]]:
        async with session_scope() as session:
            anchor_id = (await find_organisation(session, anchor)).id if anchor else None
            rows = await review_queue(session, anchor_id)
            return [
                (r.id, r.payee_name, n, paid, "; ".join(f"{c['name']} ({c['score']})" for c in r.candidates))
                for r, n, paid in rows
            ]

    for match_id, name, lines, paid, candidates in run_async(go):
        click.echo(f"{match_id:>5}  {name}  ({lines} lines, {paid / 100:,.2f} GBP)  candidates: {candidates}")
