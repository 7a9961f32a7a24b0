"""Social value: the measure catalogue, commitments per contract with quarterly returns, anchor groups and LM3.

Any token reads. Editors record commitments, returns and LM3 answers for their own organisation; reviewers and
admins verify or reject returns; admins edit proxy values and anchor groups.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from litestar import Controller, Request, delete, get, patch, post, put
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import schemas as s
from procurement import schemas_social_value as sv
from procurement import social_value as svc
from procurement.auth import Principal, requires_admin, requires_editor, requires_reviewer, requires_token
from procurement.controllers.metrics import pounds, scope_ref
from procurement.controllers.paging import DEFAULT_LIMIT, Limit, Offset
from procurement.metrics_data import CommitmentFigure, commitment_figures, periods_of, resolve_scope
from procurement.social_value import format_quantity
from socialvalue.periods import parse_financial_year

FIGURES_NOTE = (
    "committed = the quarter's target; delivered = returns entered and not rejected; verified = returns a "
    "reviewer verified. Cash measures are pence actually spent; proxy values are monetised estimates with their "
    "own source, year and price base, reported apart from cash and never added to it."
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
        organisation_id: int | None = Parameter(
            default=None, ge=1, description="The shared catalogue plus this anchor's own measures."
        ),
    ) -> s.Page[sv.Measure]:
        rows = await svc.list_measures(db_session, framework=framework, organisation_id=organisation_id)
        items = [svc.measure_schema(x) for x in rows[offset : offset + limit]]
        return s.Page(items=items, total=len(rows), limit=limit, offset=offset)

    @get("/{measure_id:int}", summary="One measure", guards=[requires_token])
    async def get_measure(self, db_session: AsyncSession, measure_id: int) -> sv.Measure:
        return svc.measure_schema(await svc.get_measure(db_session, measure_id))

    @post("/local", summary="Add an anchor's own local measure (its editor, or an admin)", guards=[requires_editor])
    async def create_local_measure(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, data: sv.LocalMeasureCreate
    ) -> sv.Measure:
        return svc.measure_schema(await svc.create_local_measure(db_session, data, request.user))

    @put("/{measure_id:int}/proxy", summary="Set or clear a measure's proxy value (admin)", guards=[requires_admin])
    async def update_proxy(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, measure_id: int, data: sv.ProxyUpdate
    ) -> sv.Measure:
        return svc.measure_schema(await svc.update_proxy(db_session, measure_id, data, request.user))


def figure_schema(f: CommitmentFigure) -> sv.CommitmentFigure:
    cash = f.verified_cash_pence
    proxy = f.verified_proxy_pence
    return sv.CommitmentFigure(
        commitment_id=f.commitment_id,
        contract_id=f.contract_id,
        contract_title=f.contract_title,
        anchor_id=f.anchor_id,
        anchor_name=f.anchor_name,
        supplier_id=f.supplier_id,
        supplier_name=f.supplier_name,
        measure=sv.MeasureRef(
            id=f.measure_id, framework=f.measure_framework, code=f.measure_code, name=f.measure_name, kind=f.kind
        ),
        unit=f.unit,
        period=f.period,
        committed=format_quantity(f.committed),
        delivered=format_quantity(f.delivered),
        verified=format_quantity(f.verified),
        pending=format_quantity(f.pending),
        rejected=format_quantity(f.rejected),
        verified_cash_pence=cash,
        verified_cash=None if cash is None else pounds(cash),
        proxy_per_unit_pence=None if f.kind == "cash" else f.proxy_value_pence,
        verified_proxy_pence=proxy,
        verified_proxy=None if proxy is None else pounds(proxy),
        proxy_source=None if proxy is None else f.proxy_source,
        proxy_year=None if proxy is None else f.proxy_year,
        proxy_price_base=None if proxy is None else f.proxy_price_base,
    )


def totals(figures: list[CommitmentFigure], year: str | None = None) -> list[sv.CommitmentTotal]:
    """Per measure, unit and quarter; or per financial year when one is asked for."""
    groups: dict[tuple[int, str, str], list[CommitmentFigure]] = defaultdict(list)
    for f in figures:
        groups[(f.measure_id, f.unit, year or f.period)].append(f)
    out = []
    for (_measure_id, unit, period), items in sorted(groups.items(), key=lambda kv: (kv[0][2], kv[0][0], kv[0][1])):
        first = items[0]
        out.append(
            sv.CommitmentTotal(
                measure=sv.MeasureRef(
                    id=first.measure_id,
                    framework=first.measure_framework,
                    code=first.measure_code,
                    name=first.measure_name,
                    kind=first.kind,
                ),
                unit=unit,
                period=period,
                commitments=len({f.commitment_id for f in items}),
                committed=format_quantity(sum((f.committed for f in items), Decimal(0))),
                delivered=format_quantity(sum((f.delivered for f in items), Decimal(0))),
                verified=format_quantity(sum((f.verified for f in items), Decimal(0))),
            )
        )
    return out


class CommitmentController(Controller):
    path = "/"
    tags = ["social value"]

    @get("/contracts/{contract_id:int}/commitments", summary="A contract's commitments", guards=[requires_token])
    async def list_for_contract(self, db_session: AsyncSession, contract_id: int) -> list[sv.Commitment]:
        rows = await svc.list_commitments(db_session, contract_id)
        return [await svc.commitment_schema(db_session, c) for c in rows]

    @post(
        "/contracts/{contract_id:int}/commitments",
        summary="Record a social-value commitment with quarterly targets (the buyer's editor, or an admin)",
        guards=[requires_editor],
    )
    async def create(
        self,
        request: Request[Principal, Any, Any],
        db_session: AsyncSession,
        contract_id: int,
        data: sv.CommitmentCreate,
    ) -> sv.Commitment:
        commitment = await svc.create_commitment(db_session, contract_id, data, request.user)
        return await svc.commitment_schema(db_session, commitment)

    @get(
        "/commitments/{commitment_id:int}",
        summary="One commitment with its targets and returns",
        guards=[requires_token],
    )
    async def get_one(self, db_session: AsyncSession, commitment_id: int) -> sv.Commitment:
        commitment, _contract = await svc.get_commitment(db_session, commitment_id)
        return await svc.commitment_schema(db_session, commitment)

    @patch("/commitments/{commitment_id:int}", summary="Change targets, unit or note", guards=[requires_editor])
    async def update(
        self,
        request: Request[Principal, Any, Any],
        db_session: AsyncSession,
        commitment_id: int,
        data: sv.CommitmentUpdate,
    ) -> sv.Commitment:
        commitment = await svc.update_commitment(db_session, commitment_id, data, request.user)
        return await svc.commitment_schema(db_session, commitment)

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
        commitment_id: int,
        reason: str = Parameter(min_length=3, max_length=1000, description="Why (kept in the audit trail)."),
    ) -> None:
        await svc.delete_commitment(db_session, commitment_id, reason, request.user)

    @post(
        "/commitments/{commitment_id:int}/returns",
        summary="Enter a supplier's quarterly delivery return (the buyer's editor, or an admin)",
        guards=[requires_editor],
    )
    async def enter_return(
        self,
        request: Request[Principal, Any, Any],
        db_session: AsyncSession,
        commitment_id: int,
        data: sv.ReturnCreate,
    ) -> sv.DeliveryReturn:
        return svc.return_schema(await svc.enter_return(db_session, commitment_id, data, request.user))

    @post(
        "/returns/{return_id:int}/verify",
        summary="Verify a return (reviewer or admin)",
        guards=[requires_reviewer],
        status_code=HTTP_200_OK,
    )
    async def verify(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, return_id: int
    ) -> sv.DeliveryReturn:
        return svc.return_schema(await svc.review_return(db_session, return_id, request.user, verify=True))

    @post(
        "/returns/{return_id:int}/reject",
        summary="Reject a return with a reason (reviewer or admin)",
        guards=[requires_reviewer],
        status_code=HTTP_200_OK,
    )
    async def reject(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, return_id: int, data: sv.ReturnReject
    ) -> sv.DeliveryReturn:
        row = await svc.review_return(db_session, return_id, request.user, verify=False, reason=data.reason)
        return svc.return_schema(row)

    @get(
        "/commitments", summary="Committed vs delivered vs verified per commitment and quarter", guards=[requires_token]
    )
    async def figures(
        self,
        db_session: AsyncSession,
        anchor_id: int | None = Parameter(default=None, ge=1),
        group: str | None = Parameter(default=None, max_length=64),
        period: str | None = Parameter(default=None, max_length=8, description="2025Q1 or 2025/26."),
        contract_id: int | None = Parameter(default=None, ge=1),
        supplier_id: int | None = Parameter(default=None, ge=1),
    ) -> sv.CommitmentFigures:
        periods_of(period)  # a bad label is a 400 before any work
        scope = await resolve_scope(db_session, anchor_id=anchor_id, group=group)
        figures = await commitment_figures(db_session, scope, period)
        if contract_id is not None:
            figures = [f for f in figures if f.contract_id == contract_id]
        if supplier_id is not None:
            figures = [f for f in figures if f.supplier_id == supplier_id]
        cash = sum(f.verified_cash_pence or 0 for f in figures)
        proxy = sum(f.verified_proxy_pence or 0 for f in figures)
        return sv.CommitmentFigures(
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


class AnchorGroupController(Controller):
    path = "/anchor-groups"
    tags = ["social value"]

    @get("/", summary="Anchor groups reported together", guards=[requires_token])
    async def list_groups(self, db_session: AsyncSession) -> list[sv.AnchorGroup]:
        return [await svc.group_schema(db_session, g) for g in await svc.list_groups(db_session)]

    @get("/{slug:str}", summary="One anchor group", guards=[requires_token])
    async def get_group(self, db_session: AsyncSession, slug: str) -> sv.AnchorGroup:
        return await svc.group_schema(db_session, await svc.get_group(db_session, slug))

    @post("/", summary="Create an anchor group (admin)", guards=[requires_admin])
    async def create_group(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, data: sv.AnchorGroupCreate
    ) -> sv.AnchorGroup:
        return await svc.group_schema(db_session, await svc.create_group(db_session, data, request.user))

    @patch("/{slug:str}", summary="Rename an anchor group or replace its members (admin)", guards=[requires_admin])
    async def update_group(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, slug: str, data: sv.AnchorGroupUpdate
    ) -> sv.AnchorGroup:
        return await svc.group_schema(db_session, await svc.update_group(db_session, slug, data, request.user))

    @delete("/{slug:str}", summary="Delete an anchor group (admin)", guards=[requires_admin])
    async def delete_group(self, request: Request[Principal, Any, Any], db_session: AsyncSession, slug: str) -> None:
        await svc.delete_group(db_session, slug, request.user)


class Lm3Controller(Controller):
    path = "/lm3"
    tags = ["social value"]

    @post(
        "/responses",
        summary="Record a supplier's LM3 survey answers (the anchor's editor, or an admin)",
        guards=[requires_editor],
    )
    async def record(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, data: sv.Lm3ResponseIn
    ) -> sv.Lm3Response:
        row = await svc.record_lm3_response(db_session, data, request.user)
        rows = await svc.list_lm3_responses(db_session, row.anchor_id, row.financial_year)
        name = next(n for r, n in rows if r.id == row.id)
        return svc.lm3_response_schema(row, name)

    @get("/responses", summary="An anchor's LM3 survey answers for a financial year", guards=[requires_token])
    async def responses(
        self,
        db_session: AsyncSession,
        anchor_id: int = Parameter(ge=1),
        year: str = Parameter(max_length=7, description="Financial year, e.g. 2025/26."),
    ) -> list[sv.Lm3Response]:
        parse_financial_year(year)
        return [svc.lm3_response_schema(r, n) for r, n in await svc.list_lm3_responses(db_session, anchor_id, year)]

    @get("/", summary="An anchor's LM3 for a financial year (survey-based estimate)", guards=[requires_token])
    async def result(
        self,
        db_session: AsyncSession,
        anchor_id: int = Parameter(ge=1),
        year: str = Parameter(max_length=7, description="Financial year, e.g. 2025/26."),
    ) -> sv.Lm3Result:
        parse_financial_year(year)
        return await svc.lm3_result(db_session, anchor_id, year)
