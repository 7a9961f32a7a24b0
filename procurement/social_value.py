"""Social value as a service: the measure catalogue, commitments tracked to delivery, anchor groups and LM3.

Every write is checked here and audited with ``record_audit``. Editors act only for their own organisation:
a commitment and its returns belong to the contract's buyer, a local measure to its owning anchor, an LM3
survey answer to the anchor it was collected for. Reviewers (and admins) verify or reject returns; admins
edit proxy values and anchor groups.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement import schemas_social_value as sv
from procurement.auth import Principal, ensure_can_write_for
from procurement.errors import ConflictError, DomainError, NotFound, PermissionDeniedException
from procurement.money import format_pence, to_pence
from procurement.services import record_audit
from socialvalue import catalogue
from socialvalue.lm3 import Lm3Result, SurveyResponse, lm3

SUBMITTED, VERIFIED, REJECTED = "submitted", "verified", "rejected"
BIRMINGHAM_AND_SOLIHULL = "birmingham-and-solihull"
_BSOL_ICB = "QHL"
_BSOL_COUNCILS = ("E08000025", "E08000029")  # Birmingham City Council, Solihull MBC
_MEASURE_FIELDS = ("theme", "outcome", "name", "unit", "kind", "source", "verification_status")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def format_quantity(value: Decimal) -> str:
    """Plain decimal text without trailing zeros or exponent ("2.5", "1200")."""
    return f"{value.normalize():f}"


def _require_reviewer(actor: Principal) -> None:
    if actor.role not in (m.Role.REVIEWER, m.Role.ADMIN):
        raise PermissionDeniedException("Only reviewers and admins verify or reject returns.")


def _require_admin(actor: Principal) -> None:
    if actor.role is not m.Role.ADMIN:
        raise PermissionDeniedException("Only admins can do this.")


# Measures ----------------------------------------------------------------------------------------------------


async def seed_measures(session: AsyncSession) -> tuple[int, int]:
    """Load the shipped catalogue (idempotent; matched on framework and code); returns (created, updated).

    Proxy values are set only when a measure is created: an admin's later edit survives every re-seed.
    """
    created = updated = 0
    existing = {(x.framework, x.code): x for x in (await session.scalars(select(m.Measure))).all()}
    for spec in catalogue.shipped_catalogue():
        measure = existing.get((spec["framework"], spec["code"]))
        if measure is None:
            measure = m.Measure(
                framework=spec["framework"],
                code=spec["code"],
                theme=spec["theme"],
                outcome=spec["outcome"],
                name=spec["name"],
                unit=spec["unit"],
                kind=spec["kind"],
                source=spec["source"],
                verification_status=spec["verification_status"],
                proxy_value_pence=spec["proxy_value_pence"],
                proxy_source=spec["proxy_source"],
                proxy_year=spec["proxy_year"],
                proxy_price_base=spec["proxy_price_base"],
                active=True,
            )
            session.add(measure)
            await session.flush()
            created += 1
            await record_audit(
                session,
                actor=None,
                actor_name="seed measures",
                action="measure.seed",
                entity_type="measure",
                entity_id=measure.id,
                changes={"code": (None, f"{measure.framework}:{measure.code}")},
            )
            continue
        changes = {}
        for key in _MEASURE_FIELDS:
            new = spec[key]  # type: ignore[literal-required]
            if getattr(measure, key) != new:
                changes[key] = (getattr(measure, key), new)
                setattr(measure, key, new)
        if changes:
            updated += 1
            await record_audit(
                session,
                actor=None,
                actor_name="seed measures",
                action="measure.seed",
                entity_type="measure",
                entity_id=measure.id,
                changes=changes,
            )
    await session.flush()
    return created, updated


async def get_measure(session: AsyncSession, measure_id: int) -> m.Measure:
    measure = await session.get(m.Measure, measure_id)
    if measure is None:
        raise NotFound(f"No measure with id {measure_id}.")
    return measure


async def list_measures(
    session: AsyncSession, *, framework: str | None = None, organisation_id: int | None = None
) -> Sequence[m.Measure]:
    """The shared catalogue plus, with ``organisation_id``, that anchor's own local measures (else all)."""
    query = select(m.Measure).where(m.Measure.active.is_(True))
    if framework:
        query = query.where(m.Measure.framework == framework)
    if organisation_id is not None:
        query = query.where(
            m.Measure.owner_organisation_id.is_(None) | (m.Measure.owner_organisation_id == organisation_id)
        )
    return (await session.scalars(query.order_by(m.Measure.framework, m.Measure.id))).all()


