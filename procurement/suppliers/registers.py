"""Supplier registers in the service: load them, match suppliers to them, remember reviewers' decisions.

The registers live in the parquet store under ``Settings.registers_dir`` (importers.registers); the database
records the loaded versions (``register_load``), each supplier's current match (``supplier_register_match``,
recomputed only when the supplier's name, postcode or identifiers, a register version or a decision changed)
and reviewers' confirm / reject decisions (``register_match_decision``), which survive re-loads and re-imports.

Classification asks ``register_facts`` for each supplier's register evidence (socialvalue.register_evidence),
the "why" record of the match itself and the registered postcode as a weaker locality fallback.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import msgspec
import polars as pl
from sqlalchemy import and_, case, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from importers.registers import LoadSummary, RegisterError, load_register, loaded_registers, scan_register
from procurement import clock
from procurement import models as m
from procurement.audit import record_audit
from procurement.auth import Principal
from procurement.bulk import among
from procurement.errors import DomainError, Forbidden, NotFound
from procurement.money import ratio_text
from procurement.settings import get_settings
from procurement.suppliers.service import affected_organisations
from socialvalue.enterprise import Evidence
from socialvalue.matching import MATCHING_VERSION, MatchResult, RegisterIndex, SupplierQuery
from socialvalue.register_evidence import REGISTER_LABEL, RULE_VERSION, LocalityFallback, register_findings

# The names people type on the command line -> the store's register kinds.
REGISTER_NAMES = {
    "companies-house": "companies_house",
    "charity-commission": "ccew",
    "oscr": "oscr",
    "mutuals": "fca_mutuals",
}
CLI_NAME = {kind: name for name, kind in REGISTER_NAMES.items()}
ENTRY_FIELDS = (
    "register", "number", "name", "postcode", "status", "current", "category", "account_category", "removed",
    "company_number",
)  # fmt: skip
MIN_REASON = 10
_IN_CHUNK = 5000  # ids per IN (...) list: well inside SQLite's and asyncpg's parameter limits


def store_dir() -> Path:
    return get_settings().registers_dir


# ---------------------------------------------------------------------------------------------------------------
# The index: built once per set of loaded versions and kept (a 5M-row register takes seconds to index).

_index_lock = threading.Lock()
_index_cache: dict[str, tuple[tuple[Any, ...], RegisterIndex, dict[str, LoadSummary]]] = {}


def _fingerprint(store: Path, manifests: Mapping[str, LoadSummary]) -> tuple[Any, ...]:
    return (str(store), *sorted((k, s.version, s.loaded_at, s.rows) for k, s in manifests.items()))


def register_index(store: Path) -> tuple[RegisterIndex, dict[str, LoadSummary]]:
    """The index over every register loaded in ``store`` and their manifests, rows and manifests from one load."""
    with _index_lock:
        manifests = loaded_registers(store) if store.is_dir() else {}
        key = _fingerprint(store, manifests)
        cached = _index_cache.get("index")
        if cached is not None and cached[0] == key:
            return cached[1], cached[2]
        _index_cache.clear()  # let the old index go before the new one is built
        for _ in range(5):
            scans = {kind: scan_register(store, kind) for kind in manifests}
            index = RegisterIndex({kind: (scan, summary.version) for kind, (scan, summary) in scans.items()})
            after = loaded_registers(store)
            if _fingerprint(store, after) == key:
                _index_cache["index"] = (key, index, manifests)
                return index, manifests
            manifests, key = after, _fingerprint(store, after)  # a load replaced a file meanwhile: again
        raise DomainError("the registers kept changing while they were read; try again when the load has finished")


def _entries(store: Path, wanted: Mapping[str, set[str]]) -> dict[tuple[str, str], dict[str, Any]]:
    """The evidence fields of the given entries (kind -> numbers), read in one pass per register."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for kind, numbers in wanted.items():
        if not numbers:
            continue
        scan, _ = scan_register(store, kind)
        frame = (
            scan.filter(pl.col("number").is_in(pl.Series(sorted(numbers), dtype=pl.String).implode()))
            .select(ENTRY_FIELDS)
            .collect(engine="streaming")
        )
        for row in frame.iter_rows(named=True):
            removed = row["removed"]
            out[(kind, row["number"])] = row | {"removed": removed.isoformat() if removed else None}
    return out


