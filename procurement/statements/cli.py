"""`localvalue statements ...`: preview a draft PDF, publish a frozen statement, verify every stored hash."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement.commands import run_async
from procurement.metrics.lines import Scope
from procurement.organisations.service import find_organisation


def _scope_options(fn: click.decorators.FC) -> click.decorators.FC:
    fn = click.option("--quarter", "period", required=True, help="Financial-year quarter, e.g. 2025Q1 = Apr-Jun 2025.")(
        fn
    )
    fn = click.option("--group", default=None, help="Anchor group slug, e.g. birmingham-and-solihull.")(fn)
    return click.option("--anchor", default=None, help="Anchor id, ODS or GSS code.")(fn)


def _basis_options(fn: click.decorators.FC) -> click.decorators.FC:
    fn = click.option(
        "--influenceable",
        is_flag=True,
        help="With --basis paid: leave out payments to other public bodies, taxes and pension schemes (labelled).",
    )(fn)
    return click.option(
        "--basis",
        type=click.Choice(["awarded", "paid"]),
        default="awarded",
        show_default=True,
        help="awarded (with spread beside it: contract notices) or paid (the anchor's published payments).",
    )(fn)


async def _scope(session: AsyncSession, anchor: str | None, group: str | None) -> Scope:
    from procurement.metrics.lines import resolve_scope

    if (anchor is None) == (group is None):
        raise click.ClickException("give exactly one of --anchor or --group")
    anchor_id = (await find_organisation(session, anchor)).id if anchor else None
    return await resolve_scope(session, anchor_id=anchor_id, group=group)


@click.group(name="statements", help="Quarterly statements: preview, publish, verify.")
def statements_group() -> None:
    pass


@statements_group.command(name="preview")
@_scope_options
@_basis_options
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
def preview_command(
    anchor: str | None, group: str | None, period: str, basis: str, influenceable: bool, out: Path
) -> None:
    """Render a DRAFT statement from live figures to a PDF file (nothing is stored)."""
    from procurement.db import session_scope
    from procurement.statements.service import preview_pdf

    async def go() -> bytes:
        async with session_scope() as session:
            scope = await _scope(session, anchor, group)
            pdf, _ = await preview_pdf(session, scope, period, basis=basis, influenceable=influenceable)
            return pdf

    pdf = run_async(go)
    out.write_bytes(pdf)
    click.echo(f"draft written to {out} ({len(pdf):,} bytes)")


@statements_group.command(name="publish")
@_scope_options
@_basis_options
@click.option("--reason", default=None, help="Why, when this corrects an earlier version (required then).")
@click.option("--by", "by", default="cli", show_default=True, help="Who is publishing (recorded in the audit log).")
@click.option("--if-absent", is_flag=True, help="Do nothing when this quarter is already published (for scripts).")
def publish_command(
    anchor: str | None,
    group: str | None,
    period: str,
    basis: str,
    influenceable: bool,
    reason: str | None,
    by: str,
    if_absent: bool,
) -> None:
    """Freeze the figures and the PDF, with their SHA-256 hashes."""
    from procurement import models as m
    from procurement.db import session_scope
    from procurement.statements.service import publish

    async def go() -> tuple[int, int, str, str]:
        async with session_scope() as session:
            scope = await _scope(session, anchor, group)
            if if_absent:
                existing = (
                    await session.scalars(
                        select(m.Statement).where(
                            m.Statement.scope_key == scope.key,
                            m.Statement.period == period,
                            m.Statement.status == m.StatementStatus.PUBLISHED,
                        )
                    )
                ).first()
                if existing is not None:
                    return existing.id, existing.version, existing.pdf_sha256, existing.scope_name
            statement = await publish(
                session,
                scope,
                period,
                actor=None,
                actor_name=by,
                reason=reason,
                basis=basis,
                influenceable=influenceable,
            )
            return statement.id, statement.version, statement.pdf_sha256, statement.scope_name

    statement_id, version, pdf_hash, name = run_async(go)
    click.echo(f"published statement {statement_id}: {name} {period} version {version}, PDF sha256 {pdf_hash}")


@statements_group.command(name="download")
@_scope_options
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
def download_command(anchor: str | None, group: str | None, period: str, out: Path) -> None:
    """Write the latest published PDF of a quarter to a file (exactly the stored bytes)."""
    from procurement import models as m
    from procurement.db import session_scope

    async def go() -> bytes:
        async with session_scope() as session:
            scope = await _scope(session, anchor, group)
            statement = (
                await session.scalars(
                    select(m.Statement)
                    .where(m.Statement.scope_key == scope.key, m.Statement.period == period)
                    .order_by(m.Statement.version.desc())
                )
            ).first()
            if statement is None:
                raise click.ClickException(f"nothing published for {period}")
            return statement.pdf

    pdf = run_async(go)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(pdf)
    click.echo(f"wrote {out} ({len(pdf):,} bytes)")


@statements_group.command(name="verify")
def verify_command() -> None:
    """Recompute every hash and re-render every PDF; exit 1 if anything was changed."""
    from procurement.db import session_scope
    from procurement.statements.service import verify_all

    async def go() -> list[tuple[int, bool, tuple[str, ...]]]:
        async with session_scope() as session:
            return [(v.statement_id, v.ok, v.problems) for v in await verify_all(session)]

    results = run_async(go)
    bad = 0
    for statement_id, ok, problems in results:
        if ok:
            click.echo(f"statement {statement_id}: ok")
        else:
            bad += 1
            click.echo(f"statement {statement_id}: TAMPERED: {'; '.join(problems)}")
    click.echo(f"verified {len(results)} statements, {bad} with problems")
    if bad:
        sys.exit(1)


def _staleness_lines(found: object) -> list[str]:
    from procurement.statements.service import Staleness

    assert isinstance(found, Staleness)
    if not found.stale:
        return [f"statement {found.statement_id}: current (the live figures match version {found.version})"]
    lines = [
        f"statement {found.statement_id}: STALE: {len(found.differences)} figure(s) changed since version "
        f"{found.version} was published"
    ]
    width = max(len(d.figure) for d in found.differences)
    lines.append(f"  {'figure':<{width}}  {'published':>14}  {'live':>14}")
    lines += [f"  {d.figure:<{width}}  {_shown(d.published):>14}  {_shown(d.live):>14}" for d in found.differences]
    return lines


def _shown(value: object) -> str:
    return "(none)" if value is None else str(value)


@statements_group.command(name="list")
def list_command() -> None:
    """Every stored statement with its status; a published one whose live figures have changed says STALE."""
    from procurement import models as m
    from procurement.db import session_scope
    from procurement.statements.service import staleness

    async def go() -> list[tuple[int, str, str, int, str, str]]:
        async with session_scope() as session:
            statements = (await session.scalars(select(m.Statement).order_by(m.Statement.id))).all()
            out = []
            for s in statements:
                mark = ""
                if s.status == m.StatementStatus.PUBLISHED:
                    found = await staleness(session, s)
                    mark = f"STALE ({len(found.differences)} figures changed)" if found.stale else "current"
                out.append((s.id, s.scope_name, s.period, s.version, s.status, mark))
            return out

    for statement_id, name, period, version, status, mark in run_async(go):
        click.echo(f"{statement_id:>5}  {period}  v{version}  {status:<10}  {name}{'  ' + mark if mark else ''}")


@statements_group.command(name="check")
@click.argument("statement_id", type=int, required=False)
def check_command(statement_id: int | None) -> None:
    """Compare published statements (or one) with the live figures, side by side; exit 1 if any is stale."""
    from procurement import models as m
    from procurement.db import session_scope
    from procurement.errors import NotFound
    from procurement.statements.service import staleness

    async def go() -> list[object]:
        async with session_scope() as session:
            if statement_id is not None:
                one = await session.get(m.Statement, statement_id)
                if one is None:
                    raise NotFound(f"No statement {statement_id}.")
                statements = [one]
            else:
                statements = list(
                    (
                        await session.scalars(
                            select(m.Statement)
                            .where(m.Statement.status == m.StatementStatus.PUBLISHED)
                            .order_by(m.Statement.id)
                        )
                    ).all()
                )
            return [await staleness(session, s) for s in statements]

    results = run_async(go)
    for found in results:
        for line in _staleness_lines(found):
            click.echo(line)
    if any(getattr(found, "stale", False) for found in results):
        sys.exit(1)