async def create_local_measure(session: AsyncSession, data: sv.LocalMeasureCreate, actor: Principal) -> m.Measure:
    org = await session.get(m.Organisation, data.organisation_id)
    if org is None:
        raise NotFound(f"No organisation with id {data.organisation_id}.")
    ensure_can_write_for(actor, org.id)
    # An anchor's codes are its own: prefix them so two anchors can both have "JOBS".
    code = f"ORG{org.id}-{data.code.upper()}"
    clash = await session.scalar(select(m.Measure.id).where(m.Measure.framework == "local", m.Measure.code == code))
    if clash is not None:
        raise ConflictError(f"{org.name} already has a local measure {data.code.upper()} (id {clash}).")
    measure = m.Measure(
        framework="local",
        code=code,
        theme=data.theme,
        outcome=None,
        name=data.name.strip(),
        unit=catalogue.CASH_UNIT if data.kind == "cash" else (data.unit or "").strip(),
        kind=data.kind,
        source=f"Local measure of {org.name}, recorded by {actor.name}",
        verification_status=None,
        owner_organisation_id=org.id,
        active=True,
    )
    session.add(measure)
    await session.flush()
    await record_audit(
        session,
        actor=actor,
        action="measure.create",
        entity_type="measure",
        entity_id=measure.id,
        organisation_id=org.id,
        changes={"code": (None, code), "name": (None, measure.name), "unit": (None, measure.unit)},
    )
    return measure


async def update_proxy(session: AsyncSession, measure_id: int, data: sv.ProxyUpdate, actor: Principal) -> m.Measure:
    _require_admin(actor)
    measure = await get_measure(session, measure_id)
    if measure.kind == "cash":
        raise DomainError("A cash measure is money already; it takes no proxy value.")
    new = {
        "proxy_value_pence": None if data.value is None else to_pence(data.value, field="value"),
        "proxy_source": data.source,
        "proxy_year": data.year,
        "proxy_price_base": data.price_base,
    }
    changes = {k: (getattr(measure, k), v) for k, v in new.items() if getattr(measure, k) != v}
    for key, (_old, value) in changes.items():
        setattr(measure, key, value)
    if changes:
        await record_audit(
            session,
            actor=actor,
            action="measure.proxy",
            entity_type="measure",
            entity_id=measure.id,
            organisation_id=measure.owner_organisation_id,
            changes=changes,
        )
    await session.flush()
    return measure


def measure_schema(measure: m.Measure) -> sv.Measure:
    proxy = None
    if measure.proxy_value_pence is not None:
        proxy = sv.ProxyOut(
            value_pence=measure.proxy_value_pence,
            value=format_pence(measure.proxy_value_pence) or "",
            source=measure.proxy_source,
            year=measure.proxy_year,
            price_base=measure.proxy_price_base,
        )
    return sv.Measure(
        id=measure.id,
        framework=measure.framework,
        code=measure.code,
        theme=measure.theme,
        outcome=measure.outcome,
        name=measure.name,
        unit=measure.unit,
        kind=measure.kind,
        source=measure.source,
        verification_status=measure.verification_status,
        owner_organisation_id=measure.owner_organisation_id,
        proxy=proxy,
        active=measure.active,
    )


def measure_ref(measure: m.Measure) -> sv.MeasureRef:
    return sv.MeasureRef(
        id=measure.id, framework=measure.framework, code=measure.code, name=measure.name, kind=measure.kind
    )


# Commitments -------------------------------------------------------------------------------------------------


async def _contract(session: AsyncSession, contract_id: int) -> m.Contract:
    contract = await session.get(m.Contract, contract_id)
    if contract is None:
        raise NotFound(f"No contract with id {contract_id}.")
    return contract