# ---------------------------------------------------------------------------------------------------------------
# Matching suppliers


@dataclass(frozen=True)
class MatchInput:
    supplier_id: int
    name: str | None
    postcode: str | None
    identifiers: tuple[tuple[str, str], ...]
    has_delivery_postcode: bool  # the feed (or a person) gave a postcode: the register's is then not needed


@dataclass(frozen=True)
class RegisterFacts:
    """What classification takes from a supplier's register match."""

    evidence: tuple[Evidence, ...]
    records: tuple[dict[str, Any], ...]  # the match's own "why" record (flag "register")
    locality: LocalityFallback | None
    key: str  # changes whenever any of the above can change


@dataclass(frozen=True)
class _Decision:
    id: int
    decision: str
    register: str
    number: str
    reason: str
    by: str
    at: dt.datetime


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), _IN_CHUNK):
        yield ids[start : start + _IN_CHUNK]


async def _decisions(session: AsyncSession, supplier_ids: Sequence[int] | None) -> dict[int, list[_Decision]]:
    d = m.RegisterMatchDecision
    query = select(d).where(d.superseded_at.is_(None)).order_by(d.id)
    rows: list[m.RegisterMatchDecision] = []
    if supplier_ids is None:
        rows = list((await session.scalars(query)).all())
    else:
        for chunk in _chunks(supplier_ids):
            rows += (await session.scalars(query.where(among(_dialect(session), d.supplier_id, chunk)))).all()
    out: dict[int, list[_Decision]] = defaultdict(list)
    for r in rows:
        at = r.decided_at if r.decided_at.tzinfo else r.decided_at.replace(tzinfo=dt.UTC)
        out[r.supplier_id].append(_Decision(r.id, r.decision, r.register, r.number, r.reason, r.decided_by, at))
    return out


async def _existing(session: AsyncSession, supplier_ids: Sequence[int] | None) -> dict[int, m.SupplierRegisterMatch]:
    sm = m.SupplierRegisterMatch
    if supplier_ids is None:
        return {r.supplier_id: r for r in (await session.scalars(select(sm))).all()}
    out: dict[int, m.SupplierRegisterMatch] = {}
    for chunk in _chunks(supplier_ids):
        found = await session.scalars(select(sm).where(among(_dialect(session), sm.supplier_id, chunk)))
        out |= {r.supplier_id: r for r in found.all()}
    return out


def _input_key(inp: MatchInput, versions: Mapping[str, str], decisions: Sequence[_Decision]) -> str:
    payload = (
        MATCHING_VERSION,
        inp.name,
        inp.postcode,
        inp.identifiers,
        sorted(versions.items()),
        [(d.id, d.decision, d.register, d.number) for d in decisions],
    )
    return hashlib.sha256(msgspec.json.encode(payload)).hexdigest()


def _candidate_json(c: Any) -> dict[str, Any]:
    return {
        "register": c.register,
        "number": c.number,
        "name": c.name,
        "postcode": c.postcode,
        "current": c.current,
        "score": c.score,
        "via": c.via,
    }


