"""HTTP for metrics, the social-value measure catalogue, commitments and returns, and LM3."""

from __future__ import annotations

from typing import Any, Literal, cast

import polars as pl
from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.enums import MediaType
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter
from litestar.serialization import encode_json
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT, HTTP_304_NOT_MODIFIED
from sqlalchemy.ext.asyncio import AsyncSession

from procurement.auth import Principal, requires_admin, requires_editor, requires_reviewer, requires_token
from procurement.db import ALCHEMY_STATE_KEY, session_scope
from procurement.exports import safe_frame, write_xlsx
from procurement.metrics.cache import answer, etag_for, not_modified, shared_versions
from procurement.metrics.commitments import (
    FIGURES_NOTE,
    commitment_figures,
    commitment_schema,
    create_commitment,
    delete_commitment,
    enter_return,
    figure_schema,
    get_commitment,
    list_commitments,
    periods_of,
    return_out,
    review_return,
    totals,
    update_commitment,
)
from procurement.metrics.lines import resolve_scope
from procurement.metrics.lm3 import list_lm3_responses, lm3_response_schema, lm3_result, record_lm3_response
from procurement.metrics.measures import (
    create_local_measure,
    get_measure,
    list_measures,
    measure_schema,
    update_proxy,
)
from procurement.metrics.schemas import (
    Commitment,
    CommitmentCreate,
    CommitmentFigures,
    CommitmentUpdate,
    DeliveryReturn,
    Lm3Response,
    Lm3ResponseIn,
    Lm3Result,
    LocalMeasureCreate,
    Measure,
    Metrics,
    ProxyUpdate,
    ReturnCreate,
    ReturnReject,
)
from procurement.metrics.service import (
    NOTES,
    _compute,
    _filename,
    _rows,
    basis_metrics,
    pounds,
    scope_ref,
)
from procurement.paging import DEFAULT_LIMIT, Limit, Offset
from procurement.reused import ReusedResponse
from procurement.schemas import PERIOD_PATTERN, YEAR_PATTERN, IdParam, Page, id_query, required_id_query
from socialvalue.periods import parse_financial_year

BasisParam = Literal["awarded", "spread", "paid"]


_ANCHOR = id_query("One anchor (organisation id).")


_GROUP = Parameter(default=None, max_length=64, description="An anchor group slug, e.g. birmingham-and-solihull.")


_PERIOD = Parameter(
    default=None,
    pattern=PERIOD_PATTERN,
    description="A quarter (2025Q1 = Apr-Jun 2025) or a financial year (2025/26).",
)


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


_BASIS = Parameter(
    default=None,
    description="awarded, spread or paid (payment lines from spend files); awarded and spread when omitted.",
)


_INFLUENCEABLE = Parameter(
    default=False,
    description="With basis=paid: leave out payments to other public bodies, taxes and pension schemes "
    "(labelled as such in every output).",
)


def _validators(etag: str | None) -> dict[str, str]:
    # private: the answer depends on who may read it (a token), so shared caches keep none.
    return {"Cache-Control": "private, no-cache"} | ({"ETag": etag} if etag else {})