async def get_commitment(session: AsyncSession, commitment_id: int) -> tuple[m.Commitment, m.Contract]:
    commitment = await session.get(m.Commitment, commitment_id)
    if commitment is None:
        raise NotFound(f"No commitment with id {commitment_id}.")
    return commitment, await _contract(session, commitment.contract_id)


def _check_cash_quantity(measure: m.Measure, quantity: Decimal, what: str) -> None:
    if measure.kind == "cash" and quantity != quantity.to_integral_value():
        raise DomainError(f"{what}: a cash measure counts whole pence.")


def _targets(measure: m.Measure, targets: list[sv.TargetIn]) -> list[m.CommitmentTarget]:
    for t in targets:
        _check_cash_quantity(measure, t.quantity, f"target {t.period}")
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
    session: AsyncSession, contract_id: int, data: sv.CommitmentCreate, actor: Principal
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
    unit = (data.unit or "").strip() or measure.unit
    if measure.kind == "cash":
        if data.unit not in (None, catalogue.CASH_UNIT):
            raise DomainError("A cash measure is counted in pence.")
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
        targets=_targets(measure, data.targets),
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
    session: AsyncSession, commitment_id: int, data: sv.CommitmentUpdate, actor: Principal
) -> m.Commitment:
    commitment, contract = await get_commitment(session, commitment_id)
    ensure_can_write_for(actor, contract.buyer_id)
    measure = await get_measure(session, commitment.measure_id)
    changes: dict[str, tuple[object, object]] = {}
    if isinstance(data.unit, str) and data.unit.strip() != commitment.unit:
        if measure.kind == "cash":
            raise DomainError("A cash measure is counted in pence.")
        if commitment.returns:
            raise DomainError("Returns have been entered in this unit; record a new commitment instead.")
        changes["unit"] = (commitment.unit, data.unit.strip())
        commitment.unit = data.unit.strip()
    if not isinstance(data.note, msgspec.UnsetType) and data.note != commitment.note:
        changes["note"] = (commitment.note, data.note)
        commitment.note = data.note
    if isinstance(data.targets, list):
        old = _target_pairs(commitment.targets)
        new_rows = _targets(measure, data.targets)
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
    session: AsyncSession, commitment_id: int, data: sv.ReturnCreate, actor: Principal
) -> m.DeliveryReturn:
    """A supplier's quarterly return, entered by the buyer's editor (or an admin) for the reviewer."""
    commitment, contract = await get_commitment(session, commitment_id)
    ensure_can_write_for(actor, contract.buyer_id)
    measure = await get_measure(session, commitment.measure_id)
    _check_cash_quantity(measure, data.quantity, "quantity")
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
        entered_at=_now(),
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
    row = await session.get(m.DeliveryReturn, return_id)
    if row is None:
        raise NotFound(f"No return with id {return_id}.")
    _commitment, contract = await get_commitment(session, row.commitment_id)
    return row, contract


async def review_return(
    session: AsyncSession, return_id: int, actor: Principal, *, verify: bool, reason: str | None = None
) -> m.DeliveryReturn:
    _require_reviewer(actor)
    row, contract = await get_return(session, return_id)
    if row.status != SUBMITTED:
        raise ConflictError(f"Return {row.id} is already {row.status}.")
    if not verify and not (reason and reason.strip()):
        raise DomainError("A rejection needs a reason.")
    new_status = VERIFIED if verify else REJECTED
    old_status = row.status
    row.status = new_status
    row.reviewed_by = actor.name
    row.reviewed_at = _now()
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


def return_schema(row: m.DeliveryReturn) -> sv.DeliveryReturn:
    return sv.DeliveryReturn(
        id=row.id,
        commitment_id=row.commitment_id,
        period=row.period,
        quantity=format_quantity(Decimal(row.quantity)),
        evidence_note=row.evidence_note,
        evidence_url=row.evidence_url,
        status=row.status,
        entered_by=row.entered_by,
        entered_at=row.entered_at,
        reviewed_by=row.reviewed_by,
        reviewed_at=row.reviewed_at,
        review_reason=row.review_reason,
    )