def _apply_decisions(
    index: RegisterIndex, result: MatchResult, decisions: Sequence[_Decision]
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The match row for one supplier after its reviewers' decisions, and the entries whose fields it needs."""
    rejected = {(d.register, d.number) for d in decisions if d.decision == "rejected"}
    confirmed = [d for d in decisions if d.decision == "confirmed"]
    candidates = [c for c in result.candidates if (c.register, c.number) not in rejected]
    row: dict[str, Any] = {
        "status": result.status,
        "method": result.method,
        "score": result.score if result.entry else None,
        "register": result.register,
        "number": result.entry.number if result.entry else None,
        "version": result.version,
        "reason": result.reason,
        "candidates": [_candidate_json(c) for c in candidates],
    }
    if confirmed:
        last = confirmed[-1]
        found = index.lookup(last.register, last.number)
        if found is None:
            return row | {
                "status": "review",
                "reason": f"the confirmed entry {last.register} {last.number} is not in the loaded register",
            }, []
        entry, linked = found
        row |= {
            "status": "confirmed",
            "method": "reviewer",
            "score": 100.0,
            "register": entry.register,
            "number": entry.number,
            "version": index.versions.get(entry.register),
            "reason": f"confirmed by {last.by} on {last.at.date().isoformat()}: {last.reason}",
        }
        return row, [(e.register, e.number) for e in (entry, *linked)]
    if result.status == "matched" and result.entry is not None:
        chosen = {(e.register, e.number) for e in (result.entry, *result.linked)}
        if chosen & rejected:
            status = "review" if candidates else "none"
            return row | {
                "status": status,
                "method": result.method if candidates else None,
                "reason": "a reviewer rejected the automatic match",
            }, []
        return row, [(e.register, e.number) for e in (result.entry, *result.linked)]
    if result.status == "review" and not candidates:
        return row | {"status": "none", "reason": "a reviewer rejected every candidate"}, []
    return row, []


def _match(
    store: Path, inputs: Sequence[MatchInput], decisions: Mapping[int, Sequence[_Decision]]
) -> tuple[dict[int, dict[str, Any]], dict[str, str]]:
    """Match rows by supplier id (blocking work: run in a thread) and the versions they were matched against."""
    index, manifests = register_index(store)
    queries = [SupplierQuery(i.name, i.postcode, i.identifiers) for i in inputs]
    out: dict[int, dict[str, Any]] = {}
    needed: dict[int, list[tuple[str, str]]] = {}
    for inp, result in zip(inputs, index.match(queries), strict=True):
        row, keys = _apply_decisions(index, result, decisions.get(inp.supplier_id, ()))
        out[inp.supplier_id] = row
        needed[inp.supplier_id] = keys
    wanted: dict[str, set[str]] = defaultdict(set)
    for keys in needed.values():
        for kind, number in keys:
            wanted[kind].add(number)
    fields = _entries(store, wanted)
    versions = {kind: s.version for kind, s in manifests.items()}
    for sid, keys in needed.items():
        out[sid]["entries"] = [fields[k] | {"version": versions.get(k[0])} for k in keys if k in fields]
    return out, versions


async def record_versions(session: AsyncSession, manifests: Mapping[str, LoadSummary]) -> None:
    """Make ``register_load`` say what the store holds (a load elsewhere is noticed here too)."""
    rl = m.RegisterLoad
    known = {r.kind: r for r in (await session.scalars(select(rl))).all()}
    for kind, s in manifests.items():
        loaded_at = dt.datetime.fromisoformat(s.loaded_at) if s.loaded_at else clock.now()
        values = {
            "version": s.version,
            "rows": s.rows,
            "skipped": s.skipped,
            "sources": [dict(x) for x in s.sources],
            "loaded_at": loaded_at,
        }
        row = known.get(kind)
        if row is None:
            session.add(rl(kind=kind, **values))
        elif (row.version, row.rows, _aware(row.loaded_at)) != (s.version, s.rows, loaded_at):
            for key, value in values.items():
                setattr(row, key, value)
    await session.flush()


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


async def register_facts(
    session: AsyncSession, inputs: Sequence[MatchInput], *, scoped: bool
) -> dict[int, RegisterFacts]:
    """Each supplier's register facts, matching again only those whose inputs, registers or decisions changed.

    ``scoped``: ``inputs`` are some suppliers, not all (then only their rows are read).
    """
    store = store_dir()
    manifests = loaded_registers(store) if store.is_dir() else {}
    ids = [i.supplier_id for i in inputs] if scoped else None
    existing = await _existing(session, ids)
    if not manifests and not existing:
        return {}
    await record_versions(session, manifests)
    decisions = await _decisions(session, ids)
    versions = {kind: s.version for kind, s in manifests.items()}
    keys = {i.supplier_id: _input_key(i, versions, decisions.get(i.supplier_id, ())) for i in inputs}
    stale = [
        i for i in inputs if i.supplier_id not in existing or existing[i.supplier_id].input_key != keys[i.supplier_id]
    ]
    sm = m.SupplierRegisterMatch
    if stale and not manifests:
        # The store was emptied: the old matches no longer stand.
        for chunk in _chunks([i.supplier_id for i in stale]):
            await session.execute(delete(sm).where(sm.supplier_id.in_(chunk)))
        for i in stale:
            existing.pop(i.supplier_id, None)
    elif stale:
        rows, matched_versions = await asyncio.to_thread(_match, store, stale, decisions)
        if matched_versions != versions:  # a load finished meanwhile: the rows carry the newer versions
            keys |= {i.supplier_id: _input_key(i, matched_versions, decisions.get(i.supplier_id, ())) for i in stale}
        now = clock.now()
        new, changed = [], []
        for i in stale:
            values = rows[i.supplier_id] | {"input_key": keys[i.supplier_id], "matched_at": now}
            if i.supplier_id in existing:
                changed.append({"id": existing[i.supplier_id].id, **values})
            else:
                new.append({"supplier_id": i.supplier_id, **values})
        if new:
            await session.execute(insert(sm), new)
        if changed:
            await session.execute(update(sm), changed)
        await session.flush()
        existing = await _existing(session, [i.supplier_id for i in inputs] if scoped else None)
    has_delivery = {i.supplier_id: i.has_delivery_postcode for i in inputs}
    return {
        sid: _facts(row, has_delivery.get(sid, False))
        for sid, row in existing.items()
        if sid in has_delivery and row.status != "none"
    }


def _facts(row: m.SupplierRegisterMatch, has_delivery_postcode: bool) -> RegisterFacts:
    label = REGISTER_LABEL.get(row.register or "", row.register or "")
    score = "-" if row.score is None else f"{row.score:.1f}"
    record = {
        "flag": "register",
        "value": row.status,
        "method": f"register_match: {row.method or 'none'}",
        "source": f"{label} {row.version or ''}, entry {row.number or '-'}".strip(),
        "evidence": row.reason,
        "confidence": None if row.score is None else round(row.score / 100, 3),
        "rule_id": "RGM",
        "rule_version": f"{MATCHING_VERSION}; {RULE_VERSION}",
        "overruled": False,
        "score": row.score,
        "register": row.register,
        "version": row.version,
        "number": row.number,
    }
    if row.status == "review":
        names = "; ".join(f"{c['register']} {c['number']} {c['name']} ({c['score']})" for c in row.candidates[:3])
        record |= {"source": "waiting for a reviewer", "evidence": f"{row.reason}: {names}"}
        return RegisterFacts((), (record,), None, f"review {row.input_key}")
    entries = [e | {"removed": dt.date.fromisoformat(e["removed"]) if e.get("removed") else None} for e in row.entries]
    certainty = "confirmed" if row.status == "confirmed" else (row.method or "")
    versions = {str(e["register"]): str(e.get("version") or "?") for e in entries}
    findings = register_findings(entries, versions, certainty, has_delivery_postcode)
    how = f"matched by {row.method}, score {score}"
    evidence = tuple(replace(e, source=f"{e.source} ({how})") for e in findings.evidence)
    if findings.warnings:
        record["evidence"] = f"{row.reason}; " + "; ".join(findings.warnings)
    key = msgspec.json.encode((row.input_key, row.status, row.entries, has_delivery_postcode)).decode()
    return RegisterFacts(evidence, (record,), findings.locality, hashlib.sha256(key.encode()).hexdigest())


# ---------------------------------------------------------------------------------------------------------------
# Coverage: the share of value whose supplier status is known


@dataclass(frozen=True)
class Coverage:
    total_pence: int
    category_known_pence: int
    sme_known_pence: int
    vcse_known_pence: int

    def share(self, part: int) -> str:
        text = ratio_text(part, self.total_pence)
        return "not known (no contract value)" if text is None else f"{float(text) * 100:.1f}%"


async def coverage(session: AsyncSession) -> Coverage:
    """Over every active GBP contract-supplier line with a value, classified as its (effective) supplier."""
    c, cs, s, sc = m.Contract, m.ContractSupplier, m.Supplier, m.SupplierClassification
    share = cs.share_pence

    def known(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, share), else_=0)), 0)

    query = (
        select(
            func.coalesce(func.sum(share), 0),
            known(and_(sc.category.is_not(None), sc.category != "unknown")),
            known(sc.sme.is_not(None)),
            known(sc.vcse.is_not(None)),
        )
        .select_from(cs)
        .join(c, c.id == cs.contract_id)
        .join(s, s.id == cs.supplier_id)
        .outerjoin(sc, sc.supplier_id == func.coalesce(s.merged_into_id, s.id))
        .where(c.status == m.ContractStatus.ACTIVE.value, c.currency == "GBP", share.is_not(None))
    )
    total, category, sme, vcse = (await session.execute(query)).one()
    return Coverage(int(total), int(category), int(sme), int(vcse))


