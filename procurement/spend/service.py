"""Import a published spend file for one anchor; match its payees; remember reviewers' decisions.

One file is one import run (``ImportRun`` source "spend", its row notes as ``ImportNote``) and one ``SpendFile``,
written in one transaction: a file is imported whole or not at all.

* The same bytes again for the same anchor change nothing (SHA-256 of the file); nothing is written.
* Different bytes covering a month an active file of that anchor already covers replace that file: its lines
  are deleted, its row stays (``replaced``, pointing at the new one) and an audit event records the reason.
  A replacement needs a reason, so a wrong file cannot silently overwrite a month's figures.
* Payees: a person's decision for this anchor's payee name is used as made; the rest are matched against the
  supplier master (``socialvalue.payees``: identifiers, then normalised names; fuzzy candidates only ever go
  to review). New payees become suppliers, unclassified until ``localvalue classify`` (so "unknown").
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from importers.spend import FIELDS, SpendFile, read_spend_file
from procurement import clock
from procurement import models as m
from procurement.audit import record_audit
from procurement.auth import Principal, ensure_can_write_for
from procurement.bulk import allocate_ids, bulk_insert, chunks, cut
from procurement.db import get_or_not_found
from procurement.errors import ConflictError, InvalidInput, NotFound
from procurement.models import RunStatus
from procurement.suppliers.tiers import refresh_tiers
from socialvalue.identifiers import normalise_org_name
from socialvalue.influenceable import classify_influenceable
from socialvalue.payees import match_payees, payee_key, payees_of

SOURCE = "spend"
DECIDED = ("confirmed", "new", "rejected")  # a person's decisions (and automatic "new"), used as made
# Statuses kept from one file to the next; "matched" is worked out again so a better master can improve it.
REMEMBERED = (*DECIDED, "review")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class SpendImportResult:
    file_id: int | None
    run_id: int | None
    unchanged: bool
    source_name: str
    line_count: int
    transaction_count: int
    total_pence: int
    redacted_lines: int
    redacted_pence: int
    payees_matched: int
    payees_review: int
    payees_new: int
    notes: int
    months: list[str]
    replaced_file_ids: list[int]

    def summary(self) -> str:
        def pounds(pence: int) -> str:
            return f"£{Decimal(pence) / 100:,.2f}"

        head = "unchanged (already imported): " if self.unchanged else ""
        return (
            f"{head}lines {self.line_count:,}, total {pounds(self.total_pence)}, "
            f"redacted {self.redacted_lines:,} lines {pounds(self.redacted_pence)}, "
            f"payees matched {self.payees_matched:,} / to review {self.payees_review:,} / new {self.payees_new:,}, "
            f"notes {self.notes:,}"
        )


async def load_mapping(session: AsyncSession, name: str) -> dict[str, str]:
    row = (await session.scalars(select(m.SpendMapping).where(m.SpendMapping.name == name))).first()
    if row is None:
        raise NotFound(f"no saved spend mapping {name!r}; save one with `localvalue spend mapping save {name} ...`")
    return dict(row.mapping)


def check_mapping(mapping: Mapping[str, str]) -> dict[str, str]:
    """Header -> field (or "ignore"); the message names the fields a header may map to."""
    allowed = {*FIELDS, "ignore"}
    bad = {h: f for h, f in mapping.items() if f not in allowed}
    if bad:
        header, field = next(iter(bad.items()))
        raise InvalidInput(
            f"header {header!r} maps to {field!r}, which is not a field; use one of: {', '.join(sorted(allowed))}"
        )
    if not mapping:
        raise InvalidInput('a mapping needs at least one header, e.g. "Expense Area=expense_type"')
    return {h.strip(): f for h, f in mapping.items()}


async def save_mapping(session: AsyncSession, name: str, mapping: Mapping[str, str], *, by: str) -> m.SpendMapping:
    checked = check_mapping(mapping)
    row = (await session.scalars(select(m.SpendMapping).where(m.SpendMapping.name == name))).first()
    old = dict(row.mapping) if row is not None else None
    if row is None:
        row = m.SpendMapping(name=name, mapping=checked, updated_at=clock.now(), updated_by=by)
        session.add(row)
    else:
        row.mapping = checked
        row.updated_at = clock.now()
        row.updated_by = by
    await session.flush()
    await record_audit(
        session,
        actor=None,
        actor_name=by,
        action="spend_mapping.save",
        entity_type="spend_mapping",
        entity_id=row.id,
        changes={"mapping": (old, checked)},
    )
    return row


def _register_master() -> pl.DataFrame | None:
    """Seam for the supplier registers (Companies House, charities) once they are loaded into the service:
    a frame like ``_supplier_master``'s whose rows also name a supplier id. None until then."""
    return None