class MetricsController(Controller):
    path = "/"
    tags = ["metrics"]
    guards = [requires_token]

    @get(
        "/metrics",
        summary="Local-spend metrics for an anchor, a group or all anchors",
        responses={304: ResponseSpec(None, description="Not modified: the answer for the ETag sent still holds.")},
    )
    async def metrics(
        self,
        request: Request[Any, Any, Any],
        anchor_id: int | None = _ANCHOR,
        group: str | None = _GROUP,
        period: str | None = _PERIOD,
        basis: BasisParam | None = _BASIS,
        influenceable: bool = _INFLUENCEABLE,
    ) -> Response[Metrics]:
        """Total value, local and regional shares, supplier categories and changes per UK financial quarter or year, on
        the awarded, spread or paid basis; 'not known' shares are shown beside each. The ETag changes with any
        change to the data behind the figures; send it back as If-None-Match for a 304 when nothing changed."""
        etag = await etag_for(
            shared_versions(request.app.state), ("metrics", anchor_id, group, period, basis, influenceable)
        )
        if not_modified(request.headers.get("if-none-match"), etag):
            empty = Response(content=b"", status_code=HTTP_304_NOT_MODIFIED, headers=_validators(etag))
            return cast(Response[Metrics], empty)

        async def compute() -> ReusedResponse[bytes]:
            # A session only when the answer is not held already (the warm path needs none).
            async with session_scope(request.app.state[ALCHEMY_STATE_KEY]) as db_session:
                scope, kind, computed = await _compute(
                    db_session, anchor_id, group, period, basis, influenceable=influenceable
                )
            metrics = Metrics(
                scope=scope_ref(scope),
                period_kind=kind,
                period=period,
                bases=[basis_metrics(c, scope.key, period) for c in computed],
                notes=NOTES,
            )
            # Already JSON: sent as it is, with the same media type the struct would have had.
            return ReusedResponse(encode_json(metrics), media_type=MediaType.JSON, headers=_validators(etag))

        return cast(Response[Metrics], await answer(etag, compute))

    @get(
        "/metrics.csv",
        summary="The rows behind every figure (table=lines) or the figures themselves (summary)",
        media_type="text/csv",
    )
    async def metrics_csv(
        self,
        request: Request[Any, Any, Any],
        db_session: AsyncSession,
        anchor_id: int | None = _ANCHOR,
        group: str | None = _GROUP,
        period: str | None = _PERIOD,
        basis: BasisParam | None = _BASIS,
        table: Literal["lines", "summary"] = Parameter(
            default="lines",
            description="lines: every contract-supplier line; summary: each figure with its share and coverage.",
        ),
        influenceable: bool = _INFLUENCEABLE,
    ) -> Response[bytes]:
        """Every contract-supplier line behind the figures of /metrics, one row each, as CSV (with an ETag, as
        /metrics)."""
        etag = await etag_for(
            shared_versions(request.app.state), ("metrics.csv", anchor_id, group, period, basis, table, influenceable)
        )
        if not_modified(request.headers.get("if-none-match"), etag):
            return Response(b"", status_code=HTTP_304_NOT_MODIFIED, headers=_validators(etag))
        scope, rows, summary = await _rows(db_session, anchor_id, group, period, basis, influenceable=influenceable)
        frame = summary if table == "summary" else rows
        name = _filename(scope, period) + ("-summary" if table == "summary" else "")
        return Response(
            safe_frame(frame).write_csv().encode("utf-8"),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"', **_validators(etag)},
        )

    @get("/metrics.xlsx", summary="The rows behind every figure plus a summary sheet, as XLSX", media_type=XLSX)
    async def metrics_xlsx(
        self,
        db_session: AsyncSession,
        anchor_id: int | None = _ANCHOR,
        group: str | None = _GROUP,
        period: str | None = _PERIOD,
        basis: BasisParam | None = _BASIS,
        influenceable: bool = _INFLUENCEABLE,
    ) -> Response[bytes]:
        """The lines behind /metrics plus a summary sheet, as an Excel workbook."""
        scope, rows, summary = await _rows(db_session, anchor_id, group, period, basis, influenceable=influenceable)
        # Money in pounds as numbers (the CSV keeps exact decimal text); pence columns stay whole numbers.
        lines = rows.with_columns(
            value=pl.col("value_pence") / 100,
            allocated=pl.col("allocated_pence") / 100,
        )
        summary = summary.with_columns(value=pl.col("value_pence") / 100)
        return Response(
            write_xlsx({"summary": summary, "lines": lines}, money=("value", "allocated")),
            media_type=XLSX,
            headers={"Content-Disposition": f'attachment; filename="{_filename(scope, period)}.xlsx"'},
        )