def coverage_change(before: Coverage, after: Coverage) -> str:
    return (
        f"value with known status: {before.share(before.category_known_pence)} -> "
        f"{after.share(after.category_known_pence)} (SME known {before.share(before.sme_known_pence)} -> "
        f"{after.share(after.sme_known_pence)}, VCSE known {before.share(before.vcse_known_pence)} -> "
        f"{after.share(after.vcse_known_pence)})"
    )


# ---------------------------------------------------------------------------------------------------------------
# Loading (the file work happens before any database work)


def load_files(name: str, paths: Sequence[Path], version: str | None = None) -> LoadSummary:
    kind = REGISTER_NAMES.get(name)
    if kind is None:
        raise DomainError(f"unknown register {name!r}; use one of {', '.join(REGISTER_NAMES)}")
    if version is not None:
        try:
            version = dt.date.fromisoformat(version.strip()).isoformat()
        except ValueError:
            raise DomainError(f"--version {version!r} is not a date; give the download date, e.g. 2025-11-03") from None
    try:
        return load_register(kind, paths, store_dir(), version=version)  # type: ignore[arg-type]
    except RegisterError as exc:
        raise DomainError(str(exc)) from None


async def record_load(session: AsyncSession, summary: LoadSummary) -> None:
    await record_versions(session, {summary.kind: summary})
    await record_audit(
        session,
        actor=None,
        action="register.load",
        entity_type="register",
        entity_id=summary.kind,
        changes={"version": (None, summary.version), "rows": (None, summary.rows)},
        reason=f"loaded from {', '.join(s['name'] for s in summary.sources)}",
        actor_name="localvalue registers load",
    )


