"""The procurement teams' side of the workspace: their organisation at a glance, and contract forms read as typed.

Forms are read with ``procurement.contracts.people_input`` (what people type, refused in their words) and
written through ``ContractService`` (the API's rules, audit included); nothing here duplicates either.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz, process
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import clock
from procurement import models as m
from procurement.auth import Principal, ensure_can_write_for
from procurement.contracts.people_input import PeopleInputError, parse_cpv_list, parse_date, parse_money
from procurement.errors import InvalidInput
from procurement.organisations.service import _org_name_key
from procurement.procure.drafts import list_drafts
from procurement.schemas import IdentifierIn, normalise_uk_postcode
from procurement.suppliers.schemas import SupplierCreate
from socialvalue.matching import MAX_CANDIDATES, REVIEW_SCORE
from socialvalue.periods import quarter_bounds, quarter_of

MAX_TITLE = 500
MAX_REFERENCE = 200
MAX_REASON = 1000  # contract.withdrawn_reason holds 1000
MAX_SUPPLIERS = 20


def organisation_for(principal: Principal, requested: int | None) -> int:
    """The organisation whose records this person keeps: an editor's own; an admin names one."""
    organisation_id = requested if requested is not None else principal.organisation_id
    if organisation_id is None:
        raise InvalidInput("Choose an organisation: add ?organisation=ID to the address (admins keep every one).")
    ensure_can_write_for(principal, organisation_id)
    return organisation_id


@dataclass(frozen=True)
class ReturnDue:
    commitment_id: int
    contract_id: int
    contract_title: str
    measure: str
    period: str
    target: str
    unit: str
    overdue: bool


@dataclass(frozen=True)
class UnknownSupplier:
    supplier_id: int
    name: str
    location_unknown: bool
    status_unknown: bool


@dataclass(frozen=True)
class Draft:
    """An upload checked but not saved, to resume or discard (the only drafts the pages keep: forms save at once)."""

    id: int
    filename: str
    row_count: int
    created_by: str
    uploaded: str
    columns_matched: bool


@dataclass(frozen=True)
class Overview:
    organisation: m.Organisation
    quarter: str
    contracts_this_quarter: list[m.Contract]
    returns_due: list[ReturnDue]
    unknown_suppliers: list[UnknownSupplier]
    drafts: list[Draft] = field(default_factory=list)
    draft_hours: int = 24


def _uk_time(at: dt.datetime) -> str:
    local = at.astimezone(clock.UK)
    return f"{local.day} {local:%B %Y} at {local:%H:%M}"


async def overview(
    session: AsyncSession, organisation_id: int, today: dt.date | None = None, draft_hours: int = 24
) -> Overview:
    today = today or clock.uk_today()
    quarter = quarter_of(today)
    start, end = quarter_bounds(quarter)
    organisation = await session.get(m.Organisation, organisation_id)
    if organisation is None:
        raise InvalidInput(f"No organisation with id {organisation_id}.")
    contracts = (
        await session.scalars(
            select(m.Contract)
            .where(
                m.Contract.buyer_id == organisation_id,
                m.Contract.award_date >= start,
                m.Contract.award_date <= end,
                m.Contract.status != m.ContractStatus.WITHDRAWN.value,
            )
            .order_by(m.Contract.award_date.desc(), m.Contract.id.desc())
        )
    ).all()
    # A target for a quarter that has begun and has no return yet: due in the current quarter, overdue after it.
    returned = select(m.DeliveryReturn.id).where(
        m.DeliveryReturn.commitment_id == m.CommitmentTarget.commitment_id,
        m.DeliveryReturn.period == m.CommitmentTarget.period,
    )
    due_rows = (
        await session.execute(
            select(m.CommitmentTarget, m.Commitment, m.Contract.title, m.Measure.name)
            .join(m.Commitment, m.Commitment.id == m.CommitmentTarget.commitment_id)
            .join(m.Contract, m.Contract.id == m.Commitment.contract_id)
            .join(m.Measure, m.Measure.id == m.Commitment.measure_id)
            .where(
                m.Contract.buyer_id == organisation_id,
                m.Contract.status != m.ContractStatus.WITHDRAWN.value,
                m.CommitmentTarget.period <= quarter,
                ~returned.exists(),
            )
            .order_by(m.CommitmentTarget.period, m.Commitment.id)
        )
    ).all()
    returns_due = [
        ReturnDue(
            commitment_id=commitment.id,
            contract_id=commitment.contract_id,
            contract_title=title,
            measure=measure,
            period=target.period,
            target=f"{target.quantity.normalize():f}",
            unit=commitment.unit,
            overdue=target.period < quarter,
        )
        for target, commitment, title, measure in due_rows
    ]
    supplier_rows = (
        await session.execute(
            select(m.Supplier.id, m.Supplier.name, m.SupplierClassification.lad_code, m.SupplierClassification.category)
            .join(m.ContractSupplier, m.ContractSupplier.supplier_id == m.Supplier.id)
            .join(m.Contract, m.Contract.id == m.ContractSupplier.contract_id)
            .outerjoin(m.SupplierClassification, m.SupplierClassification.supplier_id == m.Supplier.id)
            .where(m.Contract.buyer_id == organisation_id, m.Contract.status != m.ContractStatus.WITHDRAWN.value)
            .where(
                or_(
                    m.SupplierClassification.id.is_(None),
                    m.SupplierClassification.lad_code.is_(None),
                    m.SupplierClassification.category == "unknown",
                )
            )
            .distinct()
            .order_by(m.Supplier.name)
        )
    ).all()
    unknown = [
        UnknownSupplier(
            supplier_id=sid, name=name, location_unknown=lad is None, status_unknown=category in (None, "unknown")
        )
        for sid, name, lad, category in supplier_rows
    ]
    drafts = [
        Draft(d.id, d.filename, d.row_count, d.created_by, _uk_time(d.created_at), d.mapping is not None)
        for d in await list_drafts(session, organisation_id)
    ]
    return Overview(organisation, quarter, list(contracts), returns_due, unknown, drafts, draft_hours)