class MeasureController(Controller):
    path = "/measures"
    tags = ["social value"]

    @get("/", summary="The measure catalogue", guards=[requires_token])
    async def list_measures(
        self,
        db_session: AsyncSession,
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
        framework: str | None = Parameter(default=None, max_length=32, description="ppn-06-20, ppn-002 or local."),
        organisation_id: int | None = id_query("The shared catalogue plus this anchor's own measures."),
    ) -> Page[Measure]:
        """The measure catalogue (PPN 06/20, PPN 002 and local measures), optionally one framework; paged."""
        rows = await list_measures(db_session, framework=framework, organisation_id=organisation_id)
        items = [measure_schema(x) for x in rows[offset : offset + limit]]
        return Page(items=items, total=len(rows), limit=limit, offset=offset)

    @get("/{measure_id:int}", summary="One measure", guards=[requires_token])
    async def get_measure(self, db_session: AsyncSession, measure_id: IdParam) -> Measure:
        """One measure of the catalogue with its unit and proxy value."""
        return measure_schema(await get_measure(db_session, measure_id))

    @post("/local", summary="Add an anchor's own local measure (its editor, or an admin)", guards=[requires_editor])
    async def create_local_measure(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, data: LocalMeasureCreate
    ) -> Measure:
        """Adds a measure of the anchor's own to the catalogue, beside PPN 06/20 and PPN 002. Audited."""
        return measure_schema(await create_local_measure(db_session, data, request.user))

    @put("/{measure_id:int}/proxy", summary="Set or clear a measure's proxy value (admin)", guards=[requires_admin])
    async def update_proxy(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, measure_id: IdParam, data: ProxyUpdate
    ) -> Measure:
        """Sets the pounds-per-unit proxy of a measure with its source, year and price base, or clears it. Audited."""
        return measure_schema(await update_proxy(db_session, measure_id, data, request.user))


class CommitmentController(Controller):
    path = "/"
    tags = ["social value"]

    @get("/contracts/{contract_id:int}/commitments", summary="A contract's commitments", guards=[requires_token])
    async def list_for_contract(self, db_session: AsyncSession, contract_id: IdParam) -> list[Commitment]:
        """The social-value commitments recorded against one contract."""
        rows = await list_commitments(db_session, contract_id)
        return [await commitment_schema(db_session, c) for c in rows]

    @post(
        "/contracts/{contract_id:int}/commitments",
        summary="Record a social-value commitment with quarterly targets (the buyer's editor, or an admin)",
        guards=[requires_editor],
    )
    async def create(
        self,
        request: Request[Principal, Any, Any],
        db_session: AsyncSession,
        contract_id: IdParam,
        data: CommitmentCreate,
    ) -> Commitment:
        """Adds a commitment from the measure catalogue to the contract, with a target per quarter. Audited."""
        commitment = await create_commitment(db_session, contract_id, data, request.user)
        return await commitment_schema(db_session, commitment)

    @get(
        "/commitments/{commitment_id:int}",
        summary="One commitment with its targets and returns",
        guards=[requires_token],
    )
    async def get_one(self, db_session: AsyncSession, commitment_id: IdParam) -> Commitment:
        """A commitment with its quarterly targets and every return entered against it."""
        commitment, _contract = await get_commitment(db_session, commitment_id)
        return await commitment_schema(db_session, commitment)

    @patch("/commitments/{commitment_id:int}", summary="Change targets, unit or note", guards=[requires_editor])
    async def update(
        self,
        request: Request[Principal, Any, Any],
        db_session: AsyncSession,
        commitment_id: IdParam,
        data: CommitmentUpdate,
    ) -> Commitment:
        """Replaces the targets, unit or note of a commitment. Audited."""
        commitment = await update_commitment(db_session, commitment_id, data, request.user)
        return await commitment_schema(db_session, commitment)

    @delete(
        "/commitments/{commitment_id:int}",
        summary="Delete a commitment with no verified returns",
        guards=[requires_editor],
        status_code=HTTP_204_NO_CONTENT,
    )
    async def remove(
        self,
        request: Request[Principal, Any, Any],
        db_session: AsyncSession,
        commitment_id: IdParam,
        reason: str = Parameter(min_length=3, max_length=1000, description="Why (kept in the audit trail)."),
    ) -> None:
        """Deletes a commitment that has no verified returns (verified delivery is never thrown away). Audited."""
        await delete_commitment(db_session, commitment_id, reason, request.user)

    @post(
        "/commitments/{commitment_id:int}/returns",
        summary="Enter a supplier's quarterly delivery return (the buyer's editor, or an admin)",
        guards=[requires_editor],
    )
    async def enter_return(
        self,
        request: Request[Principal, Any, Any],
        db_session: AsyncSession,
        commitment_id: IdParam,
        data: ReturnCreate,
    ) -> DeliveryReturn:
        """Records what the supplier says it delivered in one quarter, with evidence; it counts once verified.
        Audited."""
        return await return_out(db_session, await enter_return(db_session, commitment_id, data, request.user))

    @post(
        "/returns/{return_id:int}/verify",
        summary="Verify a return (reviewer or admin)",
        guards=[requires_reviewer],
        status_code=HTTP_200_OK,
    )
    async def verify(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, return_id: IdParam
    ) -> DeliveryReturn:
        """Marks a delivery return verified, so it counts in the verified figures. Audited."""
        return await return_out(db_session, await review_return(db_session, return_id, request.user, verify=True))

    @post(
        "/returns/{return_id:int}/reject",
        summary="Reject a return with a reason (reviewer or admin)",
        guards=[requires_reviewer],
        status_code=HTTP_200_OK,
    )
    async def reject(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, return_id: IdParam, data: ReturnReject
    ) -> DeliveryReturn:
        """Rejects a delivery return with the reason; it stops counting as delivered. Audited."""
        row = await review_return(db_session, return_id, request.user, verify=False, reason=data.reason)
        return await return_out(db_session, row)

    @get(
        "/commitments", summary="Committed vs delivered vs verified per commitment and quarter", guards=[requires_token]
    )
    async def figures(
        self,
        db_session: AsyncSession,
        anchor_id: int | None = id_query(),
        group: str | None = Parameter(default=None, max_length=64),
        period: str | None = Parameter(default=None, pattern=PERIOD_PATTERN, description="2025Q1 or 2025/26."),
        contract_id: int | None = id_query(),
        supplier_id: int | None = id_query(),
    ) -> CommitmentFigures:
        """Committed against delivered against verified, per commitment and quarter, for an anchor, group, contract or
        supplier."""
        periods_of(period)  # a bad label is a 400 before any work
        scope = await resolve_scope(db_session, anchor_id=anchor_id, group=group)
        figures = await commitment_figures(db_session, scope, period)
        if contract_id is not None:
            figures = [f for f in figures if f.contract_id == contract_id]
        if supplier_id is not None:
            figures = [f for f in figures if f.supplier_id == supplier_id]
        cash = sum(f.verified_cash_pence or 0 for f in figures)
        proxy = sum(f.verified_proxy_pence or 0 for f in figures)
        return CommitmentFigures(
            scope=scope_ref(scope),
            period=period,
            figures=[figure_schema(f) for f in figures],
            totals=totals(figures, period if period and "/" in period else None),
            verified_cash_pence=cash,
            verified_cash=pounds(cash),
            verified_proxy_pence=proxy,
            verified_proxy=pounds(proxy),
            note=FIGURES_NOTE,
        )