# ---------------------------------------------------------------------------------------------------------------
# Review: candidates by value at stake, and reviewers' decisions


def value_at_stake(anchor_id: int | None) -> Any:
    """(supplier id, pence) of the active GBP value per effective supplier (for one anchor's contracts)."""
    c, cs, s = m.Contract, m.ContractSupplier, m.Supplier
    owner = func.coalesce(s.merged_into_id, s.id)
    query = (
        select(owner.label("supplier_id"), func.coalesce(func.sum(cs.share_pence), 0).label("pence"))
        .select_from(cs)
        .join(c, c.id == cs.contract_id)
        .join(s, s.id == cs.supplier_id)
        .where(c.status == m.ContractStatus.ACTIVE.value, c.currency == "GBP")
        .group_by(owner)
    )
    if anchor_id is not None:
        query = query.where(c.buyer_id == anchor_id)
    return query.subquery()


async def review_candidates(
    session: AsyncSession, anchor_id: int | None, limit: int, offset: int
) -> tuple[list[tuple[m.SupplierRegisterMatch, str, int]], int]:
    """Suppliers whose candidates wait for a reviewer, largest value at stake first."""
    if anchor_id is not None and await session.get(m.Organisation, anchor_id) is None:
        raise NotFound(f"No organisation {anchor_id}.")
    stake = value_at_stake(anchor_id)
    sm, s = m.SupplierRegisterMatch, m.Supplier
    pence = func.coalesce(stake.c.pence, 0)
    base = (
        select(sm, s.name, pence.label("pence"))
        .join(s, s.id == sm.supplier_id)
        .where(sm.status == "review", s.merged_into_id.is_(None))
    )
    if anchor_id is not None:
        base = base.join(stake, stake.c.supplier_id == sm.supplier_id)
    else:
        base = base.outerjoin(stake, stake.c.supplier_id == sm.supplier_id)
    total = int((await session.execute(select(func.count()).select_from(base.subquery()))).scalar_one())
    rows = (await session.execute(base.order_by(pence.desc(), sm.supplier_id).limit(limit).offset(offset))).all()
    return [(r[0], r[1], int(r[2])) for r in rows], total


