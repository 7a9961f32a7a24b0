"""LM3 survey answers and the survey-based local multiplier they give."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import clock
from procurement import models as m
from procurement.audit import record_audit
from procurement.auth import Principal, ensure_can_write_for
from procurement.db import get_or_not_found
from procurement.errors import DomainError, NotFound
from procurement.metrics import schemas as sv
from procurement.metrics.commitments import LM3_METHOD
from procurement.metrics.schemas import Lm3Response, Lm3ResponseIn
from procurement.money import format_pence, to_pence
from socialvalue.lm3 import Lm3Result, SurveyResponse, lm3


async def record_lm3_response(session: AsyncSession, data: Lm3ResponseIn, actor: Principal) -> m.Lm3Response:
    """Create or replace one supplier's answers for an anchor and financial year."""
    anchor = await get_or_not_found(session, m.Organisation, data.anchor_id, "organisation")
    ensure_can_write_for(actor, anchor.id)
    if await session.get(m.Supplier, data.supplier_id) is None:
        raise NotFound(f"No supplier with id {data.supplier_id}.")
    values = {
        "round1_pence": to_pence(data.round1, field="round1"),
        "local_suppliers_pence": to_pence(data.local_suppliers, field="local_suppliers"),
        "local_wages_pence": to_pence(data.local_wages, field="local_wages"),
        "local_respend_pence": to_pence(data.local_respend, field="local_respend"),
    }
    if values["round1_pence"] <= 0:
        raise DomainError("round1 must be more than zero: it is the money traced.")
    round2 = values["local_suppliers_pence"] + values["local_wages_pence"]
    if round2 > values["round1_pence"]:
        raise DomainError("Local supplier spend plus local wages cannot exceed the money received (round 1).")
    if values["local_respend_pence"] > round2:
        raise DomainError("Round-3 re-spend cannot exceed the round-2 money it is re-spent from.")
    row = (
        await session.scalars(
            select(m.Lm3Response).where(
                m.Lm3Response.anchor_id == anchor.id,
                m.Lm3Response.financial_year == data.financial_year,
                m.Lm3Response.supplier_id == data.supplier_id,
            )
        )
    ).first()
    if row is None:
        row = m.Lm3Response(
            anchor_id=anchor.id,
            financial_year=data.financial_year,
            supplier_id=data.supplier_id,
            entered_by=actor.name,
            entered_at=clock.now(),
            **values,
        )
        session.add(row)
        changes = {k: (None, v) for k, v in values.items()}
        action = "lm3.create"
    else:
        changes = {k: (getattr(row, k), v) for k, v in values.items() if getattr(row, k) != v}
        for key, (_old, value) in changes.items():
            setattr(row, key, value)
        row.entered_by, row.entered_at = actor.name, clock.now()
        action = "lm3.update"
    await session.flush()
    await record_audit(
        session,
        actor=actor,
        action=action,
        entity_type="lm3_response",
        entity_id=row.id,
        organisation_id=anchor.id,
        changes=changes,
    )
    return row


async def list_lm3_responses(
    session: AsyncSession, anchor_id: int, financial_year: str
) -> list[tuple[m.Lm3Response, str]]:
    rows = await session.execute(
        select(m.Lm3Response, m.Supplier.name)
        .join(m.Supplier, m.Supplier.id == m.Lm3Response.supplier_id)
        .where(m.Lm3Response.anchor_id == anchor_id, m.Lm3Response.financial_year == financial_year)
        .order_by(m.Lm3Response.id)
    )
    return [(r, name) for r, name in rows.all()]


def lm3_response_schema(row: m.Lm3Response, supplier_name: str) -> Lm3Response:
    round2 = row.local_suppliers_pence + row.local_wages_pence
    return Lm3Response(
        id=row.id,
        anchor_id=row.anchor_id,
        supplier_id=row.supplier_id,
        supplier_name=supplier_name,
        financial_year=row.financial_year,
        round1_pence=row.round1_pence,
        round1=format_pence(row.round1_pence) or "",
        local_suppliers_pence=row.local_suppliers_pence,
        local_wages_pence=row.local_wages_pence,
        round2_pence=round2,
        round2=format_pence(round2) or "",
        local_respend_pence=row.local_respend_pence,
        local_respend=format_pence(row.local_respend_pence) or "",
        entered_by=row.entered_by,
        entered_at=row.entered_at,
    )


def lm3_from_responses(rows: Sequence[tuple[m.Lm3Response, str]]) -> Lm3Result:
    """socialvalue.lm3 over stored answers. A response stores its round-3 re-spend in pence, so it becomes one
    local re-spend share applied to both halves of its round 2 (R2 x share = the stored re-spend)."""
    round1 = sum(r.round1_pence for r, _ in rows)
    responses = []
    for row, name in rows:
        round2 = row.local_suppliers_pence + row.local_wages_pence
        share = Decimal(row.local_respend_pence) / Decimal(round2) if round2 else Decimal(0)
        responses.append(
            SurveyResponse(
                supplier=name,
                local_supplier_payments_pence=row.local_suppliers_pence,
                local_wages_pence=row.local_wages_pence,
                supplier_local_respend_share=min(share, Decimal(1)),
                employee_local_respend_share=min(share, Decimal(1)),
            )
        )
    return lm3(round1, responses)


async def lm3_result(session: AsyncSession, anchor_id: int, financial_year: str) -> sv.Lm3Result:
    anchor = await get_or_not_found(session, m.Organisation, anchor_id, "organisation")
    rows = await list_lm3_responses(session, anchor_id, financial_year)
    if not rows:
        raise NotFound(f"No LM3 survey answers for {anchor.name} in {financial_year}.")
    result = lm3_from_responses(rows)
    round3 = int(result.round3_pence.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    return sv.Lm3Result(
        anchor_id=anchor.id,
        anchor_name=anchor.name,
        financial_year=financial_year,
        respondents=result.respondents,
        round1_pence=result.round1_pence,
        round1=format_pence(result.round1_pence) or "",
        round2_pence=result.round2_pence,
        round2=format_pence(result.round2_pence) or "",
        round3_pence=round3,
        round3=format_pence(round3) or "",
        multiplier=str(result.multiplier.quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN)),
        label=result.label,
        method=LM3_METHOD,
    )