class Lm3Controller(Controller):
    path = "/lm3"
    tags = ["social value"]

    @post(
        "/responses",
        summary="Record a supplier's LM3 survey answers (the anchor's editor, or an admin)",
        guards=[requires_editor],
    )
    async def record(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, data: Lm3ResponseIn
    ) -> Lm3Response:
        """Stores one supplier's LM3 survey answers for a financial year; the LM3 estimate is recomputed from them.
        Audited."""
        row = await record_lm3_response(db_session, data, request.user)
        rows = await list_lm3_responses(db_session, row.anchor_id, row.financial_year)
        name = next(n for r, n in rows if r.id == row.id)
        return lm3_response_schema(row, name)

    @get("/responses", summary="An anchor's LM3 survey answers for a financial year", guards=[requires_token])
    async def responses(
        self,
        db_session: AsyncSession,
        anchor_id: int = required_id_query(),
        year: str = Parameter(pattern=YEAR_PATTERN, description="Financial year, e.g. 2025/26."),
    ) -> list[Lm3Response]:
        """The LM3 survey answers recorded for an anchor's suppliers in one financial year."""
        parse_financial_year(year)
        return [lm3_response_schema(r, n) for r, n in await list_lm3_responses(db_session, anchor_id, year)]

    @get("/", summary="An anchor's LM3 for a financial year (survey-based estimate)", guards=[requires_token])
    async def result(
        self,
        db_session: AsyncSession,
        anchor_id: int = required_id_query(),
        year: str = Parameter(pattern=YEAR_PATTERN, description="Financial year, e.g. 2025/26."),
    ) -> Lm3Result:
        """The anchor's LM3 multiplier for a financial year, estimated from its suppliers' survey answers, with
        coverage."""
        parse_financial_year(year)
        return await lm3_result(db_session, anchor_id, year)
