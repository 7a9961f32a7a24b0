"""A contracts register uploaded as a spreadsheet: what each row would do, and doing it for every valid row at once.

Rows are matched to the organisation's contracts on their reference (the contract's ``source_id``), so uploading
the same sheet again changes nothing; a changed row updates its contract, with the file named as the reason.
Suppliers are found by Companies House number, then by exact normalised name; a name that matches nothing
becomes a new supplier (shown in the preview first). The rows and audit events written are those of
``ContractService`` and ``SupplierService`` (the forms' and the API's), written set-based: see ``commit``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Table, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import clock
from procurement import models as m
from procurement.auth import Principal, ensure_can_write_for
from procurement.bulk import allocate_ids, bulk_insert, chunks, update_by_id
from procurement.contracts.register_sheet import SheetRow
from procurement.errors import DomainError
from procurement.organisations.service import _org_name_key
from procurement.suppliers.service import check_postcode

Action = Literal["create", "update", "unchanged", "error"]


@dataclass(frozen=True)
class Existing:
    """The parts of a recorded contract an upload compares and may change."""

    id: int
    status: str
    title: str
    value_pence: int | None
    award_date: dt.date | None
    start_date: dt.date | None
    end_date: dt.date | None
    cpv: list[str] = field(default_factory=list)
    shares: list[tuple[int, int | None]] = field(default_factory=list)


@dataclass
class PlannedRow:
    row: SheetRow
    action: Action
    supplier_id: int | None = None
    new_supplier: bool = False
    contract_id: int | None = None
    changes: list[str] = field(default_factory=list)
    existing: Existing | None = None


async def lock_organisation(session: AsyncSession, organisation_id: int) -> None:
    """Take the organisation's row for this transaction, so two uploads for it run one after the other.

    On PostgreSQL that is a row lock; on SQLite any write takes the database's single write lock, which
    ``allocate_ids`` relies on (it continues after the largest id). Plan after this, then commit.
    """
    # A non-key column, so PostgreSQL takes FOR NO KEY UPDATE: rows referencing the organisation can still be added.
    table: Table = m.Organisation.__table__  # type: ignore[assignment]
    await session.execute(update(table).where(table.c.id == organisation_id).values(updated_at=table.c.updated_at))


async def plan(session: AsyncSession, organisation_id: int, rows: list[SheetRow]) -> list[PlannedRow]:
    """What each row would do; one query per kind of lookup (and per 500 distinct keys), never one per row."""
    contracts = await _contracts_by_reference(session, organisation_id, [r.reference for r in rows if r.reference])
    by_number, by_key = await _suppliers(session, rows)
    unlisted: dict[str, str | None] = {}
    planned = []
    for row in rows:
        if row.errors:
            planned.append(PlannedRow(row, "error"))
            continue
        item = PlannedRow(row, "create")
        _find_supplier(item, by_number, by_key, unlisted)
        contract = contracts.get(row.reference)
        if contract is not None:
            item.contract_id = contract.id
            item.existing = contract
            if contract.status == m.ContractStatus.WITHDRAWN.value:
                row.errors.append(f"Contract {row.reference!r} is withdrawn and cannot be changed by an upload")
            else:
                item.changes = _differences(contract, row, item)
                item.action = "update" if item.changes else "unchanged"
        if row.errors:
            item.action = "error"
        planned.append(item)
    return planned


def _find_supplier(
    item: PlannedRow, by_number: dict[str, int], by_key: dict[str, list[int]], unlisted: dict[str, str | None]
) -> None:
    row = item.row
    number = row.supplier_number
    named = by_key.get(_org_name_key(row.supplier_name), [])
    if number and number in by_number:
        item.supplier_id = by_number[number]
    elif len(named) == 1:
        item.supplier_id = named[0]
    elif len(named) > 1:
        row.errors.append(
            f"{len(named)} suppliers are called {row.supplier_name!r}: add its Companies House number to pick one"
        )
    else:
        item.new_supplier = True
        if row.supplier_postcode:
            if row.supplier_postcode not in unlisted:
                unlisted[row.supplier_postcode] = _unlisted(row.supplier_postcode)
            if problem := unlisted[row.supplier_postcode]:
                row.errors.append(problem)


def _unlisted(postcode: str) -> str | None:
    """A new supplier's postcode missing from the ONS directory is refused, as the supplier form refuses it."""
    try:
        check_postcode(postcode, confirmed=False)
    except DomainError:
        return (
            f"{postcode} is not in the ONS postcode directory: check it, or add the supplier on the supplier "
            "page first and upload again"
        )
    return None