async def _supplier_master(session: AsyncSession) -> pl.DataFrame:
    """Every live supplier with the company and charity numbers it is registered under."""
    names = (
        await session.execute(select(m.Supplier.id, m.Supplier.name).where(m.Supplier.merged_into_id.is_(None)))
    ).all()
    idents = (
        await session.execute(
            select(m.SupplierIdentifier.supplier_id, m.SupplierIdentifier.scheme, m.SupplierIdentifier.value).where(
                m.SupplierIdentifier.scheme.in_(["GB-COH", "GB-CHC"])
            )
        )
    ).all()
    company: dict[int, str] = {}
    charity: dict[int, str] = {}
    for sid, scheme, value in idents:
        (company if scheme == "GB-COH" else charity).setdefault(sid, value)
    master = pl.DataFrame(
        {
            "supplier_id": [str(r[0]) for r in names],
            "name": [r[1] for r in names],
            "company_number": [company.get(r[0]) for r in names],
            "charity_number": [charity.get(r[0]) for r in names],
        },
        schema={"supplier_id": pl.String, "name": pl.String, "company_number": pl.String, "charity_number": pl.String},
    )
    registers = _register_master()
    return master if registers is None else pl.concat([master, registers], how="diagonal_relaxed")


def _lines_frame(parsed: SpendFile, month: str | None) -> pl.DataFrame:
    lines = classify_influenceable(parsed.lines)
    month_expr = pl.col("date").dt.strftime("%Y-%m")
    if month is not None:
        month_expr = pl.coalesce(month_expr, pl.lit(month))
    keys = {
        name: payee_key(name)
        for name in lines["supplier_clean"].drop_nulls().unique().to_list()
        if isinstance(name, str)
    }
    key_frame = pl.DataFrame(
        {"supplier_clean": list(keys), "payee_key": list(keys.values())},
        schema={"supplier_clean": pl.String, "payee_key": pl.String},
    )
    return lines.with_columns(month=month_expr).join(key_frame, on="supplier_clean", how="left", maintain_order="left")


def _notes(parsed: SpendFile, lines: pl.DataFrame, month: str | None) -> list[tuple[str, str | None, str | None, str]]:
    """(level, where, value, message) per note: the reader's row notes, its file notes, and dates outside --month."""
    out: list[tuple[str, str | None, str | None, str]] = [("info", parsed.name, None, n) for n in parsed.file_notes]
    for row, column, value, problem in parsed.notes.iter_rows():
        out.append(("warning", f"{parsed.name} row {row}, column {column}", value, problem))
    if month is not None:
        outside = lines.filter(pl.col("date").is_not_null() & (pl.col("date").dt.strftime("%Y-%m") != month))
        for row, date in outside.select("row", "date").iter_rows():
            out.append(("warning", f"{parsed.name} row {row}", str(date), f"payment date is outside --month {month}"))
    return out


async def _decided(session: AsyncSession, anchor_id: int, keys: list[str]) -> dict[str, m.PayeeMatch]:
    found: dict[str, m.PayeeMatch] = {}
    for chunk in chunks(sorted(keys)):
        rows = await session.scalars(
            select(m.PayeeMatch).where(m.PayeeMatch.anchor_id == anchor_id, m.PayeeMatch.payee_key.in_(list(chunk)))
        )
        found.update({r.payee_key: r for r in rows})
    return found


async def _new_supplier(
    session: AsyncSession, name: str, company: str | None, charity: str | None, postcode: str | None
) -> int:
    supplier = m.Supplier(name=cut(name, 500) or name, name_key=normalise_org_name(name), postcode=postcode)
    if postcode:
        supplier.postcode_source = "spend file"
    session.add(supplier)
    await session.flush()
    for scheme, value in (("GB-COH", company), ("GB-CHC", charity)):
        if not value:
            continue
        taken = await session.scalar(
            select(func.count()).where(m.SupplierIdentifier.scheme == scheme, m.SupplierIdentifier.value == value)
        )
        if not taken:
            session.add(m.SupplierIdentifier(supplier_id=supplier.id, scheme=scheme, value=value))
    return supplier.id


