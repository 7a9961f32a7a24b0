"""Social-value commitments per contract with quarterly targets, suppliers' returns and reviewers' verdicts."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import clock
from procurement import models as m
from procurement.audit import record_audit
from procurement.auth import (
    Principal,
    ensure_can_review_for,
    ensure_can_write_for,
)
from procurement.db import get_or_not_found
from procurement.errors import ConflictError, DomainError
from procurement.metrics.lines import Scope
from procurement.metrics.measures import format_quantity, get_measure, measure_ref
from procurement.metrics.schemas import (
    Commitment,
    CommitmentCreate,
    CommitmentFigure,
    CommitmentTotal,
    CommitmentUpdate,
    DeliveryReturn,
    MeasureRef,
    ReturnCreate,
    Target,
    TargetIn,
)
from procurement.metrics.service import pounds
from procurement.money import to_pence
from socialvalue import catalogue
from socialvalue.periods import financial_year_bounds, quarter_bounds, quarter_of, quarters_between

FIGURES_NOTE = (
    "committed = the quarter's target; delivered = returns entered and not rejected; verified = returns a "
    "reviewer verified. Cash measures are pounds actually spent; proxy values are monetised estimates with their "
    "own source, year and price base, reported apart from cash and never added to it."
)


def figure_schema(f: CommitmentFigureRow) -> CommitmentFigure:
    cash = f.verified_cash_pence
    proxy = f.verified_proxy_pence
    return CommitmentFigure(
        commitment_id=f.commitment_id,
        contract_id=f.contract_id,
        contract_title=f.contract_title,
        anchor_id=f.anchor_id,
        anchor_name=f.anchor_name,
        supplier_id=f.supplier_id,
        supplier_name=f.supplier_name,
        measure=MeasureRef(
            id=f.measure_id, framework=f.measure_framework, code=f.measure_code, name=f.measure_name, kind=f.kind
        ),
        unit=f.unit,
        period=f.period,
        committed=format_quantity(f.committed, f.kind),
        delivered=format_quantity(f.delivered, f.kind),
        verified=format_quantity(f.verified, f.kind),
        pending=format_quantity(f.pending, f.kind),
        rejected=format_quantity(f.rejected, f.kind),
        verified_cash_pence=cash,
        verified_cash=None if cash is None else pounds(cash),
        proxy_per_unit_pence=None if f.kind == "cash" else f.proxy_value_pence,
        verified_proxy_pence=proxy,
        verified_proxy=None if proxy is None else pounds(proxy),
        proxy_source=None if proxy is None else f.proxy_source,
        proxy_year=None if proxy is None else f.proxy_year,
        proxy_price_base=None if proxy is None else f.proxy_price_base,
    )


def totals(figures: list[CommitmentFigureRow], year: str | None = None) -> list[CommitmentTotal]:
    """Per measure, unit and quarter; or per financial year when one is asked for."""
    groups: dict[tuple[int, str, str], list[CommitmentFigureRow]] = defaultdict(list)
    for f in figures:
        groups[(f.measure_id, f.unit, year or f.period)].append(f)
    out = []
    for (_measure_id, unit, period), items in sorted(groups.items(), key=lambda kv: (kv[0][2], kv[0][0], kv[0][1])):
        first = items[0]
        out.append(
            CommitmentTotal(
                measure=MeasureRef(
                    id=first.measure_id,
                    framework=first.measure_framework,
                    code=first.measure_code,
                    name=first.measure_name,
                    kind=first.kind,
                ),
                unit=unit,
                period=period,
                commitments=len({f.commitment_id for f in items}),
                committed=format_quantity(sum((f.committed for f in items), Decimal(0)), first.kind),
                delivered=format_quantity(sum((f.delivered for f in items), Decimal(0)), first.kind),
                verified=format_quantity(sum((f.verified for f in items), Decimal(0)), first.kind),
            )
        )
    return out


@dataclass(frozen=True)
class CommitmentFigureRow:
    """One commitment in one quarter: committed (target), delivered (returns not rejected), verified."""

    commitment_id: int
    contract_id: int
    contract_title: str
    anchor_id: int
    anchor_name: str
    supplier_id: int | None
    supplier_name: str | None
    measure_id: int
    measure_framework: str
    measure_code: str
    measure_name: str
    kind: str  # cash | output
    unit: str
    period: str
    committed: Decimal
    delivered: Decimal
    verified: Decimal
    pending: Decimal
    rejected: Decimal
    proxy_value_pence: int | None
    proxy_source: str | None
    proxy_year: int | None
    proxy_price_base: str | None

    @property
    def verified_cash_pence(self) -> int | None:
        # Cash quantities are pounds with at most two decimals (checked on entry), so this is exact.
        return int(self.verified * 100) if self.kind == "cash" else None

    @property
    def verified_proxy_pence(self) -> int | None:
        """Verified quantity x proxy per unit, to the penny; monetised, so never added to cash."""
        if self.kind == "cash" or self.proxy_value_pence is None:
            return None
        return int((self.verified * self.proxy_value_pence).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def periods_of(period: str | None) -> set[str] | None:
    """A quarter label stands for itself; a financial year for its four quarters."""
    if period is None:
        return None
    if "/" in period:
        start, end = financial_year_bounds(period)
        return set(quarters_between(quarter_of(start), quarter_of(end)))
    quarters_between(period, period)  # validates the label
    return {period}


async def commitment_figures(
    session: AsyncSession, scope: Scope, period: str | None = None
) -> list[CommitmentFigureRow]:
    wanted = periods_of(period)
    c = m.Contract
    query = (
        select(m.Commitment, c.title, c.buyer_id, m.Organisation.name, m.Measure)
        .join(c, c.id == m.Commitment.contract_id)
        .join(m.Organisation, m.Organisation.id == c.buyer_id)
        .join(m.Measure, m.Measure.id == m.Commitment.measure_id)
        .where(c.buyer_id.in_(list(scope.anchor_ids)))
        .order_by(m.Commitment.id)
    )
    rows = (await session.execute(query)).all()
    supplier_ids = {r[0].supplier_id for r in rows if r[0].supplier_id is not None}
    names: dict[int, str] = {}
    if supplier_ids:
        found = await session.execute(select(m.Supplier.id, m.Supplier.name).where(m.Supplier.id.in_(supplier_ids)))
        names = {r.id: r.name for r in found.all()}
    out: list[CommitmentFigureRow] = []
    zero = Decimal(0)
    for commitment, title, buyer_id, buyer_name, measure in rows:
        committed: dict[str, Decimal] = {t.period: Decimal(t.quantity) for t in commitment.targets}
        sums: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        for r in commitment.returns:
            sums[r.period][r.status] += Decimal(r.quantity)
        for p in sorted(set(committed) | set(sums)):
            if wanted is not None and p not in wanted:
                continue
            by_status = sums.get(p, {})
            verified = by_status.get("verified", zero)
            pending = by_status.get("submitted", zero)
            out.append(
                CommitmentFigureRow(
                    commitment_id=commitment.id,
                    contract_id=commitment.contract_id,
                    contract_title=title,
                    anchor_id=buyer_id,
                    anchor_name=buyer_name,
                    supplier_id=commitment.supplier_id,
                    supplier_name=names.get(commitment.supplier_id) if commitment.supplier_id else None,
                    measure_id=measure.id,
                    measure_framework=measure.framework,
                    measure_code=measure.code,
                    measure_name=measure.name,
                    kind=measure.kind,
                    unit=commitment.unit,
                    period=p,
                    committed=committed.get(p, zero),
                    delivered=verified + pending,
                    verified=verified,
                    pending=pending,
                    rejected=by_status.get("rejected", zero),
                    proxy_value_pence=measure.proxy_value_pence,
                    proxy_source=measure.proxy_source,
                    proxy_year=measure.proxy_year,
                    proxy_price_base=measure.proxy_price_base,
                )
            )
    return out


SUBMITTED, VERIFIED, REJECTED = m.ReturnStatus.SUBMITTED, m.ReturnStatus.VERIFIED, m.ReturnStatus.REJECTED


async def _contract(session: AsyncSession, contract_id: int) -> m.Contract:
    return await get_or_not_found(session, m.Contract, contract_id, "contract")


async def get_commitment(session: AsyncSession, commitment_id: int) -> tuple[m.Commitment, m.Contract]:
    commitment = await get_or_not_found(session, m.Commitment, commitment_id, "commitment")
    return commitment, await _contract(session, commitment.contract_id)


def _check_cash_quantity(measure: m.Measure, quantity: Decimal, what: str) -> None:
    if measure.kind != "cash":
        return
    try:
        to_pence(quantity, field=what)
    except ValueError as exc:
        raise DomainError(f"{exc}: a cash measure is pounds with at most two decimals, like 5000.00.") from exc


def _contract_period(contract: m.Contract) -> tuple[dt.date, dt.date] | None:
    start = contract.start_date or contract.award_date
    end = contract.end_date
    return (start, end) if start is not None and end is not None else None


def _targets(measure: m.Measure, targets: list[TargetIn], contract: m.Contract) -> list[m.CommitmentTarget]:
    span = _contract_period(contract)
    for t in targets:
        _check_cash_quantity(measure, t.quantity, f"target {t.period}")
        first, last = quarter_bounds(t.period)
        if span is not None and (last < span[0] or first > span[1]):
            raise DomainError(
                f"target {t.period} is outside the contract period ({clock.long_date(span[0])} to "
                f"{clock.long_date(span[1])}); give targets only for quarters the contract runs in."
            )
    return [m.CommitmentTarget(period=t.period, quantity=t.quantity) for t in sorted(targets, key=lambda t: t.period)]


def _target_pairs(targets: Sequence[m.CommitmentTarget]) -> list[list[str]]:
    return [[t.period, format_quantity(Decimal(t.quantity))] for t in sorted(targets, key=lambda t: t.period)]


async def list_commitments(session: AsyncSession, contract_id: int) -> Sequence[m.Commitment]:
    await _contract(session, contract_id)
    rows = await session.scalars(
        select(m.Commitment).where(m.Commitment.contract_id == contract_id).order_by(m.Commitment.id)
    )
    return rows.all()


async def create_commitment(
    session: AsyncSession, contract_id: int, data: CommitmentCreate, actor: Principal
) -> m.Commitment:
    contract = await _contract(session, contract_id)
    ensure_can_write_for(actor, contract.buyer_id)
    measure = await get_measure(session, data.measure_id)
    if not measure.active:
        raise DomainError(f"Measure {measure.code} is retired.")
    if measure.owner_organisation_id is not None and measure.owner_organisation_id != contract.buyer_id:
        raise DomainError(f"Measure {measure.code} is another anchor's local measure.")
    if data.supplier_id is not None:
        on_contract = await session.scalar(
            select(m.ContractSupplier.id).where(
                m.ContractSupplier.contract_id == contract.id, m.ContractSupplier.supplier_id == data.supplier_id
            )
        )
        if on_contract is None:
            raise DomainError(f"Supplier {data.supplier_id} is not a supplier on contract {contract.id}.")
    same = await session.scalar(
        select(m.Commitment.id).where(
            m.Commitment.contract_id == contract.id,
            m.Commitment.measure_id == measure.id,
            m.Commitment.supplier_id.is_(None)
            if data.supplier_id is None
            else m.Commitment.supplier_id == data.supplier_id,
        )
    )
    if same is not None:
        raise ConflictError(
            f"Contract {contract.id} already has commitment {same} for measure {measure.code}"
            + ("" if data.supplier_id is None else f" and supplier {data.supplier_id}")
            + f"; change its targets instead (PATCH /commitments/{same})."
        )
    unit = (data.unit or "").strip() or measure.unit
    if measure.kind == "cash":
        if data.unit not in (None, catalogue.CASH_UNIT):
            raise DomainError("A cash measure is counted in pounds; leave unit out.")
        unit = catalogue.CASH_UNIT
    elif unit == catalogue.CONTRACT_UNIT:
        raise DomainError(f"Measure {measure.code} has no unit of its own: say what is counted (unit).")
    commitment = m.Commitment(
        contract_id=contract.id,
        supplier_id=data.supplier_id,
        measure_id=measure.id,
        unit=unit,
        note=data.note,
        created_by=actor.name,
        targets=_targets(measure, data.targets, contract),
    )
    session.add(commitment)
    await session.flush()
    await record_audit(
        session,
        actor=actor,
        action="commitment.create",
        entity_type="commitment",
        entity_id=commitment.id,
        organisation_id=contract.buyer_id,
        changes={
            "contract_id": (None, contract.id),
            "measure": (None, f"{measure.framework}:{measure.code}"),
            "unit": (None, unit),
            "targets": (None, _target_pairs(commitment.targets)),
        },
    )
    await session.refresh(commitment, ["targets", "returns"])
    return commitment


async def update_commitment(
    session: AsyncSession, commitment_id: int, data: CommitmentUpdate, actor: Principal
) -> m.Commitment:
    commitment, contract = await get_commitment(session, commitment_id)
    ensure_can_write_for(actor, contract.buyer_id)
    measure = await get_measure(session, commitment.measure_id)
    changes: dict[str, tuple[object, object]] = {}
    if isinstance(data.unit, str) and data.unit.strip() != commitment.unit:
        if measure.kind == "cash":
            raise DomainError("A cash measure is counted in pounds; leave unit out.")
        if commitment.returns:
            raise DomainError("Returns have been entered in this unit; record a new commitment instead.")
        changes["unit"] = (commitment.unit, data.unit.strip())
        commitment.unit = data.unit.strip()
    if not isinstance(data.note, msgspec.UnsetType) and data.note != commitment.note:
        changes["note"] = (commitment.note, data.note)
        commitment.note = data.note
    if isinstance(data.targets, list):
        old = _target_pairs(commitment.targets)
        new_rows = _targets(measure, data.targets, contract)
        if old != _target_pairs(new_rows):
            commitment.targets.clear()
            await session.flush()
            commitment.targets.extend(new_rows)
            changes["targets"] = (old, _target_pairs(new_rows))
    if changes:
        await record_audit(
            session,
            actor=actor,
            action="commitment.update",
            entity_type="commitment",
            entity_id=commitment.id,
            organisation_id=contract.buyer_id,
            changes=changes,
        )
    await session.flush()
    await session.refresh(commitment, ["targets", "returns"])
    return commitment


async def delete_commitment(session: AsyncSession, commitment_id: int, reason: str, actor: Principal) -> None:
    commitment, contract = await get_commitment(session, commitment_id)
    ensure_can_write_for(actor, contract.buyer_id)
    if any(r.status == VERIFIED for r in commitment.returns):
        raise DomainError("A verified return stands against this commitment; it cannot be deleted.")
    await record_audit(
        session,
        actor=actor,
        action="commitment.delete",
        entity_type="commitment",
        entity_id=commitment.id,
        organisation_id=contract.buyer_id,
        changes={"targets": (_target_pairs(commitment.targets), None)},
        reason=reason.strip(),
    )
    await session.delete(commitment)
    await session.flush()


async def enter_return(
    session: AsyncSession,
    commitment_id: int,
    data: ReturnCreate,
    actor: Principal,
    *,
    today: dt.date | None = None,
) -> m.DeliveryReturn:
    """A supplier's quarterly return, entered by the buyer's editor (or an admin) for the reviewer.

    A return reports a quarter that is over (``today`` defaults to today in the UK) and has a target."""
    commitment, contract = await get_commitment(session, commitment_id)
    ensure_can_write_for(actor, contract.buyer_id)
    measure = await get_measure(session, commitment.measure_id)
    _check_cash_quantity(measure, data.quantity, "quantity")
    not_over = clock.quarter_not_over(data.period, today)
    if not_over is not None:
        raise DomainError(f"period {not_over}; enter its return once the quarter is over.")
    targeted = [t.period for t in commitment.targets]
    if data.period not in targeted:
        raise DomainError(
            f"period {data.period} has no target on commitment {commitment.id} (targets: "
            f"{', '.join(targeted) or 'none'}); add a target for it first."
        )
    standing = [r for r in commitment.returns if r.period == data.period and r.status != REJECTED]
    if standing:
        raise ConflictError(
            f"A return for {data.period} is already {standing[0].status} (id {standing[0].id}); "
            "only a rejected return can be replaced."
        )
    row = m.DeliveryReturn(
        commitment_id=commitment.id,
        period=data.period,
        quantity=data.quantity,
        evidence_note=data.evidence_note.strip() if data.evidence_note else None,
        evidence_url=data.evidence_url,
        status=SUBMITTED,
        entered_by=actor.name,
        entered_at=clock.now(),
    )
    session.add(row)
    await session.flush()
    await record_audit(
        session,
        actor=actor,
        action="return.enter",
        entity_type="delivery_return",
        entity_id=row.id,
        organisation_id=contract.buyer_id,
        changes={
            "commitment_id": (None, commitment.id),
            "period": (None, data.period),
            "quantity": (None, format_quantity(data.quantity)),
        },
    )
    return row


async def get_return(session: AsyncSession, return_id: int) -> tuple[m.DeliveryReturn, m.Contract]:
    row = await get_or_not_found(session, m.DeliveryReturn, return_id, "return")
    _commitment, contract = await get_commitment(session, row.commitment_id)
    return row, contract


async def review_return(
    session: AsyncSession, return_id: int, actor: Principal, *, verify: bool, reason: str | None = None
) -> m.DeliveryReturn:
    row, contract = await get_return(session, return_id)
    ensure_can_review_for(actor, [contract.buyer_id])
    if row.status != SUBMITTED:
        raise ConflictError(f"Return {row.id} is already {row.status}.")
    if not verify and not (reason and reason.strip()):
        raise DomainError("A rejection needs a reason.")
    new_status = VERIFIED if verify else REJECTED
    old_status = row.status
    row.status = new_status
    row.reviewed_by = actor.name
    row.reviewed_at = clock.now()
    row.review_reason = reason.strip() if reason else None
    await record_audit(
        session,
        actor=actor,
        action="return.verify" if verify else "return.reject",
        entity_type="delivery_return",
        entity_id=row.id,
        organisation_id=contract.buyer_id,
        changes={"status": (old_status, new_status)},
        reason=row.review_reason,
    )
    await session.flush()
    return row


async def return_out(session: AsyncSession, row: m.DeliveryReturn) -> DeliveryReturn:
    commitment = await get_or_not_found(session, m.Commitment, row.commitment_id, "commitment")
    return return_schema(row, (await get_measure(session, commitment.measure_id)).kind)


def return_schema(row: m.DeliveryReturn, kind: str) -> DeliveryReturn:
    return DeliveryReturn(
        id=row.id,
        commitment_id=row.commitment_id,
        period=row.period,
        quantity=format_quantity(Decimal(row.quantity), kind),
        evidence_note=row.evidence_note,
        evidence_url=row.evidence_url,
        status=row.status,
        entered_by=row.entered_by,
        entered_at=row.entered_at,
        reviewed_by=row.reviewed_by,
        reviewed_at=row.reviewed_at,
        review_reason=row.review_reason,
    )


async def commitment_schema(session: AsyncSession, commitment: m.Commitment) -> Commitment:
    measure = await get_measure(session, commitment.measure_id)
    contract = await _contract(session, commitment.contract_id)
    return Commitment(
        id=commitment.id,
        contract_id=commitment.contract_id,
        buyer_id=contract.buyer_id,
        supplier_id=commitment.supplier_id,
        measure=measure_ref(measure),
        unit=commitment.unit,
        note=commitment.note,
        created_by=commitment.created_by,
        targets=[
            Target(period=t.period, quantity=format_quantity(Decimal(t.quantity), measure.kind))
            for t in commitment.targets
        ],
        returns=[return_schema(r, measure.kind) for r in commitment.returns],
        created_at=commitment.created_at,
        updated_at=commitment.updated_at,
    )


LM3_METHOD = (
    "NEF Local Multiplier 3: (R1 + R2 + R3) / R1 over the suppliers surveyed. R1 = what they received from the "
    "anchor; R2 = what they spent with suppliers based in the area plus wages of staff living there; R3 = the part "
    "of R2 its recipients re-spent in the area (round-3 surveys). Non-respondents are not extrapolated."
)