async def decide(
    session: AsyncSession, supplier_id: int, actor: Principal, *, decision: str, register: str, number: str, reason: str
) -> m.RegisterMatchDecision:
    """Record a reviewer's confirm or reject of one entry (audited); it supersedes their earlier word on it."""
    supplier = await session.get(m.Supplier, supplier_id)
    if supplier is None:
        raise NotFound(f"No supplier {supplier_id}.")
    if supplier.merged_into_id is not None:
        raise DomainError(f"Supplier {supplier_id} is merged into {supplier.merged_into_id}; decide on that one.")
    if len(reason.strip()) < MIN_REASON:
        raise DomainError(f"A decision needs a reason of at least {MIN_REASON} characters.")
    # A register match sets a shared supplier's status, so it moves every figure that supplier feeds.
    beyond = [o for o in await affected_organisations(session, [supplier_id]) if not actor.may_act_for(o)]
    if beyond:
        raise Forbidden(
            f"Supplier {supplier_id} feeds the figures of organisations you do not review (ids "
            f"{', '.join(map(str, beyond))}); ask a cross-organisation reviewer or an admin to decide."
        )
    kind = REGISTER_NAMES.get(register, register)
    if kind not in CLI_NAME:
        raise DomainError(f"register must be one of {', '.join(REGISTER_NAMES)} (e.g. companies-house)")
    number = number.strip().upper()
    if decision == "confirmed":
        index, _ = await asyncio.to_thread(register_index, store_dir())
        if index.lookup(kind, number) is None:
            raise DomainError(f"{CLI_NAME[kind]} has no entry {number!r} in the loaded register")
    d = m.RegisterMatchDecision
    now = clock.now()
    earlier = (await session.scalars(select(d).where(d.supplier_id == supplier_id, d.superseded_at.is_(None)))).all()
    for old in earlier:
        # A confirmation replaces any earlier one; a decision on the same entry replaces the earlier word on it.
        if (old.register, old.number) == (kind, number) or (decision == "confirmed" == old.decision):
            old.superseded_at = now
    row = m.RegisterMatchDecision(
        supplier_id=supplier_id,
        decision=decision,
        register=kind,
        number=number,
        reason=reason.strip(),
        decided_by=actor.name,
        decided_at=now,
    )
    session.add(row)
    await session.flush()
    await record_audit(
        session,
        actor=actor,
        action=f"supplier.register_match_{decision}",
        entity_type="supplier",
        entity_id=supplier_id,
        changes={"register_entry": (None, f"{kind}:{number}"), "decision_id": (None, row.id)},
        reason=row.reason,
    )
    return row


async def current_match(session: AsyncSession, supplier_id: int) -> m.SupplierRegisterMatch | None:
    sm = m.SupplierRegisterMatch
    return (await session.scalars(select(sm).where(sm.supplier_id == supplier_id))).first()


async def decisions_for(session: AsyncSession, supplier_id: int) -> list[m.RegisterMatchDecision]:
    d = m.RegisterMatchDecision
    return list((await session.scalars(select(d).where(d.supplier_id == supplier_id).order_by(d.id))).all())