async def _match(
    session: AsyncSession, anchor_id: int, lines: pl.DataFrame, *, by: str
) -> tuple[dict[str, int | None], dict[str, int]]:
    """payee key -> supplier id (None: waiting for review, or rejected) and counts of distinct payees by outcome."""
    payees = payees_of(lines).with_columns(payee_key=pl.col("name").map_elements(payee_key, return_dtype=pl.String))
    postcodes = dict(
        lines.filter(pl.col("postcode").is_not_null()).group_by("payee_key").agg(pl.col("postcode").first()).iter_rows()
    )
    keys = payees["payee_key"].unique().to_list()
    remembered = await _decided(session, anchor_id, keys)
    to_match = payees.filter(~pl.col("payee_key").is_in([k for k, r in remembered.items() if r.status in REMEMBERED]))
    results = match_payees(to_match, await _supplier_master(session)) if to_match.height else None
    supplier_of: dict[str, int | None] = {}
    counts = {"matched": 0, "review": 0, "new": 0}
    for key, row in remembered.items():
        if row.status in REMEMBERED:
            supplier_of[key] = row.supplier_id
            if row.status != "rejected":  # a rejected payee is neither matched nor waiting: a person said no
                counts["review" if row.status == "review" else "matched"] += 1
    now = clock.now()
    if results is not None:
        # One outcome per payee key: the first (name, identifiers) pair of the file that gives it, best first.
        order = {"matched": 0, "review": 1, "new": 2}
        ranked = results.with_columns(
            payee_key=pl.col("name").map_elements(payee_key, return_dtype=pl.String),
            rank=pl.col("status").replace_strict(order, return_dtype=pl.Int8),
        ).sort("rank", maintain_order=True)
        for result in ranked.unique("payee_key", keep="first", maintain_order=True).iter_rows(named=True):
            key = result["payee_key"]
            status = result["status"]
            supplier_id: int | None = int(result["supplier_id"]) if result["supplier_id"] else None
            if status == "new":
                supplier_id = await _new_supplier(
                    session, result["name"], result["company_number"], result["charity_number"], postcodes.get(key)
                )
            known = remembered.get(key)
            if known is None:
                row = m.PayeeMatch(anchor_id=anchor_id, payee_key=key, payee_name=cut(result["name"], 500))
                session.add(row)
            else:
                row = known
            row.status = status
            row.supplier_id = supplier_id
            row.method = cut(result["method"], 100) or ""
            row.score = float(result["score"])
            row.candidates = [dict(c) for c in result["candidates"] or []]
            row.decided_by = f"automatic ({by})" if status != "review" else None
            row.decided_at = now if status != "review" else None
            supplier_of[key] = supplier_id
            counts[status] += 1
    await session.flush()
    return supplier_of, counts