async def commitment_schema(session: AsyncSession, commitment: m.Commitment) -> sv.Commitment:
    measure = await get_measure(session, commitment.measure_id)
    contract = await _contract(session, commitment.contract_id)
    return sv.Commitment(
        id=commitment.id,
        contract_id=commitment.contract_id,
        buyer_id=contract.buyer_id,
        supplier_id=commitment.supplier_id,
        measure=measure_ref(measure),
        unit=commitment.unit,
        note=commitment.note,
        created_by=commitment.created_by,
        targets=[sv.Target(period=t.period, quantity=format_quantity(Decimal(t.quantity))) for t in commitment.targets],
        returns=[return_schema(r) for r in commitment.returns],
        created_at=commitment.created_at,
        updated_at=commitment.updated_at,
    )


# Anchor groups -----------------------------------------------------------------------------------------------


async def _orgs_exist(session: AsyncSession, ids: Sequence[int]) -> None:
    found = set((await session.scalars(select(m.Organisation.id).where(m.Organisation.id.in_(list(ids))))).all())
    missing = sorted(set(ids) - found)
    if missing:
        raise DomainError(f"No organisation with id {', '.join(map(str, missing))}.")


async def get_group(session: AsyncSession, slug: str) -> m.AnchorGroup:
    group = (await session.scalars(select(m.AnchorGroup).where(m.AnchorGroup.slug == slug))).first()
    if group is None:
        raise NotFound(f"No anchor group {slug!r}.")
    return group


async def list_groups(session: AsyncSession) -> Sequence[m.AnchorGroup]:
    return (await session.scalars(select(m.AnchorGroup).order_by(m.AnchorGroup.name))).all()


async def create_group(session: AsyncSession, data: sv.AnchorGroupCreate, actor: Principal | None) -> m.AnchorGroup:
    if actor is not None:
        _require_admin(actor)
    if await session.scalar(select(m.AnchorGroup.id).where(m.AnchorGroup.slug == data.slug)) is not None:
        raise ConflictError(f"An anchor group {data.slug!r} exists already.")
    ids = list(dict.fromkeys(data.organisation_ids))
    await _orgs_exist(session, ids)
    group = m.AnchorGroup(
        slug=data.slug,
        name=data.name.strip(),
        members=[m.AnchorGroupMember(organisation_id=i) for i in ids],
    )
    session.add(group)
    await session.flush()
    await record_audit(
        session,
        actor=actor,
        actor_name="seed groups",
        action="anchor_group.create",
        entity_type="anchor_group",
        entity_id=group.id,
        changes={"slug": (None, group.slug), "members": (None, sorted(ids))},
    )
    return group


async def update_group(session: AsyncSession, slug: str, data: sv.AnchorGroupUpdate, actor: Principal) -> m.AnchorGroup:
    _require_admin(actor)
    group = await get_group(session, slug)
    changes: dict[str, tuple[object, object]] = {}
    if isinstance(data.name, str) and data.name.strip() != group.name:
        changes["name"] = (group.name, data.name.strip())
        group.name = data.name.strip()
    if isinstance(data.organisation_ids, list):
        ids = list(dict.fromkeys(data.organisation_ids))
        await _orgs_exist(session, ids)
        old = sorted(x.organisation_id for x in group.members)
        if old != sorted(ids):
            group.members.clear()
            await session.flush()
            group.members.extend(m.AnchorGroupMember(organisation_id=i) for i in ids)
            changes["members"] = (old, sorted(ids))
    if changes:
        await record_audit(
            session,
            actor=actor,
            action="anchor_group.update",
            entity_type="anchor_group",
            entity_id=group.id,
            changes=changes,
        )
    await session.flush()
    await session.refresh(group, ["members"])
    return group


async def delete_group(session: AsyncSession, slug: str, actor: Principal) -> None:
    _require_admin(actor)
    group = await get_group(session, slug)
    await record_audit(
        session,
        actor=actor,
        action="anchor_group.delete",
        entity_type="anchor_group",
        entity_id=group.id,
        changes={"slug": (group.slug, None), "members": (sorted(x.organisation_id for x in group.members), None)},
    )
    await session.delete(group)
    await session.flush()