def _differences(contract: Existing, row: SheetRow, item: PlannedRow) -> list[str]:
    found = []
    for label, old, new in (
        ("title", contract.title, row.title),
        ("value", contract.value_pence, row.value_pence),
        ("award date", contract.award_date, row.award_date),
        ("start date", contract.start_date, row.start_date),
        ("end date", contract.end_date, row.end_date),
        ("CPV codes", contract.cpv, row.cpv_codes),
    ):
        if old != new:
            found.append(label)
    if item.new_supplier or [s for s, _share in contract.shares] != [item.supplier_id]:
        found.append("supplier")
    return found


async def _contracts_by_reference(
    session: AsyncSession, organisation_id: int, references: list[str]
) -> dict[str, Existing]:
    """The organisation's hand-kept contracts named in the sheet, as plain columns in three queries.

    Not ORM objects (loading 10,000 with their relationships took seconds), and not IN-lists of references
    (PostgreSQL planned each 500-reference list in about 0.3 s): the organisation's manual contracts are read
    whole and picked here, which stays one index range however long the sheet.
    """
    wanted = set(references)
    if not wanted:
        return {}
    mine = (m.Contract.buyer_id == organisation_id, m.Contract.source == m.ContractSource.MANUAL.value)
    rows = await session.execute(
        select(
            m.Contract.source_id,
            m.Contract.id,
            m.Contract.status,
            m.Contract.title,
            m.Contract.value_pence,
            m.Contract.award_date,
            m.Contract.start_date,
            m.Contract.end_date,
        ).where(*mine)
    )
    by_id: dict[int, Existing] = {}
    found: dict[str, Existing] = {}
    for r in rows.all():
        if r.source_id in wanted:
            by_id[r.id] = found[r.source_id] = Existing(
                r.id, r.status, r.title, r.value_pence, r.award_date, r.start_date, r.end_date
            )
    if not found:
        return found
    cpv = await session.execute(
        select(m.ContractCpv.contract_id, m.ContractCpv.code)
        .join(m.Contract, m.Contract.id == m.ContractCpv.contract_id)
        .where(*mine)
        .order_by(m.ContractCpv.contract_id, m.ContractCpv.position)
    )
    for contract_id, code in cpv.tuples().all():
        if contract_id in by_id:
            by_id[contract_id].cpv.append(code)
    shares = await session.execute(
        select(m.ContractSupplier.contract_id, m.ContractSupplier.supplier_id, m.ContractSupplier.share_pence)
        .join(m.Contract, m.Contract.id == m.ContractSupplier.contract_id)
        .where(*mine)
        .order_by(m.ContractSupplier.contract_id, m.ContractSupplier.position)
    )
    for contract_id, supplier_id, share in shares.tuples().all():
        if contract_id in by_id:
            by_id[contract_id].shares.append((supplier_id, share))
    return found


async def _suppliers(session: AsyncSession, rows: list[SheetRow]) -> tuple[dict[str, int], dict[str, list[int]]]:
    numbers = [r.supplier_number for r in rows if r.supplier_number]
    keys = [k for r in rows if (k := _org_name_key(r.supplier_name))]
    by_number: dict[str, int] = {}
    for part in chunks(list(dict.fromkeys(numbers))):
        result = await session.execute(
            select(m.SupplierIdentifier.value, m.SupplierIdentifier.supplier_id).where(
                m.SupplierIdentifier.scheme == "GB-COH", m.SupplierIdentifier.value.in_(part)
            )
        )
        by_number.update(dict(result.tuples().all()))
    by_key: dict[str, list[int]] = {}
    for part in chunks(list(dict.fromkeys(keys))):
        result = await session.execute(
            select(m.Supplier.name_key, m.Supplier.id).where(
                m.Supplier.name_key.in_(part), m.Supplier.merged_into_id.is_(None)
            )
        )
        for key, supplier_id in result.tuples().all():
            by_key.setdefault(key, []).append(supplier_id)
    return by_number, by_key