async def search_suppliers(session: AsyncSession, query: str, limit: int = 20) -> list[m.Supplier]:
    """By name (its matching key, so "Acme Ltd" finds "ACME LIMITED"), register number or postcode."""
    text = query.strip()
    if text.startswith("#") and text[1:].isdigit():
        return list((await session.scalars(select(m.Supplier).where(m.Supplier.id == int(text[1:])))).all())
    if len(text) < 2:
        return []
    key = _org_name_key(text)
    compact = text.replace(" ", "").upper()
    conditions = [
        m.Supplier.id.in_(
            select(m.SupplierIdentifier.supplier_id).where(func.upper(m.SupplierIdentifier.value) == compact)
        ),
        func.replace(func.upper(m.Supplier.postcode), " ", "").startswith(compact),
    ]
    if key:
        conditions.append(m.Supplier.name_key.contains(key))
    rows = await session.scalars(
        select(m.Supplier)
        .where(or_(*conditions), m.Supplier.merged_into_id.is_(None))
        .order_by(m.Supplier.name)
        .limit(limit)
    )
    return list(rows.all())


async def contract_history(session: AsyncSession, contract_id: int) -> list[m.AuditEvent]:
    """Who changed the contract, when and why, newest first."""
    rows = await session.scalars(
        select(m.AuditEvent)
        .where(m.AuditEvent.entity_type == "contract", m.AuditEvent.entity_id == str(contract_id))
        .order_by(m.AuditEvent.at.desc(), m.AuditEvent.id.desc())
    )
    return list(rows.all())


@dataclass
class ContractForm:
    """A contract form as typed (``raw``), what was understood from it (``values``) and what was not (``errors``)."""

    raw: dict[str, str]
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    suppliers: list[m.Supplier] = field(default_factory=list)


FORM_FIELDS = ("title", "reference", "value", "award_date", "start_date", "end_date", "cpv", "suppliers", "reason")


def _text(form: Mapping[str, Any], name: str, limit: int = 4000) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


async def read_contract_form(
    session: AsyncSession, form: Mapping[str, Any], *, needs_reason: bool = False
) -> ContractForm:
    """Every field read and every problem found at once, in form order (the NHS.UK error summary's order)."""
    raw = {name: _text(form, name) for name in FORM_FIELDS}
    result = ContractForm(raw=raw)
    values, errors = result.values, result.errors
    if not raw["title"]:
        errors["title"] = "Enter the contract title, for example Community meals service"
    elif len(raw["title"]) > MAX_TITLE:
        errors["title"] = f"The title must be {MAX_TITLE} characters or fewer"
    values["title"] = raw["title"]
    if len(raw["reference"]) > MAX_REFERENCE:
        errors["reference"] = f"The reference must be {MAX_REFERENCE} characters or fewer"
    values["reference"] = raw["reference"] or None
    readers: list[tuple[str, str, Any]] = [
        ("value", "the contract value", parse_money),
        ("award_date", "the award date", parse_date),
        ("start_date", "the start date", parse_date),
        ("end_date", "the end date", parse_date),
    ]
    for name, label, reader in readers:
        values[name] = None
        if raw[name]:
            try:
                values[name] = reader(raw[name], field=label)
            except PeopleInputError as exc:
                errors[name] = str(exc)
    if values["start_date"] and values["end_date"] and values["end_date"] < values["start_date"]:
        errors["end_date"] = "The end date must be the same as or after the start date"
    try:
        values["cpv"] = parse_cpv_list(raw["cpv"])
    except PeopleInputError as exc:
        errors["cpv"] = str(exc)
    result.suppliers = await _resolve_suppliers(session, raw["suppliers"], errors)
    if needs_reason and not raw["reason"]:
        errors["reason"] = "Enter why you are changing this contract, for example Value corrected from the award letter"
    return result


