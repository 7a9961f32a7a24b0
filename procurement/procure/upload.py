"""A contracts register uploaded as a spreadsheet: what each row would do, and doing it for every valid row at once.

Rows are matched to the organisation's contracts on their reference (the contract's ``source_id``), so uploading
the same sheet again changes nothing; a changed row updates its contract, with the file named as the reason.
Suppliers are found by Companies House number, then by exact normalised name; a name that matches nothing
becomes a new supplier (shown in the preview first). Writes go through ``ContractService`` and
``SupplierService``: the same rules and audit as the forms and the API.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.auth import Principal
from procurement.contracts.register_sheet import SheetRow
from procurement.contracts.schemas import ContractCreate, ContractSupplierIn, ContractUpdate
from procurement.contracts.service import ContractService
from procurement.imports.bulk import chunks
from procurement.money import format_pence
from procurement.organisations.service import _org_name_key
from procurement.schemas import IdentifierIn
from procurement.suppliers.schemas import SupplierCreate
from procurement.suppliers.service import SupplierService

Action = Literal["create", "update", "unchanged", "error"]


@dataclass
class PlannedRow:
    row: SheetRow
    action: Action
    supplier_id: int | None = None
    new_supplier: bool = False
    contract_id: int | None = None
    changes: list[str] = field(default_factory=list)


def stored_upload(work_dir: Path, data: bytes, filename: str) -> str:
    """Keep the uploaded bytes under their sha256 until the preview is committed; the name to find them by."""
    suffix = ".xlsx" if filename.lower().endswith(".xlsx") else ".csv"
    digest = hashlib.sha256(data).hexdigest()
    folder = work_dir / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{digest}{suffix}").write_bytes(data)
    return f"{digest}{suffix}"


def load_upload(work_dir: Path, key: str) -> bytes | None:
    if not re.fullmatch(r"[0-9a-f]{64}\.(csv|xlsx)", key):
        return None
    path = work_dir / "uploads" / key
    return path.read_bytes() if path.is_file() else None


async def plan(session: AsyncSession, organisation_id: int, rows: list[SheetRow]) -> list[PlannedRow]:
    contracts = await _contracts_by_reference(session, organisation_id, [r.reference for r in rows if r.reference])
    by_number, by_key = await _suppliers(session, rows)
    planned = []
    for row in rows:
        if row.errors:
            planned.append(PlannedRow(row, "error"))
            continue
        item = PlannedRow(row, "create")
        number = row.supplier_number
        key = _org_name_key(row.supplier_name)
        named = by_key.get(key, [])
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
        contract = contracts.get(row.reference)
        if contract is not None:
            item.contract_id = contract.id
            if contract.status == m.ContractStatus.WITHDRAWN.value:
                row.errors.append(f"Contract {row.reference!r} is withdrawn and cannot be changed by an upload")
            else:
                item.changes = _differences(contract, row, item)
                item.action = "update" if item.changes else "unchanged"
        if row.errors:
            item.action = "error"
        planned.append(item)
    return planned


def _differences(contract: m.Contract, row: SheetRow, item: PlannedRow) -> list[str]:
    found = []
    for label, old, new in (
        ("title", contract.title, row.title),
        ("value", contract.value_pence, row.value_pence),
        ("award date", contract.award_date, row.award_date),
        ("start date", contract.start_date, row.start_date),
        ("end date", contract.end_date, row.end_date),
        ("CPV codes", [c.code for c in contract.cpv], row.cpv_codes),
    ):
        if old != new:
            found.append(label)
    if item.new_supplier or [s.supplier_id for s in contract.suppliers] != [item.supplier_id]:
        found.append("supplier")
    return found


async def _contracts_by_reference(
    session: AsyncSession, organisation_id: int, references: list[str]
) -> dict[str, m.Contract]:
    found: dict[str, m.Contract] = {}
    for part in chunks(list(dict.fromkeys(references))):
        rows = await session.scalars(
            select(m.Contract).where(
                m.Contract.buyer_id == organisation_id,
                m.Contract.source == m.ContractSource.MANUAL.value,
                m.Contract.source_id.in_(part),
            )
        )
        found.update({c.source_id: c for c in rows.all() if c.source_id})
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
    """Every valid row in the caller's one transaction (the caller commits once, or nothing on an error)."""
    contracts, suppliers = ContractService(session=session), SupplierService(session=session)
    made: dict[str, int] = {}
    for item in planned:
        if item.action in ("create", "update") and item.new_supplier:
            key = _org_name_key(item.row.supplier_name)
            if key not in made:
                number = item.row.supplier_number
                supplier = await suppliers.create_supplier(
                    SupplierCreate(
                        name=item.row.supplier_name,
                        postcode=item.row.supplier_postcode,
                        identifiers=[IdentifierIn(scheme="GB-COH", id=number)] if number else [],
                    ),
                    actor,
                )
                made[key] = supplier.id
            item.supplier_id = made[key]
    reason = f"Spreadsheet upload {filename}"
    new_contracts: list[ContractCreate] = []
    for item in planned:
        row = item.row
        if item.supplier_id is None or item.action not in ("create", "update"):
            continue
        value = Decimal(format_pence(row.value_pence) or "0") if row.value_pence is not None else None
        if item.action == "create":
            new_contracts.append(
                ContractCreate(
                    buyer_id=organisation_id,
                    title=row.title,
                    reference=row.reference,
                    suppliers=[ContractSupplierIn(supplier_id=item.supplier_id)],
                    cpv_codes=row.cpv_codes,
                    value=value,
                    award_date=row.award_date,
                    start_date=row.start_date,
                    end_date=row.end_date,
                )
            )
        elif item.contract_id is not None:
            await contracts.update_contract(
                item.contract_id,
                ContractUpdate(
                    title=row.title,
                    suppliers=[ContractSupplierIn(supplier_id=item.supplier_id)],
                    cpv_codes=row.cpv_codes,
                    value=value,
                    award_date=row.award_date,
                    start_date=row.start_date,
                    end_date=row.end_date,
                ),
                actor,
                reason=reason,
            )
    if new_contracts:
        await contracts.create_contracts(new_contracts, actor)
    count = {a: sum(1 for p in planned if p.action == a) for a in ("create", "update", "unchanged", "error")}
    return Committed(count["create"], count["update"], count["unchanged"], count["error"], len(made))
