"""The signed-in workspace: the dashboard, the lines behind every figure (and their download), data quality.

Every page is a plain GET form and links; nothing needs JavaScript. Signed-in people and API tokens get the
same Principal, so the role rules are the API's.
"""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.di import Provide
from litestar.params import Parameter
from litestar.response import Template
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.auth import Principal, requires_token
from procurement.imports.runs import get_run, note_counts, note_filter, resume_command, stopped_runs, uk_time
from procurement.web.frame import NO_STORE, PAGE_EXCEPTION_HANDLERS, page_context
from procurement.web.setup import coverage_threshold
from procurement.workspace.parameters import BASIS, PERIOD, LinesAsked, ScopeChoice, lines_asked
from procurement.workspace.service import (
    BASIS_NAMES,
    CATEGORY_NAMES,
    FLAG_NAMES,
    PAGE_SIZE,
    SORTS,
    TIER_NAMES,
    bases_for,
    dashboard_for,
    feeds_health,
    filename,
    page_of,
    period_text,
    query_with,
    scope_choices,
    select_lines,
    selection_for,
)
from socialvalue.charts import Series, bar_chart, trend_chart
from socialvalue.metrics import CATEGORIES, TIERS

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _fraction(text: str | None) -> float | None:
    return None if text is None else float(Decimal(text))


def _known(share: str | None, coverage: str | None) -> float | None:
    """A share for a chart: only where enough of the value could be judged (as on the figures)."""
    if share is None or coverage is None or Decimal(coverage) < coverage_threshold():
        return None
    return float(Decimal(share))


def _charts(board: Any) -> dict[str, Any]:
    metrics, period = board.metrics, period_text(board.selection.period)
    total = metrics.headline.total_pence
    tiers = bar_chart(
        [(TIER_NAMES[r.tier], _fraction(r.share.share) if total else None) for r in metrics.by_tier],
        title=f"Share of all value by supplier location, {period}",
        category_heading="Supplier location",
        value_heading="Share of all value",
    )
    categories = bar_chart(
        [(CATEGORY_NAMES[r.category], _fraction(r.share.share) if total else None) for r in metrics.by_category],
        title=f"Share of all value by supplier type, {period}",
        category_heading="Supplier type",
        value_heading="Share of all value",
        colour="#330072",
    )
    trend = trend_chart(
        [period_text(p.period) for p in board.trend],
        [
            Series(
                "Local share where location is known",
                [_known(p.headline.local_share.share_known, p.headline.local_share.coverage) for p in board.trend],
            ),
            Series(
                "Coverage: value whose location is known",
                [_fraction(p.headline.local_share.coverage) for p in board.trend],
            ),
        ],
        title=f"Local share over the eight quarters to {period_text(board.trend[-1].period)}",
        y_max=1.0,
    )
    return {"tier_chart": tiers, "category_chart": categories, "trend_chart": trend}


