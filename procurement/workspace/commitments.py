"""The commitments page of the workspace: committed against delivered against verified, per contract and measure,
for the chosen anchor or group, and the returns procurement teams entered, with their evidence, for reviewers to
verify or reject with a reason.

Figures come from ``procurement.metrics.commitments.commitment_figures`` (the API's /commitments) and verdicts go
through its ``review_return`` (its scope rules, refusals and audit). Editors see their own organisation's figures
and returns, with a link to enter one; only those who may review an organisation see the verdict forms.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from litestar import Controller, Request, Response, get, post
from litestar.params import Parameter
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER, HTTP_400_BAD_REQUEST
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.auth import Principal, requires_reviewer, requires_token
from procurement.metrics.commitments import CommitmentFigureRow, commitment_figures, periods_of, review_return
from procurement.metrics.lines import Scope, resolve_scope
from procurement.metrics.measures import format_quantity
from procurement.web.frame import NO_STORE, PAGE_EXCEPTION_HANDLERS, page_context
from procurement.workspace.parameters import ScopeChoice
from procurement.workspace.service import Selection, period_text, query_with, scope_choices, selection_for

PATH = "/workspace/commitments"
MIN_REASON, MAX_REASON = 3, 1000  # the API's Reason
REVIEWED_SHOWN = 50

_PERIOD = Parameter(default=None, max_length=8, description="2025Q1, 2025/26, or empty for every quarter.")


@dataclass(frozen=True)
class EvidenceFile:
    id: int
    filename: str
    size_bytes: int


@dataclass(frozen=True)
class ReturnRow:
    """One return as a reviewer reads it."""

    id: int
    anchor_id: int
    contract_id: int
    contract_title: str
    supplier_name: str | None
    measure: str
    unit: str
    period: str
    quantity: str
    status: str
    evidence_note: str | None
    evidence_url: str | None
    files: list[EvidenceFile]
    entered_by: str
    entered_at: dt.datetime
    reviewed_by: str | None
    reviewed_at: dt.datetime | None
    review_reason: str | None


@dataclass(frozen=True)
class ContractFigures:
    contract_id: int
    title: str
    anchor_name: str
    rows: list[CommitmentFigureRow]


async def returns_for(session: AsyncSession, scope: Scope, period: str | None) -> list[ReturnRow]:
    """The scope's returns (of the period's quarters, when one is chosen): waiting ones first, oldest first, then
    the latest verdicts."""
    wanted = periods_of(period)
    r, c = m.DeliveryReturn, m.Commitment
    query = (
        select(
            r,
            c.unit,
            m.Contract.id,
            m.Contract.title,
            m.Contract.buyer_id,
            m.Measure.name,
            m.Measure.kind,
            m.Supplier.name,
        )
        .join(c, c.id == r.commitment_id)
        .join(m.Contract, m.Contract.id == c.contract_id)
        .join(m.Measure, m.Measure.id == c.measure_id)
        .outerjoin(m.Supplier, m.Supplier.id == c.supplier_id)
        .where(m.Contract.buyer_id.in_(list(scope.anchor_ids)))
        .order_by(r.entered_at, r.id)
    )
    if wanted is not None:
        query = query.where(r.period.in_(sorted(wanted)))
    rows = (await session.execute(query)).all()
    files: dict[int, list[EvidenceFile]] = defaultdict(list)
    if rows:
        stored = await session.execute(
            select(m.EvidenceFile.id, m.EvidenceFile.return_id, m.EvidenceFile.filename, m.EvidenceFile.size_bytes)
            .where(m.EvidenceFile.return_id.in_([row[0].id for row in rows]))
            .order_by(m.EvidenceFile.id)
        )
        for file_id, return_id, filename, size in stored.all():
            files[return_id].append(EvidenceFile(file_id, filename, size))
    out = [
        ReturnRow(
            id=ret.id,
            anchor_id=buyer_id,
            contract_id=contract_id,
            contract_title=title,
            supplier_name=supplier_name,
            measure=measure,
            unit=unit,
            period=ret.period,
            quantity=format_quantity(Decimal(ret.quantity), kind),
            status=ret.status,
            evidence_note=ret.evidence_note,
            evidence_url=ret.evidence_url,
            files=files.get(ret.id, []),
            entered_by=ret.entered_by,
            entered_at=ret.entered_at,
            reviewed_by=ret.reviewed_by,
            reviewed_at=ret.reviewed_at,
            review_reason=ret.review_reason,
        )
        for ret, unit, contract_id, title, buyer_id, measure, kind, supplier_name in rows
    ]
    waiting = [x for x in out if x.status == m.ReturnStatus.SUBMITTED]
    decided = sorted(
        (x for x in out if x.status != m.ReturnStatus.SUBMITTED),
        key=lambda x: (x.reviewed_at or x.entered_at, x.id),
        reverse=True,
    )
    return waiting + decided[:REVIEWED_SHOWN]


def by_contract(figures: list[CommitmentFigureRow]) -> list[ContractFigures]:
    grouped: dict[int, list[CommitmentFigureRow]] = defaultdict(list)
    for f in figures:
        grouped[f.contract_id].append(f)
    out = [
        ContractFigures(rows[0].contract_id, rows[0].contract_title, rows[0].anchor_name, rows)
        for rows in grouped.values()
    ]
    return sorted(out, key=lambda x: (x.title.lower(), x.contract_id))


def _amount(value: Decimal, row: CommitmentFigureRow) -> str:
    shown = format_quantity(value, row.kind)
    return f"£{Decimal(shown):,.2f}" if row.kind == "cash" else f"{shown} {row.unit}"


async def _page(
    request: Request[Principal, Any, Any],
    session: AsyncSession,
    selection: Selection,
    *,
    done: str | None = None,
    errors: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
    status: int = 200,
) -> Template:
    principal = request.user
    scope = await resolve_scope(session, anchor_id=selection.anchor_id, group=selection.group)
    figures = await commitment_figures(session, scope, selection.period)
    returns = await returns_for(session, scope, selection.period)
    quarters = sorted({f.period for f in figures} | {r.period for r in returns}, reverse=True)
    back = query_with({"scope": selection.scope_value, "period": selection.period})
    return Template(
        template_name="workspace/commitments.html",
        context=page_context(
            request,
            PATH,
            sel=selection,
            scope=scope,
            choices=await scope_choices(session, principal),
            periods=[("", "Every quarter"), *((q, period_text(q)) for q in quarters)],
            contracts=by_contract(figures),
            amount=_amount,
            waiting=[r for r in returns if r.status == m.ReturnStatus.SUBMITTED],
            decided=[r for r in returns if r.status != m.ReturnStatus.SUBMITTED],
            may_review={r.anchor_id: principal.can_review_for(r.anchor_id) for r in returns},
            keeps_records=principal.role in (m.Role.EDITOR, m.Role.ADMIN),
            period_name=period_text(selection.period) if selection.period else "every quarter",
            back=back,
            done=done,
            errors=errors or {},
            typed=typed or {},
        ),
        status_code=status,
    )


def _text(form: Mapping[str, Any], name: str, limit: int) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


class CommitmentPagesController(Controller):
    path = PATH
    include_in_schema = False
    guards = [requires_token]
    exception_handlers = PAGE_EXCEPTION_HANDLERS
    response_headers = NO_STORE

    @get("/", name="workspace-commitments")
    async def commitments_page(
        self,
        request: Request[Principal, Any, Any],
        db_session: AsyncSession,
        scope_choice: ScopeChoice = None,
        period: str | None = _PERIOD,
        done: str | None = Parameter(default=None, pattern="^(verified|rejected)$"),
    ) -> Template:
        selection = selection_for(request.user, scope_choice, period, None)
        return await _page(request, db_session, selection, done=done)

    @post("/returns/{return_id:int}/review", name="workspace-return-review", guards=[requires_reviewer])
    async def review_submit(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, return_id: int
    ) -> Response[Any]:
        """Verify or reject one return, with the reviewer's reason (kept with the verdict and in the audit)."""
        form = await request.form()
        decision = _text(form, "decision", 10)
        reason = _text(form, "reason", MAX_REASON + 1)
        # Only the page's own choices go back into the address (never raw text from the form).
        chosen = dict(parse_qsl(_text(form, "back", 300)))
        selection = selection_for(request.user, chosen.get("scope"), chosen.get("period"), None)
        field = f"reason-{return_id}"
        problem = None
        if decision not in ("verify", "reject"):
            problem = "Choose Verify or Reject"
        elif len(reason) < MIN_REASON:
            problem = (
                "Enter why you verify this return, for example Matches the supplier's payroll report"
                if decision == "verify"
                else "Enter why you reject this return, for example The evidence covers another quarter"
            )
        elif len(reason) > MAX_REASON:
            problem = f"The reason must be {MAX_REASON:,} characters or fewer"
        if problem:
            return await _page(
                request,
                db_session,
                selection,
                errors={field: problem},
                typed={field: reason},
                status=HTTP_400_BAD_REQUEST,
            )
        await review_return(db_session, return_id, request.user, verify=decision == "verify", reason=reason)
        await db_session.commit()  # "autocommit" commits 2xx answers only, never a redirect
        done = "verified" if decision == "verify" else "rejected"
        query = query_with({"scope": selection.scope_value, "period": selection.period, "done": done})
        return Redirect(f"{PATH}?{query}#returns", status_code=HTTP_303_SEE_OTHER)