async def birmingham_and_solihull_ids(session: AsyncSession) -> list[int]:
    """The ICB (ODS QHL), the NHS trusts in its footprint, Birmingham City Council and Solihull MBC."""
    o = m.Organisation
    icb = (await session.scalars(select(o.id).where(o.ods_code == _BSOL_ICB, o.kind == "icb"))).all()
    trusts = (
        await session.scalars(
            select(o.id).where(o.icb_ods_code == _BSOL_ICB, o.kind == "nhs_trust", o.is_anchor.is_(True))
        )
    ).all()
    councils = (await session.scalars(select(o.id).where(o.gss_code.in_(_BSOL_COUNCILS)))).all()
    if len(icb) != 1 or len(councils) != len(_BSOL_COUNCILS) or not trusts:
        raise DomainError("The Birmingham and Solihull anchors are not all there: run 'localvalue seed anchors' first.")
    return sorted([*icb, *trusts, *councils])


async def seed_groups(session: AsyncSession) -> tuple[int, int]:
    """Create "Birmingham and Solihull" from the seeded anchors, or add members it lacks; (created, updated)."""
    ids = await birmingham_and_solihull_ids(session)
    group = (await session.scalars(select(m.AnchorGroup).where(m.AnchorGroup.slug == BIRMINGHAM_AND_SOLIHULL))).first()
    if group is None:
        data = sv.AnchorGroupCreate(slug=BIRMINGHAM_AND_SOLIHULL, name="Birmingham and Solihull", organisation_ids=ids)
        await create_group(session, data, None)
        return 1, 0
    have = {x.organisation_id for x in group.members}
    missing = [i for i in ids if i not in have]
    if not missing:
        return 0, 0
    group.members.extend(m.AnchorGroupMember(organisation_id=i) for i in missing)
    await record_audit(
        session,
        actor=None,
        actor_name="seed groups",
        action="anchor_group.seed",
        entity_type="anchor_group",
        entity_id=group.id,
        changes={"members": (sorted(have), sorted(have | set(missing)))},
    )
    await session.flush()
    return 0, 1


async def group_schema(session: AsyncSession, group: m.AnchorGroup) -> sv.AnchorGroup:
    ids = [x.organisation_id for x in group.members]
    rows = await session.execute(select(m.Organisation.id, m.Organisation.name).where(m.Organisation.id.in_(ids)))
    names: dict[int, str] = {row.id: row.name for row in rows.all()}
    members = sorted((sv.GroupMember(id=i, name=names.get(i, "")) for i in ids), key=lambda x: x.name)
    return sv.AnchorGroup(id=group.id, slug=group.slug, name=group.name, members=members)


# LM3 ---------------------------------------------------------------------------------------------------------

LM3_METHOD = (
    "NEF Local Multiplier 3: (R1 + R2 + R3) / R1 over the suppliers surveyed. R1 = what they received from the "
    "anchor; R2 = what they spent with suppliers based in the area plus wages of staff living there; R3 = the part "
    "of R2 its recipients re-spent in the area (round-3 surveys). Non-respondents are not extrapolated."
)


async def record_lm3_response(session: AsyncSession, data: sv.Lm3ResponseIn, actor: Principal) -> m.Lm3Response:
    """Create or replace one supplier's answers for an anchor and financial year."""
    anchor = await session.get(m.Organisation, data.anchor_id)
    if anchor is None:
        raise NotFound(f"No organisation with id {data.anchor_id}.")
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
            entered_at=_now(),
            **values,
        )
        session.add(row)
        changes = {k: (None, v) for k, v in values.items()}
        action = "lm3.create"
    else:
        changes = {k: (getattr(row, k), v) for k, v in values.items() if getattr(row, k) != v}
        for key, (_old, value) in changes.items():
            setattr(row, key, value)
        row.entered_by, row.entered_at = actor.name, _now()
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


def lm3_response_schema(row: m.Lm3Response, supplier_name: str) -> sv.Lm3Response:
    round2 = row.local_suppliers_pence + row.local_wages_pence
    return sv.Lm3Response(
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
    anchor = await session.get(m.Organisation, anchor_id)
    if anchor is None:
        raise NotFound(f"No organisation with id {anchor_id}.")
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