async def _overlapping(session: AsyncSession, anchor_id: int, months: list[str]) -> list[m.SpendFile]:
    active = await session.scalars(
        select(m.SpendFile).where(m.SpendFile.anchor_id == anchor_id, m.SpendFile.status == "active")
    )
    return [f for f in active if set(f.months) & set(months)]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _month(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        dt.date.fromisoformat(f"{value}-01")
    except ValueError:
        raise InvalidInput(f"--month {value!r} is not a month; send it as YYYY-MM, e.g. 2025-04") from None
    return value


async def import_spend_file(
    session: AsyncSession,
    path: Path,
    anchor: m.Organisation,
    *,
    month: str | None = None,
    mapping_name: str | None = None,
    reason: str | None = None,
    by: str = "cli",
    progress: Progress | None = None,
) -> SpendImportResult:
    """Import one spend file for ``anchor`` (see the module docstring for re-imports and replacements)."""
    say = progress or (lambda _stage: None)
    month = _month(month)
    sha = await asyncio.to_thread(_sha256, path)
    same = (
        await session.scalars(
            select(m.SpendFile).where(
                m.SpendFile.anchor_id == anchor.id, m.SpendFile.sha256 == sha, m.SpendFile.status == "active"
            )
        )
    ).first()
    if same is not None:
        return SpendImportResult(
            same.id, same.run_id, True, same.source_name, same.line_count, same.transaction_count, same.total_pence,
            same.redacted_lines, same.redacted_pence, same.payees_matched, same.payees_review, same.payees_new,
            same.notes, list(same.months), [],
        )  # fmt: skip
    mapping = await load_mapping(session, mapping_name) if mapping_name else None
    say("reading")
    try:
        parsed = await asyncio.to_thread(read_spend_file, path, mapping)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    lines = _lines_frame(parsed, month)
    months = sorted(x for x in lines["month"].unique().to_list() if x)
    replaced = await _overlapping(session, anchor.id, months)
    if replaced and not (reason and reason.strip()):
        names = ", ".join(f"file {f.id} ({f.source_name}, {', '.join(f.months)})" for f in replaced)
        raise ConflictError(
            f"{anchor.name} already has {names} for these months; to replace it with {path.name}, "
            'say why with --reason (e.g. --reason "corrected file published 2025-06-03")'
        )
    say("matching payees")
    supplier_of, counts = await _match(session, anchor.id, lines, by=by)
    say("storing")
    started = clock.now()
    notes = _notes(parsed, lines, month)
    run = m.ImportRun(
        source=SOURCE,
        kind="file",
        parameters={"path": str(path), "anchor_id": anchor.id, "month": month, "mapping": mapping_name, "sha256": sha},
        status=RunStatus.COMPLETED,
        started_at=started,
        finished_at=started,
        fetched=parsed.line_count,
        new=parsed.line_count,
        skipped=parsed.rows_skipped_totals + parsed.rows_skipped_blank,
        failed=0,
    )
    session.add(run)
    await session.flush()
    spend_file = m.SpendFile(
        anchor_id=anchor.id,
        run_id=run.id,
        source_name=cut(path.name, 300) or path.name,
        sha256=sha,
        status="active",
        months=months,
        layout=parsed.layout,
        header_row=parsed.header_row,
        mapping_name=mapping_name,
        amount_basis=parsed.amount_basis,
        amount_basis_reason=cut(parsed.amount_basis_reason, 300) or "",
        currency=parsed.currency,
        line_count=parsed.line_count,
        transaction_count=parsed.transaction_count,
        total_pence=parsed.total_pence,
        redacted_lines=int(parsed.lines["redacted"].sum()),
        redacted_pence=parsed.redacted_total_pence,
        payees_matched=counts["matched"],
        payees_review=counts["review"],
        payees_new=counts["new"],
        notes=len(notes),
        facts={
            "columns_mapped": parsed.columns_mapped,
            "columns_unmapped": parsed.columns_unmapped,
            "fuzzy_headers": parsed.fuzzy_headers,
            "encoding": parsed.encoding,
            "rows_skipped_blank": parsed.rows_skipped_blank,
            "rows_skipped_totals": parsed.rows_skipped_totals,
        },
        imported_at=started,
        imported_by=by,
    )
    session.add(spend_file)
    await session.flush()
    for old in replaced:
        before = {"status": old.status, "total_pence": old.total_pence, "sha256": old.sha256}
        await session.execute(delete(m.PaymentLine).where(m.PaymentLine.file_id == old.id))
        old.status = "replaced"
        old.replaced_by_id = spend_file.id
        await record_audit(
            session,
            actor=None,
            actor_name=by,
            action="spend_file.replace",
            entity_type="spend_file",
            entity_id=old.id,
            organisation_id=anchor.id,
            changes={
                "status": (before["status"], "replaced"),
                "replaced_by": (None, spend_file.id),
                "sha256": (before["sha256"], sha),
                "total_pence": (before["total_pence"], spend_file.total_pence),
            },
            reason=(reason or "").strip(),
        )
    rows = [
        {
            "file_id": spend_file.id,
            "anchor_id": anchor.id,
            "row_number": r["row"],
            "payment_date": r["date"],
            "month": r["month"],
            "amount_pence": r["amount_pence"],
            "currency": parsed.currency,
            "supplier_id": None if r["redacted"] or r["payee_key"] is None else supplier_of.get(r["payee_key"]),
            "payee_name": None if r["redacted"] else cut(r["supplier_clean"], 500),
            "payee_key": None if r["redacted"] else cut(r["payee_key"], 500),
            "redacted": bool(r["redacted"]),
            "redaction_kind": r["redaction_kind"],
            "transaction_number": cut(r["transaction"], 100),
            "expense_type": cut(r["expense_type"], 300),
            "expense_area": cut(r["expense_area"], 300),
            "influenceable": bool(r["influenceable"]),
            "not_influenceable_rule": r["not_influenceable_rule"],
        }
        for r in lines.iter_rows(named=True)
    ]
    ids = await allocate_ids(session, m.PaymentLine, len(rows))
    for row, line_id in zip(rows, ids, strict=True):
        row["id"] = line_id
    await bulk_insert(session, m.PaymentLine, rows)
    await refresh_tiers(session, anchors=[anchor.id], suppliers={r["supplier_id"] for r in rows if r["supplier_id"]})
    session.add_all(
        m.ImportNote(
            run_id=run.id,
            level=level,
            path=cut(where, 500),
            value=value,
            message=message,
            created_at=started,
        )
        for level, where, value, message in notes
    )
    await record_audit(
        session,
        actor=None,
        actor_name=by,
        action="spend_file.import",
        entity_type="spend_file",
        entity_id=spend_file.id,
        organisation_id=anchor.id,
        changes={
            "source_name": (None, spend_file.source_name),
            "sha256": (None, sha),
            "lines": (None, spend_file.line_count),
            "total_pence": (None, spend_file.total_pence),
            "months": (None, months),
        },
        reason=(reason or "").strip() or None,
    )
    await session.flush()
    return SpendImportResult(
        spend_file.id, run.id, False, spend_file.source_name, spend_file.line_count, spend_file.transaction_count,
        spend_file.total_pence, spend_file.redacted_lines, spend_file.redacted_pence, counts["matched"],
        counts["review"], counts["new"], len(notes), months, [f.id for f in replaced],
    )  # fmt: skip


# ------------------------------------------------------------------------------------------------- review
async def review_queue(session: AsyncSession, anchor_id: int | None) -> list[tuple[m.PayeeMatch, int, int]]:
    """Payees waiting for a person, each with its lines and value paid, largest value first."""
    p = m.PaymentLine
    query = (
        select(m.PayeeMatch, func.count(p.id), func.coalesce(func.sum(p.amount_pence), 0))
        .outerjoin(p, (p.anchor_id == m.PayeeMatch.anchor_id) & (p.payee_key == m.PayeeMatch.payee_key))
        .where(m.PayeeMatch.status == "review")
        .group_by(m.PayeeMatch.id)
        .order_by(func.coalesce(func.sum(p.amount_pence), 0).desc(), m.PayeeMatch.id)
    )
    if anchor_id is not None:
        query = query.where(m.PayeeMatch.anchor_id == anchor_id)
    return [(r[0], int(r[1]), int(r[2])) for r in (await session.execute(query)).all()]


async def decide(
    session: AsyncSession,
    match_id: int,
    *,
    decision: str,
    reason: str,
    actor: Principal,
    supplier_id: int | None = None,
) -> m.PayeeMatch:
    """confirm (this supplier), new (make a supplier of the payee) or reject (none of these; no supplier).

    The decision is audited with its reason, applied to every line of this anchor with that payee, and used as
    made for the anchor's next files."""
    row = await get_or_not_found(session, m.PayeeMatch, match_id, "payee match")
    ensure_can_write_for(actor, row.anchor_id)
    before: dict[str, Any] = {"status": row.status, "supplier_id": row.supplier_id}
    if decision == "confirm":
        if supplier_id is None:
            raise InvalidInput('confirm needs supplier_id, e.g. {"decision": "confirm", "supplier_id": 12, ...}')
        supplier = await get_or_not_found(session, m.Supplier, supplier_id, "supplier")
        row.status, row.supplier_id = "confirmed", supplier.merged_into_id or supplier.id
    elif decision == "new":
        if supplier_id is not None:
            raise InvalidInput("new makes a new supplier; leave supplier_id out (or use confirm)")
        row.status = "new"
        row.supplier_id = await _new_supplier(session, row.payee_name, None, None, None)
    elif decision == "reject":
        row.status, row.supplier_id = "rejected", None
    else:
        raise InvalidInput(f"decision {decision!r}: send confirm, new or reject")
    row.decided_by = actor.name
    row.decided_at = clock.now()
    row.reason = reason.strip()
    await session.execute(
        update(m.PaymentLine)
        .where(m.PaymentLine.anchor_id == row.anchor_id, m.PaymentLine.payee_key == row.payee_key)
        .values(supplier_id=row.supplier_id)
    )
    await record_audit(
        session,
        actor=actor,
        action=f"payee_match.{decision}",
        entity_type="payee_match",
        entity_id=row.id,
        organisation_id=row.anchor_id,
        changes={"status": (before["status"], row.status), "supplier_id": (before["supplier_id"], row.supplier_id)},
        reason=row.reason,
    )
    await session.flush()
    if row.supplier_id is not None:
        await refresh_tiers(session, anchors=[row.anchor_id], suppliers=[row.supplier_id])
    return row


async def list_files(session: AsyncSession, anchor_id: int | None) -> list[m.SpendFile]:
    query = select(m.SpendFile).order_by(m.SpendFile.id)
    if anchor_id is not None:
        query = query.where(m.SpendFile.anchor_id == anchor_id)
    return list(await session.scalars(query))