@dataclass(frozen=True)
class Committed:
    created: int
    updated: int
    unchanged: int
    skipped: int
    new_suppliers: int


async def commit(
    session: AsyncSession, organisation_id: int, planned: list[PlannedRow], actor: Principal, filename: str
) -> Committed:
    """Every valid row in the caller's one transaction (the caller commits once, or nothing on an error).

    Set-based: one executemany per table (suppliers, their identifiers, contracts, CPV codes, shares, audit
    events) instead of an ORM flush per row, so 10,000 rows take a few seconds. The rows written and the audit
    trail are the forms' and the API's exactly: a ``supplier.create`` event per new supplier, a
    ``contract.create`` per new contract and a ``contract.update`` per changed one (with only the fields that
    changed, and the file named as the reason), each with the caller as actor.
    """
    ensure_can_write_for(actor, organisation_id)
    await lock_organisation(session, organisation_id)
    now = clock.now()
    audit: list[dict[str, Any]] = []

    def audited(action: str, entity_type: str, entity_id: int, changes: dict[str, Any], reason: str | None) -> None:
        audit.append(
            {
                "at": now,
                "actor_user_id": actor.user_id,
                "actor_name": actor.name,
                "actor_role": actor.role.value,
                "action": action,
                "entity_type": entity_type,
                "entity_id": str(entity_id),
                "organisation_id": organisation_id if entity_type == "contract" else None,
                "changes": {k: [_jsonable(a), _jsonable(b)] for k, (a, b) in changes.items()},
                "reason": reason,
            }
        )

    writing = [p for p in planned if p.action in ("create", "update")]
    made = await _new_suppliers(session, writing, audited)
    reason = f"Spreadsheet upload {filename}"
    await _new_contracts(session, organisation_id, [p for p in writing if p.action == "create"], now, audited)
    await _changed_contracts(session, [p for p in writing if p.action == "update"], now, reason, audited)
    await bulk_insert(session, m.AuditEvent, audit)
    count = {a: sum(1 for p in planned if p.action == a) for a in ("create", "update", "unchanged", "error")}
    return Committed(count["create"], count["update"], count["unchanged"], count["error"], made)


Audited = Callable[[str, str, int, dict[str, Any], str | None], None]


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value


async def _new_suppliers(session: AsyncSession, writing: list[PlannedRow], audited: Audited) -> int:
    """One supplier per distinct name among the rows that need one, with its Companies House number if given."""
    firsts: dict[str, PlannedRow] = {}
    for item in writing:
        if item.new_supplier:
            firsts.setdefault(_org_name_key(item.row.supplier_name), item)
    if not firsts:
        return 0
    ids = dict(zip(firsts, await allocate_ids(session, m.Supplier, len(firsts)), strict=True))
    suppliers: list[dict[str, Any]] = []
    identifiers: list[dict[str, Any]] = []
    numbers: set[str] = set()
    for key, item in firsts.items():
        row = item.row
        suppliers.append(
            {
                "id": ids[key],
                "name": row.supplier_name.strip(),
                "name_key": key,
                "postcode": row.supplier_postcode,
                "postcode_source": "manual" if row.supplier_postcode else None,
            }
        )
        # A number already given to another new name in this sheet stays with the first (one number, one supplier).
        if row.supplier_number and row.supplier_number not in numbers:
            numbers.add(row.supplier_number)
            identifiers.append({"supplier_id": ids[key], "scheme": "GB-COH", "value": row.supplier_number})
        audited(
            "supplier.create",
            "supplier",
            ids[key],
            {
                "name": (None, row.supplier_name.strip()),
                "postcode": (None, row.supplier_postcode),
                "postcode_source": (None, "manual" if row.supplier_postcode else None),
            },
            None,
        )
    await bulk_insert(session, m.Supplier, suppliers)
    await bulk_insert(session, m.SupplierIdentifier, identifiers)
    for item in writing:
        if item.new_supplier:
            item.supplier_id = ids[_org_name_key(item.row.supplier_name)]
    return len(firsts)


def _share(value_pence: int | None) -> tuple[int | None, str]:
    """A single supplier's share, as ``ContractService`` gives it: the whole value, or unknown without one."""
    return (None, "unknown") if value_pence is None else (value_pence, "stated")