async def _resolve_suppliers(session: AsyncSession, text: str, errors: dict[str, str]) -> list[m.Supplier]:
    """One supplier a line: its number in this service ("#12"), a register number, or its exact name."""
    lines = list(dict.fromkeys(line.strip() for line in text.splitlines() if line.strip()))
    if not lines:
        errors["suppliers"] = (
            "Enter at least one supplier: find it with the supplier search, then copy its number, like #12"
        )
        return []
    if len(lines) > MAX_SUPPLIERS:
        errors["suppliers"] = f"A contract can list up to {MAX_SUPPLIERS} suppliers here"
        return []
    found: list[m.Supplier] = []
    for line in lines:
        supplier = await _one_supplier(session, line)
        if supplier is None:
            errors["suppliers"] = (
                f"No single supplier matches {line!r}: search for it and use its number (like #12), "
                "or add it as a new supplier"
            )
            return []
        if supplier.id not in {s.id for s in found}:
            found.append(supplier)
    return found


async def _one_supplier(session: AsyncSession, line: str) -> m.Supplier | None:
    number = line.removeprefix("#").split()[0] if line.startswith("#") else None
    if number is not None:
        return await session.get(m.Supplier, int(number)) if number.isdigit() else None
    by_identifier = (
        await session.scalars(
            select(m.Supplier)
            .join(m.SupplierIdentifier)
            .where(func.upper(m.SupplierIdentifier.value) == line.replace(" ", "").upper())
        )
    ).all()
    if len(by_identifier) == 1:
        return by_identifier[0]
    key = _org_name_key(line)
    if not key:
        return None
    by_name = (
        await session.scalars(select(m.Supplier).where(m.Supplier.name_key == key, m.Supplier.merged_into_id.is_(None)))
    ).all()
    return by_name[0] if len(by_name) == 1 else None


async def classifications_of(session: AsyncSession, ids: list[int]) -> dict[int, m.SupplierClassification]:
    """Each supplier's current classification (none until ``localvalue classify`` has judged it)."""
    if not ids:
        return {}
    rows = await session.scalars(select(m.SupplierClassification).where(m.SupplierClassification.supplier_id.in_(ids)))
    return {c.supplier_id: c for c in rows.all()}


@dataclass(frozen=True)
class LikelyDuplicate:
    supplier: m.Supplier
    score: float
    same_postcode: bool


async def likely_duplicates(session: AsyncSession, name: str, postcode: str | None) -> list[LikelyDuplicate]:
    """Suppliers whose normalised name scores at least the matcher's review score against ``name``.

    Scored by rapidfuzz token-sort ratio, the register matcher's scorer, so "Acme Catering Ltd" and
    "ACME CATERING LIMITED" (score 100) or "Catering Acme" are caught before a second record splits the figures.
    """
    key = _org_name_key(name)
    if not key:
        return []
    rows = (
        await session.execute(select(m.Supplier.id, m.Supplier.name_key).where(m.Supplier.merged_into_id.is_(None)))
    ).all()
    choices = {sid: k for sid, k in rows if k}
    found = process.extract(key, choices, scorer=fuzz.token_sort_ratio, score_cutoff=REVIEW_SCORE, limit=MAX_CANDIDATES)
    if not found:
        return []
    suppliers = {
        s.id: s
        for s in (await session.scalars(select(m.Supplier).where(m.Supplier.id.in_([f[2] for f in found])))).all()
    }
    wanted = (postcode or "").replace(" ", "").upper()
    return [
        LikelyDuplicate(
            supplier=suppliers[sid],
            score=score,
            same_postcode=bool(wanted) and (suppliers[sid].postcode or "").replace(" ", "").upper() == wanted,
        )
        for _key, score, sid in found
    ]


SUPPLIER_FIELDS = ("name", "postcode", "coh", "charity")


def read_supplier_form(typed: Mapping[str, str]) -> tuple[dict[str, str], SupplierCreate | None]:
    """A new supplier as typed: its name, and any of postcode, Companies House number, charity number."""
    errors: dict[str, str] = {}
    if not typed["name"]:
        errors["name"] = "Enter the supplier's name, for example Edgbaston Catering Ltd"
    postcode = None
    if typed["postcode"]:
        try:
            postcode = normalise_uk_postcode(typed["postcode"])
        except ValueError:
            errors["postcode"] = f"Enter a UK postcode: {typed['postcode']!r} is not one; for example B15 2GW"
    identifiers: list[IdentifierIn] = []
    for name, scheme, example in (("coh", "GB-COH", "01234567 or SC123456"), ("charity", "GB-CHC", "1123456")):
        if typed[name]:
            try:
                identifiers.append(IdentifierIn(scheme=scheme, id=typed[name]))
            except ValueError:
                errors[name] = f"{typed[name]!r} is not a valid number here; for example {example}"
    if errors:
        return errors, None
    return errors, SupplierCreate(name=typed["name"], postcode=postcode, identifiers=identifiers)
