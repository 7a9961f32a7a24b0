"""The social-value measure catalogue (PPN 06/20, PPN 002 and local measures) and admin-set proxy values."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.audit import record_audit
from procurement.auth import Principal, _require_admin, ensure_can_write_for
from procurement.db import get_or_not_found
from procurement.errors import ConflictError, DomainError
from procurement.metrics.schemas import LocalMeasureCreate, Measure, MeasureRef, ProxyOut, ProxyUpdate
from procurement.money import format_pence, to_pence
from socialvalue import catalogue

_MEASURE_FIELDS = ("theme", "outcome", "name", "unit", "kind", "source", "verification_status")


def format_quantity(value: Decimal, kind: str = "output") -> str:
    """Plain decimal text without trailing zeros or exponent ("2.5", "1200"); cash is pounds to the penny
    ("5000.00")."""
    if kind == "cash":
        return f"{value.quantize(Decimal('0.01')):f}"
    return f"{value.normalize():f}"


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
    return await get_or_not_found(session, m.Measure, measure_id, "measure")


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


async def create_local_measure(session: AsyncSession, data: LocalMeasureCreate, actor: Principal) -> m.Measure:
    org = await get_or_not_found(session, m.Organisation, data.organisation_id, "organisation")
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


async def update_proxy(session: AsyncSession, measure_id: int, data: ProxyUpdate, actor: Principal) -> m.Measure:
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


def measure_schema(measure: m.Measure) -> Measure:
    proxy = None
    if measure.proxy_value_pence is not None:
        proxy = ProxyOut(
            value_pence=measure.proxy_value_pence,
            value=format_pence(measure.proxy_value_pence) or "",
            source=measure.proxy_source,
            year=measure.proxy_year,
            price_base=measure.proxy_price_base,
        )
    return Measure(
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


def measure_ref(measure: m.Measure) -> MeasureRef:
    return MeasureRef(
        id=measure.id, framework=measure.framework, code=measure.code, name=measure.name, kind=measure.kind
    )