async def _new_contracts(
    session: AsyncSession, organisation_id: int, creating: list[PlannedRow], now: dt.datetime, audited: Audited
) -> None:
    if not creating:
        return
    ids = await allocate_ids(session, m.Contract, len(creating))
    contracts: list[dict[str, Any]] = []
    cpvs: list[dict[str, Any]] = []
    shares: list[dict[str, Any]] = []
    for contract_id, item in zip(ids, creating, strict=True):
        row = item.row
        assert item.supplier_id is not None  # plan() gives every writable row a supplier
        contracts.append(
            {
                "id": contract_id,
                "source": m.ContractSource.MANUAL.value,
                "source_id": row.reference,
                "buyer_id": organisation_id,
                "title": row.title.strip(),
                "value_pence": row.value_pence,
                "currency": "GBP",
                "award_date": row.award_date,
                "start_date": row.start_date,
                "end_date": row.end_date,
                "status": m.ContractStatus.ACTIVE.value,
                "created_at": now,
                "updated_at": now,
            }
        )
        cpvs.extend({"contract_id": contract_id, "code": c, "position": i} for i, c in enumerate(row.cpv_codes))
        share, basis = _share(row.value_pence)
        shares.append(
            {
                "contract_id": contract_id,
                "supplier_id": item.supplier_id,
                "share_pence": share,
                "share_basis": basis,
                "position": 0,
            }
        )
        audited(
            "contract.create",
            "contract",
            contract_id,
            {
                "title": (None, row.title.strip()),
                "value_pence": (None, row.value_pence),
                "currency": (None, "GBP"),
                "suppliers": (None, [item.supplier_id]),
            },
            None,
        )
    await bulk_insert(session, m.Contract, contracts)
    await bulk_insert(session, m.ContractCpv, cpvs)
    await bulk_insert(session, m.ContractSupplier, shares)


async def _changed_contracts(
    session: AsyncSession, updating: list[PlannedRow], now: dt.datetime, reason: str, audited: Audited
) -> None:
    """Each changed contract rewritten as ``ContractService.update_contract`` would, audited with what changed."""
    if not updating:
        return
    rows: list[dict[str, Any]] = []
    cpvs: list[dict[str, Any]] = []
    shares: list[dict[str, Any]] = []
    replace_cpv: list[int] = []
    replace_shares: list[int] = []
    for item in updating:
        row, old = item.row, item.existing
        assert old is not None  # plan() sets both for an update
        assert item.supplier_id is not None
        changes: dict[str, tuple[Any, Any]] = {}
        for name, before, after in (
            ("title", old.title, row.title.strip()),
            ("value_pence", old.value_pence, row.value_pence),
            ("award_date", old.award_date, row.award_date),
            ("start_date", old.start_date, row.start_date),
            ("end_date", old.end_date, row.end_date),
        ):
            if before != after:
                changes[name] = (before, after)
        if old.cpv != row.cpv_codes:
            changes["cpv_codes"] = (old.cpv, row.cpv_codes)
            replace_cpv.append(old.id)
            cpvs.extend({"contract_id": old.id, "code": c, "position": i} for i, c in enumerate(row.cpv_codes))
        share, basis = _share(row.value_pence)
        new_shares = [(item.supplier_id, share)]
        if old.shares != new_shares:
            changes["suppliers"] = (old.shares, new_shares)
            replace_shares.append(old.id)
            shares.append(
                {
                    "contract_id": old.id,
                    "supplier_id": item.supplier_id,
                    "share_pence": share,
                    "share_basis": basis,
                    "position": 0,
                }
            )
        if not changes:
            continue
        rows.append(
            {
                "id": old.id,
                "title": row.title.strip(),
                "value_pence": row.value_pence,
                "award_date": row.award_date,
                "start_date": row.start_date,
                "end_date": row.end_date,
                "updated_at": now,
            }
        )
        audited("contract.update", "contract", old.id, changes, reason)
    if rows:
        await update_by_id(session, m.Contract, rows)
    for part in chunks(replace_cpv):
        await session.execute(delete(m.ContractCpv).where(m.ContractCpv.contract_id.in_(part)))
    for part in chunks(replace_shares):
        await session.execute(delete(m.ContractSupplier).where(m.ContractSupplier.contract_id.in_(part)))
    await bulk_insert(session, m.ContractCpv, cpvs)
    await bulk_insert(session, m.ContractSupplier, shares)