class WorkspaceController(Controller):
    path = "/workspace"
    include_in_schema = False
    guards = [requires_token]
    exception_handlers = PAGE_EXCEPTION_HANDLERS
    response_headers = NO_STORE
    dependencies = {"asked": Provide(lines_asked)}

    @get("/", name="workspace")
    async def dashboard_page(
        self,
        request: Request[Principal, Any, Any],
        db_session: AsyncSession,
        scope_choice: ScopeChoice = None,
        period: str | None = PERIOD,
        basis: str | None = BASIS,
    ) -> Template:
        selection = selection_for(request.user, scope_choice, period, basis)
        board = await dashboard_for(db_session, selection, basis_given=bool(basis))
        return Template(
            template_name="workspace/dashboard.html",
            context=page_context(
                request,
                "/workspace",
                board=board,
                m=board.metrics,
                sel=board.selection,
                period_name=period_text(board.selection.period or ""),
                choices=await scope_choices(db_session, request.user),
                tier_names=TIER_NAMES,
                category_names=CATEGORY_NAMES,
                period_text=period_text,
                bases=[(b, BASIS_NAMES[b]) for b in board.bases],
                **_charts(board),
            ),
        )

    @get("/lines", name="workspace-lines")
    async def lines_page(
        self,
        request: Request[Principal, Any, Any],
        db_session: AsyncSession,
        asked: LinesAsked,
        page: int = Parameter(default=1, ge=1, le=100_000),
    ) -> Template:
        selection, filters, sort, order = asked.selection, asked.filters, asked.sort, asked.order
        found = await select_lines(db_session, selection, filters)
        page, pages, offset = page_of(found.rows.height, page)
        base = {"scope": selection.scope_value, "period": selection.period, "basis": selection.basis, **filters.query()}
        listing = {**base, "sort": sort, "order": order}
        return Template(
            template_name="workspace/lines.html",
            context=page_context(
                request,
                "/workspace/lines",
                sel=selection,
                filters=filters,
                scope=found.scope,
                rows=found.rows.slice(offset, PAGE_SIZE).to_dicts(),
                total=found.rows.height,
                counted=found.counted,
                allocated_pence=found.allocated_pence,
                page=page,
                pages=pages,
                page_url=f"/workspace/lines?{query_with(listing)}",
                download_query=query_with(base, sort=sort, order=order),
                all_suppliers_url=f"/workspace/lines?{query_with(listing, supplier=None)}",
                # A column's link sorts by it, descending first; on the sorted column it flips the order.
                sort_links={
                    key: "/workspace/lines?"
                    + query_with(base, sort=key, order="asc" if sort == key and order == "desc" else "desc")
                    for key in SORTS
                },
                sort=sort,
                order=order,
                choices=await scope_choices(db_session, request.user),
                tier_names=TIER_NAMES,
                category_names=CATEGORY_NAMES,
                flag_names=FLAG_NAMES,
                has_paid="paid" in await bases_for(db_session, found.scope),
                tiers=TIERS,
                categories=CATEGORIES,
                period_name=period_text(selection.period) if selection.period else "all periods",
            ),
        )

    @get("/lines.csv", name="workspace-lines-csv")
    async def lines_csv(
        self,
        db_session: AsyncSession,
        asked: LinesAsked,
    ) -> Response[bytes]:
        selection, filters = asked.selection, asked.filters
        found = await select_lines(db_session, selection, filters)
        return Response(
            found.rows.write_csv().encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename(found.scope, selection, filters)}.csv"'},
        )

    @get("/lines.xlsx", name="workspace-lines-xlsx")
    async def lines_xlsx(
        self,
        db_session: AsyncSession,
        asked: LinesAsked,
    ) -> Response[bytes]:
        import xlsxwriter  # type: ignore[import-untyped]

        selection, filters = asked.selection, asked.filters
        found = await select_lines(db_session, selection, filters)
        buffer = io.BytesIO()
        with xlsxwriter.Workbook(buffer, {"in_memory": True}) as workbook:
            found.summary.write_excel(workbook=workbook, worksheet="summary", autofit=True)
            found.rows.write_excel(workbook=workbook, worksheet="lines", autofit=True)
        return Response(
            buffer.getvalue(),
            media_type=XLSX,
            headers={"Content-Disposition": f'attachment; filename="{filename(found.scope, selection, filters)}.xlsx"'},
        )

    @get("/imports", name="workspace-imports")
    async def imports_page(
        self,
        request: Request[Principal, Any, Any],
        db_session: AsyncSession,
        source: str | None = Parameter(default=None, max_length=32),
        page: int = Parameter(default=1, ge=1, le=100_000),
    ) -> Template:
        run = m.ImportRun
        conditions = [run.source == source] if source else []
        total = await db_session.scalar(select(func.count()).select_from(run).where(*conditions)) or 0
        page, pages, offset = page_of(total, page)
        runs = list(
            await db_session.scalars(
                select(run).where(*conditions).order_by(run.id.desc()).limit(PAGE_SIZE).offset(offset)
            )
        )
        sources = list(await db_session.scalars(select(run.source).distinct().order_by(run.source)))
        return Template(
            template_name="workspace/imports.html",
            context=page_context(
                request,
                "/workspace/imports",
                runs=runs,
                stopped={i: uk_time(at) for i, at in (await stopped_runs(db_session)).items()},
                resume_command=resume_command,
                notes=await note_counts(db_session, [r.id for r in runs]),
                health=await feeds_health(db_session),
                sources=sources,
                source=source or "",
                page=page,
                pages=pages,
                page_url=f"/workspace/imports?{query_with({'source': source})}",
                total=total,
            ),
        )

    @get("/imports/{run_id:int}", name="workspace-import-run")
    async def import_run_page(
        self,
        request: Request[Principal, Any, Any],
        db_session: AsyncSession,
        run_id: int,
        level: str | None = Parameter(default=None, pattern="^(info|warning|error)$"),
        page: int = Parameter(default=1, ge=1, le=100_000),
    ) -> Template:
        run = await get_run(db_session, run_id)
        conditions = note_filter(run_id, level)
        total = await db_session.scalar(select(func.count()).select_from(m.ImportNote).where(*conditions)) or 0
        page, pages, offset = page_of(total, page)
        notes = list(
            await db_session.scalars(
                select(m.ImportNote).where(*conditions).order_by(m.ImportNote.id).limit(PAGE_SIZE).offset(offset)
            )
        )
        levels = dict(
            (
                await db_session.execute(
                    select(m.ImportNote.level, func.count())
                    .where(m.ImportNote.run_id == run_id)
                    .group_by(m.ImportNote.level)
                )
            )
            .tuples()
            .all()
        )
        return Template(
            template_name="workspace/import_run.html",
            context=page_context(
                request,
                "/workspace/imports",
                run=run,
                stopped={i: uk_time(at) for i, at in (await stopped_runs(db_session)).items()},
                resume_command=resume_command,
                notes=notes,
                levels=levels,
                level=level or "",
                total=total,
                page=page,
                pages=pages,
                page_url=f"/workspace/imports/{run_id}?{query_with({'level': level})}",
                csv_url=f"/imports/{run_id}/notes.csv" + (f"?level={level}" if level else ""),
            ),
        )
