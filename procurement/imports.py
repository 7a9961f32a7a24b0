"""The import service: raw releases in, contracts, suppliers and supplier shares out, with runs and notes.

Data flow per batch (one feed page, or up to 2,000 releases of a file), all in ONE transaction together with
the run's counts and checkpoint, so a killed run loses at most the batch in flight:

1. ``importers.prepare`` hashes every release (canonical JSON) and compiles every ocid of the batch from
   the batch alone - for large files in a child process, one batch ahead;
2. every release is compared with the latest stored version of its (source, release id):
   same hash -> unchanged, different -> a new version, absent -> new (the raw archive);
3. every ocid touched by a new or changed release is taken as compiled in step 1 if that was done from
   exactly its latest stored releases, else compiled here from the archive (releases of one ocid that
   arrived in different batches or runs), in date order, and mapped to buyer, awards and parties;
4. buyers become organisations, supplier parties become master suppliers (recorded in SupplierMatch),
   awards become contracts with CPV codes and supplier shares - each written only where a value differs.

Idempotency: step 2 writes nothing for an unchanged release, and step 3 only runs for ocids that got a
new version, so re-importing the same data writes no domain rows at all. When an ocid is compiled again,
every upsert compares the stored values first and writes only real differences, so contracts, values,
dates and shares depend on the set of latest release versions, not on how many times or in how many
pieces they arrived. One thing does depend on arrival order: a new master supplier takes the name of the
first party matched to it, and its declared values are the latest seen (tests compare runs batch for batch).

Fast path: plain-tuple bulk inserts and IN-list selects per batch; lookups of identifiers and names are
cached for the run (the caches are dropped when a batch rolls back, since they may name rows that were undone).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import itertools
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import (
    ColumnElement,
    Table,
    bindparam,
    delete,
    func,
    insert,
    schema,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from importers.http import Checkpoint, FeedError, Page, RetryPolicy
from importers.ocds import (
    ERROR,
    INFO,
    WARNING,
    AwardRecord,
    Note,
    PartyRecord,
    Procurement,
)
from importers.prepare import CompiledOcid, FileBatches, PreparedBatch, PreparedRelease, compile_ocid, prepare_batch
from procurement import models as m
from procurement.money import ISO_4217, split_evenly, to_pence
from procurement.services import record_audit
from socialvalue.identifiers import is_stable_identity

CONTRACTS_FINDER = m.ContractSource.CONTRACTS_FINDER.value
FIND_A_TENDER = m.ContractSource.FIND_A_TENDER.value
FEED_SOURCES = (CONTRACTS_FINDER, FIND_A_TENDER)
# Releases per file batch (one transaction). Larger batches write each hot index page once for more rows:
# at 2,000 an import writes about half the bytes it writes at 1,000, and both processes together stay under 400 MB.
FILE_BATCH = 2000
_IN_CHUNK = 500  # IN-list size: well under SQLite's bound-parameter limit

RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
INTERRUPTED = "interrupted"


async def _bulk_insert(
    session: AsyncSession, model: type[Any], rows: Sequence[Mapping[str, Any]], *, json_text: str | None = None
) -> None:
    """One executemany INSERT of rows that all carry the same keys, sent to the driver as plain tuples.

    Core's executemany builds, keys and type-processes a parameter dict per row (about a fifth of an import's
    time); here each column's bind processor is looked up once per call. Python-side column defaults are
    filled in the same way; ids the rows do not carry come from the database. ``json_text`` names a JSON
    column whose values are already JSON text (the raw archive hands over the canonical text it hashed, so
    every number stays exactly as received): it is cast to jsonb on PostgreSQL and stored as is on SQLite.
    """
    if not rows:
        return
    table = _table(model)
    connection = await session.connection()
    dialect = connection.dialect
    names = list(rows[0])
    defaults = {
        c.name: c.default.arg if c.default.is_scalar else c.default.arg(None)  # type: ignore[attr-defined]
        for c in table.columns
        if c.name not in names and c.default is not None and not isinstance(c.default, schema.Sequence)
    }
    columns = [*names, *defaults]
    processors = [
        None if name == json_text else table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        for name in columns
    ]
    if dialect.name == "postgresql":
        marks = [f"${i}::jsonb" if name == json_text else f"${i}" for i, name in enumerate(columns, start=1)]
    else:
        marks = ["?"] * len(columns)
    quote = dialect.identifier_preparer.quote
    into = f"{quote(table.name)} ({', '.join(quote(c) for c in columns)})"
    statement = f"INSERT INTO {into} VALUES ({', '.join(marks)})"  # noqa: S608
    # Defaults are the same for every row (timestamps: the batch's time), so they are processed once.
    fixed = [
        value if process is None else process(value)
        for value, process in zip(defaults.values(), processors[len(names) :], strict=True)
    ]
    processed = [(i, process) for i, process in enumerate(processors[: len(names)]) if process is not None]
    values: list[tuple[Any, ...]] = []
    for row in rows:
        item = [row[name] for name in names]
        item.extend(fixed)
        for i, process in processed:
            item[i] = process(item[i])
        values.append(tuple(item))
    await connection.exec_driver_sql(statement, values)


def _table(model: type[Any]) -> Table:
    """The Core table: executemany through Core skips the ORM's per-row bookkeeping (several times faster)."""
    table: Table = model.__table__
    return table


async def _update_by_id(session: AsyncSession, model: type[Any], rows: Sequence[dict[str, Any]]) -> None:
    """One executemany UPDATE ... WHERE id = ? for rows that all carry the same keys."""
    table = _table(model)
    keys = [k for k in rows[0] if k != "id"]
    statement = update(table).where(table.c.id == bindparam("row_id")).values({k: bindparam(f"v_{k}") for k in keys})
    await session.execute(statement, [{"row_id": r["id"], **{f"v_{k}": r[k] for k in keys}} for r in rows])


async def _allocate_ids(session: AsyncSession, model: type[Any], count: int) -> list[int]:
    """Ids for a bulk insert, so one executemany needs no RETURNING (SQLite would send it row by row).

    PostgreSQL takes them from the table's sequence. SQLite continues after the largest id: safe because
    every batch writes raw releases first, so this transaction already holds SQLite's single write lock.
    """
    table = _table(model)
    if session.get_bind().dialect.name == "postgresql":
        rows = await session.execute(
            text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :count)"),
            {"table": table.name, "count": count},
        )
        return [int(r[0]) for r in rows]
    start = (await session.execute(select(func.coalesce(func.max(table.c.id), 0)))).scalar_one()
    return list(range(int(start) + 1, int(start) + count + 1))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _chunks(values: Sequence[Any], size: int = _IN_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _cut(text: str | None, limit: int) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class Counts:
    """What a run (or one batch) did.

    fetched: release objects received; new / changed / unchanged: stored releases by outcome;
    skipped: releases that could not be stored (no ocid or id, not an object) - each has a note;
    failed: pages that could not be read and ocids that could not be compiled - each has a note.
    """

    fetched: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    pages: int = 0

    def add(self, other: Counts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def summary(self) -> str:
        return (
            f"new {self.new}, changed {self.changed}, unchanged {self.unchanged}, "
            f"skipped {self.skipped}, failed {self.failed}"
        )


@dataclass(frozen=True)
class RunResult:
    run_id: int
    status: str
    counts: Counts
    error: str | None = None


@dataclass
class _Caches:
    """Run-level lookups; values may be provisional (negative) ids while a batch resolves new rows."""

    org_by_ident: dict[tuple[str, str], int] = field(default_factory=dict)
    org_by_name: dict[str, int | None] = field(default_factory=dict)
    supplier_by_ident: dict[tuple[str, str], int | None] = field(default_factory=dict)
    suppliers_by_name: dict[str, list[int]] = field(default_factory=dict)
    supplier_schemes: dict[int, set[str]] = field(default_factory=dict)


class ImportService:
    """Runs, batches and their transactions. One instance per run (its caches belong to the run)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession] | AsyncEngine, source: str) -> None:
        self.sessions = (
            async_sessionmaker(sessions, expire_on_commit=False) if isinstance(sessions, AsyncEngine) else sessions
        )
        self.source = source
        self.caches = _Caches()
        self._provisional = itertools.count(-1, -1)
        self._pending_audits: list[tuple[int, str, str]] = []

    # runs ------------------------------------------------------------------------------------------------------

    async def start_run(self, kind: str, parameters: dict[str, Any], resumed_from_id: int | None = None) -> int:
        async with self.sessions() as session, session.begin():
            run = m.ImportRun(
                source=self.source,
                kind=kind,
                parameters=parameters,
                status=RUNNING,
                started_at=_now(),
                resumed_from_id=resumed_from_id,
            )
            session.add(run)
            if resumed_from_id is not None:
                # The old run stopped without finishing (killed, or failed); it is superseded, not completed.
                await session.execute(
                    update(m.ImportRun)
                    .where(m.ImportRun.id == resumed_from_id, m.ImportRun.status.in_((RUNNING, FAILED)))
                    .values(status=INTERRUPTED)
                )
            await session.flush()
            return run.id

    async def finish_run(self, run_id: int, status: str, error: str | None = None) -> Counts:
        async with self.sessions() as session, session.begin():
            run = await session.get_one(m.ImportRun, run_id)
            run.status = status
            run.finished_at = _now()
            run.error = _cut(error, 5000)
            if status == COMPLETED:
                run.checkpoint = None
            counts = Counts(run.fetched, run.new, run.changed, run.unchanged, run.skipped, run.failed, run.pages)
            await record_audit(
                session,
                actor=None,
                actor_name="import",
                action=f"import.{status}",
                entity_type="import_run",
                entity_id=run_id,
                changes={f.name: (None, getattr(counts, f.name)) for f in fields(counts)},
                reason=run.error,
            )
            return counts

    # one batch -------------------------------------------------------------------------------------------------

    async def store_batch(
        self,
        run_id: int,
        batch: PreparedBatch,
        *,
        checkpoint: dict[str, Any] | None = None,
        pages: int = 0,
        watermark: dt.datetime | None = None,
    ) -> Counts:
        """Store a prepared batch and everything derived from it, plus the run's counts and checkpoint, atomically.

        ``checkpoint`` is where a resumed run continues once this batch is committed.
        """
        try:
            async with self.sessions() as session, session.begin():
                counts = Counts(
                    fetched=len(batch.releases) + batch.skipped,
                    skipped=batch.skipped,
                    pages=pages,
                    failed=batch.failed,
                )
                dialect = session.get_bind().dialect.name
                if dialect == "postgresql":
                    # asyncpg keeps prepared statements; a generic plan made while the tables were nearly empty
                    # (sequential scans) would otherwise be reused as they grow, slowing every batch.
                    await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
                elif dialect == "sqlite":
                    # SQLite's default page cache (2 MB) is far smaller than the indexes a bulk import probes.
                    await session.execute(text("PRAGMA cache_size = -65536"))
                all_notes = list(batch.notes)
                touched = await self._store_raw(session, run_id, batch.releases, counts)
                await self._derive(session, batch, touched, counts, all_notes)
                await self._insert_notes(session, run_id, all_notes)
                await self._update_run(session, run_id, counts, checkpoint)
                if watermark is not None:
                    await self._advance_watermark(session, watermark)
                return counts
        except BaseException:
            self.caches = _Caches()
            self._pending_audits.clear()
            raise

    async def _store_raw(
        self, session: AsyncSession, run_id: int, releases: Sequence[PreparedRelease], counts: Counts
    ) -> dict[str, PreparedRelease]:
        """The raw archive: insert what is new or changed; returns the latest version of touched releases.

        Idempotent by construction: a release whose hash equals its latest stored version writes nothing.
        Content that returns to an earlier version's hash (A -> B -> A) cannot be inserted twice (unique
        on hash); that old row is promoted to the newest version number instead.
        """
        release_ids = sorted({r.release_id for r in releases})
        versions: dict[str, dict[str, int]] = {}  # release id -> {hash: version}
        for chunk in _chunks(release_ids):
            rows = await session.execute(
                select(m.RawRelease.release_id, m.RawRelease.content_hash, m.RawRelease.version).where(
                    m.RawRelease.source == self.source, m.RawRelease.release_id.in_(chunk)
                )
            )
            for rid, content_hash, version in rows:
                versions.setdefault(rid, {})[content_hash] = version
        now = _now()
        inserts: list[dict[str, Any]] = []
        touched: dict[str, PreparedRelease] = {}
        for release in releases:
            rid, content_hash = release.release_id, release.content_hash
            known = versions.setdefault(rid, {})
            latest = max(known.values(), default=0)
            if known.get(content_hash) == latest and latest:
                counts.unchanged += 1
                continue
            if content_hash in known:
                await session.execute(
                    update(m.RawRelease)
                    .where(
                        m.RawRelease.source == self.source,
                        m.RawRelease.release_id == rid,
                        m.RawRelease.content_hash == content_hash,
                    )
                    .values(version=latest + 1, run_id=run_id, received_at=now)
                )
                counts.changed += 1
            else:
                inserts.append(
                    {
                        "source": self.source,
                        "ocid": release.ocid,
                        "release_id": rid,
                        "version": latest + 1,
                        "release_date": release.release_date,
                        "content_hash": content_hash,
                        "data": release.data.decode("utf-8"),
                        "run_id": run_id,
                        "received_at": now,
                    }
                )
                if latest:
                    counts.changed += 1
                else:
                    counts.new += 1
            known[content_hash] = latest + 1
            touched[rid] = release
        await _bulk_insert(session, m.RawRelease, inserts, json_text="data")
        return touched

    async def _latest_versions(
        self, session: AsyncSession, ocids: Sequence[str]
    ) -> dict[str, dict[str, tuple[int, str, dt.datetime | None]]]:
        """ocid -> release id -> (version, content hash, release date) of the latest stored version."""
        latest: dict[str, dict[str, tuple[int, str, dt.datetime | None]]] = {o: {} for o in ocids}
        for chunk in _chunks(ocids):
            rows = await session.execute(
                select(
                    m.RawRelease.ocid,
                    m.RawRelease.release_id,
                    m.RawRelease.version,
                    m.RawRelease.content_hash,
                    m.RawRelease.release_date,
                ).where(m.RawRelease.source == self.source, m.RawRelease.ocid.in_(chunk))
            )
            for ocid, rid, version, content_hash, release_date in rows:
                known = latest[ocid].get(rid)
                if known is None or version > known[0]:
                    latest[ocid][rid] = (version, content_hash, release_date)
        return latest

    async def _compile_here(
        self,
        session: AsyncSession,
        latest: Mapping[str, dict[str, tuple[int, str, dt.datetime | None]]],
        touched: Mapping[str, PreparedRelease],
    ) -> dict[str, CompiledOcid]:
        """Compile ocids whose latest releases are not exactly the ones their batch was compiled from."""
        releases: dict[str, list[tuple[Mapping[str, Any], bool]]] = {o: [] for o in latest}
        missing: list[tuple[str, int]] = []
        for ocid, versions in latest.items():
            for rid, (version, content_hash, _) in versions.items():
                here = touched.get(rid)
                if here is not None and here.ocid == ocid and here.content_hash == content_hash:
                    releases[ocid].append((here.release(), here.null_free))
                else:
                    missing.append((rid, version))
        for chunk in _chunks(sorted(missing)):
            rows = await session.execute(
                select(m.RawRelease.ocid, m.RawRelease.data).where(
                    m.RawRelease.source == self.source,
                    tuple_(m.RawRelease.release_id, m.RawRelease.version).in_(list(chunk)),
                )
            )
            for ocid, data in rows:
                if ocid in releases:
                    releases[ocid].append((data, False))
        compiled: dict[str, CompiledOcid] = {}
        for ocid, versions in latest.items():
            procurement, notes = compile_ocid(self.source, ocid, releases[ocid])
            compiled[ocid] = CompiledOcid(
                basis=frozenset((rid, h) for rid, (_, h, _) in versions.items()),
                procurement=procurement,
                notes=tuple(notes),
                last_date=max((d for _, _, d in versions.values() if d is not None), default=None),
            )
        return compiled

    async def _derive(
        self,
        session: AsyncSession,
        batch: PreparedBatch,
        touched: dict[str, PreparedRelease],
        counts: Counts,
        notes: list[Note],
    ) -> None:
        if not touched:
            return
        latest = await self._latest_versions(session, sorted({r.ocid for r in touched.values()}))
        compiled: dict[str, CompiledOcid] = {}
        stale: dict[str, dict[str, tuple[int, str, dt.datetime | None]]] = {}
        for ocid, versions in latest.items():
            ready = batch.compiled.get(ocid)
            if ready is not None and ready.basis == {(rid, h) for rid, (_, h, _) in versions.items()}:
                compiled[ocid] = ready
            elif versions:
                stale[ocid] = versions
        compiled.update(await self._compile_here(session, stale, touched))
        procurements: list[tuple[Procurement, dt.datetime | None]] = []
        for ocid in sorted(compiled):
            result = compiled[ocid]
            notes.extend(result.notes)
            if result.procurement is None:
                counts.failed += 1
                continue
            procurements.append((result.procurement, result.last_date))
        buyers = await self._resolve_buyers(session, [p for p, _ in procurements], notes)
        suppliers = await self._resolve_suppliers(session, [p for p, _ in procurements], notes)
        await self._upsert_contracts(session, procurements, buyers, suppliers, notes)
        await self._audit_new_organisations(session)

    # buyers ----------------------------------------------------------------------------------------------------

    @staticmethod
    def _stable(identifiers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(s, v) for s, v in identifiers if is_stable_identity(s) and len(s) <= 32 and len(v) <= 128]

    async def _resolve_buyers(
        self, session: AsyncSession, procurements: Sequence[Procurement], notes: list[Note]
    ) -> dict[str, int]:
        """ocid -> organisation id. Matched by a register identifier, then by normalised name (anchors first),
        else a new organisation of kind "other". Idempotent: the same buyer always resolves to the same row."""
        caches = self.caches
        buyers = [(p.ocid, p.buyer) for p in procurements if p.buyer is not None]
        want_idents = {i for _, b in buyers for i in self._stable(b.identifiers)} - caches.org_by_ident.keys()
        for chunk in _chunks(sorted(want_idents)):
            rows = await session.execute(
                select(
                    m.OrganisationIdentifier.scheme,
                    m.OrganisationIdentifier.value,
                    m.OrganisationIdentifier.organisation_id,
                ).where(tuple_(m.OrganisationIdentifier.scheme, m.OrganisationIdentifier.value).in_(list(chunk)))
            )
            for scheme, value, org_id in rows:
                caches.org_by_ident[(scheme, value)] = org_id
        want_names = {b.name_key for _, b in buyers if b.name_key} - caches.org_by_name.keys()
        for chunk in _chunks(sorted(want_names)):
            rows = await session.execute(
                select(m.Organisation.name_key, m.Organisation.id)
                .where(m.Organisation.name_key.in_(chunk))
                .order_by(m.Organisation.is_anchor.desc(), m.Organisation.id)
            )
            for key, org_id in rows:
                caches.org_by_name.setdefault(key, org_id)
        resolved: dict[str, int] = {}
        for ocid, buyer in buyers:
            idents = self._stable(buyer.identifiers)
            org_id = next((caches.org_by_ident[i] for i in idents if i in caches.org_by_ident), None)
            if org_id is None and buyer.name_key:
                org_id = caches.org_by_name.get(buyer.name_key)
            if org_id is None:
                if not buyer.name:
                    notes.append(Note(ERROR, "buyer without name or known identifier; awards not imported", ocid))
                    continue
                org_id = await self._create_organisation(session, buyer, ocid)
            for ident in idents:
                if ident not in caches.org_by_ident:
                    # Learn the identifier, so the next notice matches on it even if the name is spelt differently.
                    await session.execute(
                        insert(m.OrganisationIdentifier).values(organisation_id=org_id, scheme=ident[0], value=ident[1])
                    )
                    caches.org_by_ident[ident] = org_id
            if buyer.name_key:
                caches.org_by_name.setdefault(buyer.name_key, org_id)
            resolved[ocid] = org_id
        return resolved

    async def _create_organisation(self, session: AsyncSession, buyer: PartyRecord, ocid: str) -> int:
        name = _cut(buyer.name, 300) or buyer.party_id
        org_id: int = (
            await session.execute(
                insert(m.Organisation)
                .values(
                    name=name,
                    kind=m.OrganisationKind.OTHER.value,
                    address=_cut(buyer.street_address, 500),
                    postcode=buyer.postcode,
                    is_anchor=False,
                    name_key=_cut(buyer.name_key, 300) or "",
                )
                .returning(m.Organisation.id)
            )
        ).scalar_one()
        self._pending_audits.append((org_id, name, ocid))
        return org_id

    async def _audit_new_organisations(self, session: AsyncSession) -> None:
        # Added after the batch's lookups: an ORM add before them would force a flush per organisation.
        for org_id, name, ocid in self._pending_audits:
            await record_audit(
                session,
                actor=None,
                actor_name="import",
                action="organisation.import",
                entity_type="organisation",
                entity_id=org_id,
                organisation_id=org_id,
                changes={"name": (None, name)},
                reason=f"buyer of {ocid} ({self.source})",
            )
        self._pending_audits.clear()

    # suppliers -------------------------------------------------------------------------------------------------

    async def _resolve_suppliers(
        self, session: AsyncSession, procurements: Sequence[Procurement], notes: list[Note]
    ) -> dict[tuple[str, str], int]:
        """(ocid, party id) -> supplier id, recorded in SupplierMatch.

        A party keeps the supplier it was first matched to (GB-CFS party ids are per notice, so the match
        is keyed by ocid as well). New parties match on a stable register identifier, else on a normalised
        name with exactly one candidate, else become a new supplier; the method is recorded. Declared scale,
        VCSE, address and postcode are kept on the match as the supplier's own evidence.
        """
        parties: list[tuple[str, PartyRecord]] = []
        for p in procurements:
            seen: set[str] = set()
            for award in p.awards:
                for party_id in award.supplier_party_ids:
                    if party_id not in seen and party_id in p.parties:
                        seen.add(party_id)
                        parties.append((p.ocid, p.parties[party_id]))
        if not parties:
            return {}
        existing = await self._existing_matches(session, sorted({o for o, _ in parties}))
        fresh = [(o, p) for o, p in parties if (o, p.party_id) not in existing]
        await self._prefetch_suppliers(session, fresh)
        resolved: dict[tuple[str, str], int] = {k: r.supplier_id for k, r in existing.items()}
        new_matches, new_suppliers, attach = self._assign(fresh, resolved, notes)
        latest = self._latest_values(parties, resolved)
        real_ids = await self._insert_suppliers(session, new_suppliers, latest)
        if real_ids:
            resolved = {k: real_ids.get(v, v) for k, v in resolved.items()}
            for match in new_matches:
                match["supplier_id"] = real_ids.get(match["supplier_id"], match["supplier_id"])
            attach = [(real_ids.get(s, s), i) for s, i in attach]
        if attach:
            await _bulk_insert(
                session, m.SupplierIdentifier, [{"supplier_id": s, "scheme": i[0], "value": i[1]} for s, i in attach]
            )
        await _bulk_insert(session, m.SupplierMatch, new_matches)
        await self._update_matches(session, parties, existing)
        await self._update_suppliers(session, {k: v for k, v in latest.items() if k not in real_ids})
        return resolved

    async def _existing_matches(self, session: AsyncSession, ocids: Sequence[str]) -> dict[tuple[str, str], Any]:
        existing: dict[tuple[str, str], Any] = {}
        for chunk in _chunks(ocids):
            rows = await session.execute(
                select(
                    m.SupplierMatch.id,
                    m.SupplierMatch.ocid,
                    m.SupplierMatch.party_id,
                    m.SupplierMatch.supplier_id,
                    m.SupplierMatch.party_name,
                    m.SupplierMatch.declared_scale,
                    m.SupplierMatch.declared_vcse,
                    m.SupplierMatch.street_address,
                    m.SupplierMatch.postcode,
                ).where(m.SupplierMatch.source == self.source, m.SupplierMatch.ocid.in_(chunk))
            )
            for match in rows:
                existing[(match.ocid, match.party_id)] = match
        return existing

    def _assign(
        self, fresh: Sequence[tuple[str, PartyRecord]], resolved: dict[tuple[str, str], int], notes: list[Note]
    ) -> tuple[list[dict[str, Any]], dict[int, dict[str, Any]], list[tuple[int, tuple[str, str]]]]:
        """Match parties seen for the first time, in order; new suppliers get provisional (negative) ids so a
        second party with the same name or identifier in this batch finds the first."""
        caches = self.caches
        new_matches: list[dict[str, Any]] = []
        new_suppliers: dict[int, dict[str, Any]] = {}
        attach: list[tuple[int, tuple[str, str]]] = []
        for ocid, party in fresh:
            supplier_id, method, evidence = self._match_supplier(party, attach)
            if supplier_id is None:
                supplier_id = next(self._provisional)
                if party.name is None:
                    notes.append(
                        Note(
                            WARNING,
                            "supplier without name; kept under its party id",
                            ocid,
                            path=f"parties[{party.party_id}]",
                        )
                    )
                name = party.name or f"(no name in feed: {party.party_id})"
                new_suppliers[supplier_id] = {"name": _cut(name, 500), "name_key": _cut(party.name_key, 500) or ""}
                idents = self._stable(party.identifiers)
                for ident in idents:
                    caches.supplier_by_ident[ident] = supplier_id
                    attach.append((supplier_id, ident))
                caches.supplier_schemes[supplier_id] = {s for s, _ in idents}
                if party.name_key:
                    caches.suppliers_by_name.setdefault(party.name_key, []).append(supplier_id)
            resolved[(ocid, party.party_id)] = supplier_id
            new_matches.append(
                {
                    "source": self.source,
                    "ocid": ocid,
                    "party_id": party.party_id,
                    "supplier_id": supplier_id,
                    "method": method,
                    "evidence": evidence,
                    **self._declared(party),
                }
            )
        return new_matches, new_suppliers, attach

    def _latest_values(
        self, parties: Sequence[tuple[str, PartyRecord]], resolved: dict[tuple[str, str], int]
    ) -> dict[int, dict[str, Any]]:
        """Latest declared values per supplier, in processing order; a party that declares nothing changes nothing."""
        latest: dict[int, dict[str, Any]] = {}
        for ocid, party in parties:
            values = latest.setdefault(resolved[(ocid, party.party_id)], {})
            if party.declared_scale is not None or party.declared_vcse is not None:
                values["declared_scale"] = _cut(party.declared_scale, 16)
                values["declared_vcse"] = party.declared_vcse
                values["declared_source"] = _cut(f"{self.source} {ocid} {party.party_id} (parties[].details)", 500)
            if party.postcode is not None:
                values["postcode"] = party.postcode
                values["postcode_source"] = party.postcode_source
            if party.street_address is not None:
                values["street_address"] = _cut(party.street_address, 1000)
            if party.country is not None:
                values["country"] = _cut(party.country, 100)
        return latest

    def _declared(self, party: PartyRecord) -> dict[str, Any]:
        return {
            "party_name": _cut(party.name, 500),
            "declared_scale": _cut(party.declared_scale, 16),
            "declared_vcse": party.declared_vcse,
            "street_address": _cut(party.street_address, 1000),
            "postcode": party.postcode,
        }

    async def _prefetch_suppliers(self, session: AsyncSession, fresh: Sequence[tuple[str, PartyRecord]]) -> None:
        caches = self.caches
        idents = {i for _, p in fresh for i in self._stable(p.identifiers)} - caches.supplier_by_ident.keys()
        for chunk in _chunks(sorted(idents)):
            rows = await session.execute(
                select(m.SupplierIdentifier.scheme, m.SupplierIdentifier.value, m.SupplierIdentifier.supplier_id).where(
                    tuple_(m.SupplierIdentifier.scheme, m.SupplierIdentifier.value).in_(list(chunk))
                )
            )
            found = {(s, v): sid for s, v, sid in rows}
            for ident in chunk:
                caches.supplier_by_ident[ident] = found.get(ident)
        names = {p.name_key for _, p in fresh if p.name_key} - caches.suppliers_by_name.keys()
        candidates: set[int] = set()
        for chunk in _chunks(sorted(names)):
            rows = await session.execute(
                select(m.Supplier.name_key, m.Supplier.id)
                .where(m.Supplier.name_key.in_(chunk), m.Supplier.merged_into_id.is_(None))
                .order_by(m.Supplier.id)
            )
            for key in chunk:
                caches.suppliers_by_name.setdefault(key, [])
            for key, sid in rows:
                caches.suppliers_by_name[key].append(sid)
                candidates.add(sid)
        unknown = sorted(candidates - caches.supplier_schemes.keys())
        for sid in unknown:
            caches.supplier_schemes[sid] = set()
        for chunk in _chunks(unknown):
            rows = await session.execute(
                select(m.SupplierIdentifier.supplier_id, m.SupplierIdentifier.scheme).where(
                    m.SupplierIdentifier.supplier_id.in_(chunk)
                )
            )
            for sid, scheme in rows:
                caches.supplier_schemes[sid].add(scheme)

    def _match_supplier(
        self, party: PartyRecord, attach: list[tuple[int, tuple[str, str]]]
    ) -> tuple[int | None, str, str | None]:
        caches = self.caches
        idents = self._stable(party.identifiers)
        for ident in idents:
            supplier_id = caches.supplier_by_ident.get(ident)
            if supplier_id is not None:
                return supplier_id, "identifier", f"{ident[0]} {ident[1]}"
        if not party.name_key:
            return None, "new", None
        schemes = {s for s, _ in idents}
        # A candidate already registered under another number of the same scheme is a different organisation.
        candidates = [
            sid
            for sid in caches.suppliers_by_name.get(party.name_key, [])
            if not (schemes & caches.supplier_schemes.get(sid, set()))
        ]
        if len(candidates) != 1:
            return None, "new", None
        supplier_id = candidates[0]
        for ident in idents:
            caches.supplier_by_ident[ident] = supplier_id
            caches.supplier_schemes.setdefault(supplier_id, set()).add(ident[0])
            attach.append((supplier_id, ident))
        return supplier_id, "name", _cut(f"normalised name {party.name_key!r}", 500)

    async def _insert_suppliers(
        self, session: AsyncSession, new_suppliers: dict[int, dict[str, Any]], latest: dict[int, dict[str, Any]]
    ) -> dict[int, int]:
        if not new_suppliers:
            return {}
        provisional = list(new_suppliers)
        rows = [{**new_suppliers[p], **latest.get(p, {})} for p in provisional]
        columns = ("street_address", "postcode", "postcode_source", "country", "declared_scale", "declared_vcse")
        for row in rows:
            for column in (*columns, "declared_source"):
                row.setdefault(column, None)
        ids = await _allocate_ids(session, m.Supplier, len(rows))
        for row, supplier_id in zip(rows, ids, strict=True):
            row["id"] = supplier_id
        await _bulk_insert(session, m.Supplier, rows)
        real = dict(zip(provisional, ids, strict=True))
        caches = self.caches
        for key, value in list(caches.supplier_by_ident.items()):
            if value is not None and value < 0:
                caches.supplier_by_ident[key] = real[value]
        for sids in caches.suppliers_by_name.values():
            sids[:] = [real.get(s, s) for s in sids]
        for p, sid in real.items():
            caches.supplier_schemes[sid] = caches.supplier_schemes.pop(p, set())
        return real

    async def _update_matches(
        self, session: AsyncSession, parties: Sequence[tuple[str, PartyRecord]], existing: dict[tuple[str, str], Any]
    ) -> None:
        updates = []
        for ocid, party in parties:
            row = existing.get((ocid, party.party_id))
            if row is None:
                continue
            declared = self._declared(party)
            if any(getattr(row, k) != v for k, v in declared.items()):
                updates.append({"id": row.id, **declared})
        if updates:
            await _update_by_id(session, m.SupplierMatch, updates)

    async def _update_suppliers(self, session: AsyncSession, latest: dict[int, dict[str, Any]]) -> None:
        """Copy the latest declared values, address and postcode to existing suppliers where they differ.

        A postcode an editor set by hand (postcode_source "manual") is never overwritten by a feed.
        """
        ids = sorted(k for k, v in latest.items() if v)
        updates: list[dict[str, Any]] = []
        now = _now()
        for chunk in _chunks(ids):
            rows = await session.execute(
                select(
                    m.Supplier.id,
                    m.Supplier.street_address,
                    m.Supplier.postcode,
                    m.Supplier.postcode_source,
                    m.Supplier.country,
                    m.Supplier.declared_scale,
                    m.Supplier.declared_vcse,
                    m.Supplier.declared_source,
                ).where(m.Supplier.id.in_(chunk))
            )
            for current in rows:
                wanted = dict(latest[current.id])
                if current.postcode_source == "manual":
                    for key in ("postcode", "postcode_source", "street_address", "country"):
                        wanted.pop(key, None)
                if (current.declared_scale, current.declared_vcse) == (
                    wanted.get("declared_scale", current.declared_scale),
                    wanted.get("declared_vcse", current.declared_vcse),
                ):
                    # Same declaration again: the source keeps naming the notice that first declared it.
                    wanted.pop("declared_source", None)
                changed = {k: v for k, v in wanted.items() if getattr(current, k) != v}
                if changed:
                    updates.append({"id": current.id, **changed, "updated_at": now})
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for values in updates:
            groups.setdefault(tuple(sorted(values)), []).append(values)
        for group in groups.values():
            await _update_by_id(session, m.Supplier, group)

    # contracts -------------------------------------------------------------------------------------------------

    def _contract_values(
        self, procurement: Procurement, award: AwardRecord, buyer_id: int, last: dt.datetime | None, notes: list[Note]
    ) -> dict[str, Any]:
        path = f"awards[{award.award_id}].value"
        value_pence: int | None = None
        currency = (award.currency or "GBP").upper()
        if currency not in ISO_4217:
            notes.append(
                Note(
                    WARNING,
                    "unknown currency; value not kept",
                    procurement.ocid,
                    path=f"{path}.currency",
                    value=award.currency,
                )
            )
            currency = "GBP"
        elif award.value_amount is not None:
            try:
                value_pence = to_pence(award.value_amount, field="award value")
            except ValueError as exc:
                notes.append(
                    Note(
                        WARNING,
                        f"{exc}; value not kept",
                        procurement.ocid,
                        path=f"{path}.amount",
                        value=str(award.value_amount),
                    )
                )
            if value_pence is not None and currency != "GBP":
                notes.append(
                    Note(
                        INFO,
                        f"value in {currency} kept and flagged non-GBP",
                        procurement.ocid,
                        path=path,
                        value=str(award.value_amount),
                    )
                )
        withdrawn = award.status == m.ContractStatus.WITHDRAWN.value
        return {
            "source": self.source,
            "source_id": procurement.ocid,
            "award_id": award.award_id,
            "buyer_id": buyer_id,
            "title": _cut(award.title, 500) or procurement.ocid,
            "description": award.description,
            "value_pence": value_pence,
            "currency": currency,
            "award_date": award.award_date,
            "start_date": award.start_date,
            "end_date": award.end_date,
            "status": award.status,
            "withdrawn_reason": (
                f"withdrawn or cancelled in {self.source} (tender status {procurement.tender_status})"
                if withdrawn
                else None
            ),
            # The release date, not the clock: a re-import of the same data gives the same row.
            "withdrawn_at": last if withdrawn else None,
        }

    @staticmethod
    def _shares(value_pence: int | None, supplier_ids: Sequence[int]) -> list[tuple[int, int | None, str, int]]:
        """(supplier id, share, basis, position). Feeds state value per award, so several suppliers split it."""
        if not supplier_ids:
            return []
        if value_pence is None:
            return [(s, None, "unknown", i) for i, s in enumerate(supplier_ids)]
        if len(supplier_ids) == 1:
            return [(supplier_ids[0], value_pence, "stated", 0)]
        parts = split_evenly(value_pence, len(supplier_ids))
        return [(s, p, "equal_split", i) for i, (s, p) in enumerate(zip(supplier_ids, parts, strict=True))]

    def _wanted_contracts(
        self,
        procurements: Sequence[tuple[Procurement, dt.datetime | None]],
        buyers: dict[str, int],
        suppliers: dict[tuple[str, str], int],
        notes: list[Note],
    ) -> tuple[
        dict[tuple[str, str], dict[str, Any]],
        dict[tuple[str, str], list[str]],
        dict[tuple[str, str], list[tuple[int, int | None, str, int]]],
    ]:
        wanted: dict[tuple[str, str], dict[str, Any]] = {}
        wanted_cpv: dict[tuple[str, str], list[str]] = {}
        wanted_shares: dict[tuple[str, str], list[tuple[int, int | None, str, int]]] = {}
        for procurement, last in procurements:
            buyer_id = buyers.get(procurement.ocid)
            if buyer_id is None:
                if procurement.awards:
                    notes.append(
                        Note(ERROR, "no usable buyer; awards of this procurement not imported", procurement.ocid)
                    )
                continue
            for award in procurement.awards:
                key = (procurement.ocid, award.award_id)
                values = self._contract_values(procurement, award, buyer_id, last, notes)
                wanted[key] = values
                wanted_cpv[key] = list(award.cpv_codes)
                supplier_ids = list(
                    dict.fromkeys(
                        suppliers[(procurement.ocid, p)]
                        for p in award.supplier_party_ids
                        if (procurement.ocid, p) in suppliers
                    )
                )
                wanted_shares[key] = self._shares(values["value_pence"], supplier_ids)
        return wanted, wanted_cpv, wanted_shares

    async def _upsert_contracts(
        self,
        session: AsyncSession,
        procurements: Sequence[tuple[Procurement, dt.datetime | None]],
        buyers: dict[str, int],
        suppliers: dict[tuple[str, str], int],
        notes: list[Note],
    ) -> None:
        """One contract per (source, ocid, award id). Amendments replace values; a withdrawn or cancelled
        award is marked withdrawn and kept. Only rows whose values differ are written."""
        wanted, wanted_cpv, wanted_shares = self._wanted_contracts(procurements, buyers, suppliers, notes)
        if not wanted:
            return
        columns = [getattr(m.Contract, c) for c in next(iter(wanted.values()))]
        existing: dict[tuple[str, str], Any] = {}
        for chunk in _chunks(sorted({k[0] for k in wanted})):
            rows = await session.execute(
                select(m.Contract.id, *columns).where(m.Contract.source == self.source, m.Contract.source_id.in_(chunk))
            )
            for row in rows:
                existing[(row.source_id, row.award_id)] = row
        ids = [r.id for r in existing.values()]
        old_cpv: dict[int, list[str]] = {i: [] for i in ids}
        old_shares: dict[int, list[tuple[int, int | None, str, int]]] = {i: [] for i in ids}
        for chunk in _chunks(ids):
            for cid, code in await session.execute(
                select(m.ContractCpv.contract_id, m.ContractCpv.code)
                .where(m.ContractCpv.contract_id.in_(chunk))
                .order_by(m.ContractCpv.contract_id, m.ContractCpv.position)
            ):
                old_cpv[cid].append(code)
            for cid, sid, share, basis, position in await session.execute(
                select(
                    m.ContractSupplier.contract_id,
                    m.ContractSupplier.supplier_id,
                    m.ContractSupplier.share_pence,
                    m.ContractSupplier.share_basis,
                    m.ContractSupplier.position,
                )
                .where(m.ContractSupplier.contract_id.in_(chunk))
                .order_by(m.ContractSupplier.contract_id, m.ContractSupplier.position)
            ):
                old_shares[cid].append((sid, share, basis, position))

        now = _now()
        new_keys = [k for k in wanted if k not in existing]
        contract_ids: dict[tuple[str, str], int] = {k: r.id for k, r in existing.items()}
        if new_keys:
            ids = await _allocate_ids(session, m.Contract, len(new_keys))
            await _bulk_insert(
                session, m.Contract, [{**wanted[k], "id": i} for k, i in zip(new_keys, ids, strict=True)]
            )
            contract_ids.update(zip(new_keys, ids, strict=True))
        updates = []
        for key, row in existing.items():
            if key not in wanted:
                continue
            if any(getattr(row, c) != v for c, v in wanted[key].items()):
                updates.append({"id": row.id, **wanted[key], "updated_at": now})
        if updates:
            await _update_by_id(session, m.Contract, updates)
        replace_cpv = [k for k in wanted if k not in existing or old_cpv[contract_ids[k]] != wanted_cpv[k]]
        replace_shares = [k for k in wanted if k not in existing or old_shares[contract_ids[k]] != wanted_shares[k]]
        await self._replace_children(
            session,
            m.ContractCpv,
            [contract_ids[k] for k in replace_cpv if k in existing],
            [
                {"contract_id": contract_ids[k], "code": c, "position": i}
                for k in replace_cpv
                for i, c in enumerate(wanted_cpv[k])
            ],
        )
        await self._replace_children(
            session,
            m.ContractSupplier,
            [contract_ids[k] for k in replace_shares if k in existing],
            [
                {"contract_id": contract_ids[k], "supplier_id": s, "share_pence": p, "share_basis": b, "position": i}
                for k in replace_shares
                for s, p, b, i in wanted_shares[k]
            ],
        )
        touched = [contract_ids[k] for k in set(replace_cpv) | set(replace_shares) if k in existing]
        touched = [i for i in touched if i not in {u["id"] for u in updates}]
        for chunk in _chunks(sorted(touched)):
            await session.execute(update(m.Contract).where(m.Contract.id.in_(chunk)).values(updated_at=now))

    @staticmethod
    async def _replace_children(
        session: AsyncSession,
        model: type[m.ContractCpv] | type[m.ContractSupplier],
        clear: Sequence[int],
        rows: list[dict[str, Any]],
    ) -> None:
        for chunk in _chunks(sorted(clear)):
            await session.execute(delete(model).where(model.contract_id.in_(chunk)))
        await _bulk_insert(session, model, rows)

    # notes, counts, watermark ----------------------------------------------------------------------------------

    async def _insert_notes(self, session: AsyncSession, run_id: int, notes: Sequence[Note]) -> None:
        if not notes:
            return
        now = _now()
        await _bulk_insert(
            session,
            m.ImportNote,
            [
                {
                    "run_id": run_id,
                    "level": n.level,
                    "ocid": _cut(n.ocid, 200),
                    "release_id": _cut(n.release_id, 250),
                    "path": _cut(n.path, 500),
                    "value": n.value,
                    "message": n.message,
                    "created_at": now,
                }
                for n in notes
            ],
        )

    async def _update_run(
        self, session: AsyncSession, run_id: int, counts: Counts, checkpoint: dict[str, Any] | None
    ) -> None:
        values: dict[str, Any] = {
            f.name: getattr(m.ImportRun, f.name) + getattr(counts, f.name) for f in fields(counts)
        }
        values["checkpoint"] = checkpoint
        await session.execute(update(m.ImportRun).where(m.ImportRun.id == run_id).values(**values))

    async def _advance_watermark(self, session: AsyncSession, watermark: dt.datetime) -> None:
        """Only forwards: re-importing an old range never moves `sync` back."""
        current = (
            await session.execute(select(m.FeedWatermark).where(m.FeedWatermark.source == self.source))
        ).scalar_one_or_none()
        if current is None:
            session.add(m.FeedWatermark(source=self.source, watermark=watermark, updated_at=_now()))
        elif current.watermark < watermark:
            current.watermark = watermark
            current.updated_at = _now()


# --------------------------------------------------------------------------------------------------------------
# Runs: feeds and files


def checkpoint_to_json(checkpoint: Checkpoint | None) -> dict[str, Any] | None:
    if checkpoint is None:
        return None
    return {
        "window_start": checkpoint.window_start.isoformat(),
        "window_end": checkpoint.window_end.isoformat(),
        "next_url": checkpoint.next_url,
    }


def checkpoint_from_json(data: Mapping[str, Any] | None) -> Checkpoint | None:
    if not data or "window_start" not in data:
        return None
    return Checkpoint(
        dt.datetime.fromisoformat(data["window_start"]),
        dt.datetime.fromisoformat(data["window_end"]),
        data.get("next_url"),
    )


def _is_release_skip(note: Note) -> bool:
    return note.message.startswith(("release without", "release is a JSON"))


def _is_page_failure(note: Note) -> bool:
    return note.level == ERROR and note.message.startswith("page could not be read")


@dataclass(frozen=True)
class FeedParameters:
    start: dt.datetime
    end: dt.datetime
    window: dt.timedelta
    base_url: str

    def as_json(self) -> dict[str, Any]:
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "window_seconds": int(self.window.total_seconds()),
            "base_url": self.base_url,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FeedParameters:
        return cls(
            dt.datetime.fromisoformat(data["from"]),
            dt.datetime.fromisoformat(data["to"]),
            dt.timedelta(seconds=int(data["window_seconds"])),
            str(data["base_url"]),
        )


PageListener = Callable[[Page, Counts], None]


def _pages(
    source: str, client: httpx.AsyncClient, params: FeedParameters, resume: Checkpoint | None, policy: RetryPolicy
) -> AsyncIterator[Page]:
    from importers.contracts_finder import iter_contracts_finder
    from importers.find_a_tender import iter_find_a_tender

    iterate = iter_contracts_finder if source == CONTRACTS_FINDER else iter_find_a_tender
    return iterate(
        client, params.start, params.end, window=params.window, resume=resume, policy=policy, base_url=params.base_url
    )


async def run_feed_import(
    sessions: async_sessionmaker[AsyncSession] | AsyncEngine,
    source: str,
    params: FeedParameters,
    *,
    policy: RetryPolicy,
    resume_run: m.ImportRun | None = None,
    on_page: PageListener | None = None,
) -> RunResult:
    """Fetch [start, end) page by page; each page and its checkpoint are committed together.

    Resuming (``resume_run``): continue from that run's checkpoint in a new run linked to it. The page in
    flight when a run died was never committed, so it is fetched again and nothing is counted twice.
    """
    if source not in FEED_SOURCES:
        raise ValueError(f"unknown feed source {source!r}")
    service = ImportService(sessions, source)
    resume = checkpoint_from_json(resume_run.checkpoint) if resume_run is not None else None
    run_id = await service.start_run("feed", params.as_json(), resume_run.id if resume_run is not None else None)
    total = Counts()
    gap = False  # once a window may be incomplete, the watermark stays before it so `sync` reads it again
    try:
        async with httpx.AsyncClient(headers={"User-Agent": "localvalue-importer"}) as client:
            async for page in _pages(source, client, params, resume, policy):
                after = page.checkpoint_after
                gap = gap or any(n.level == ERROR or "links.next" in n.message for n in page.notes if n.ocid is None)
                window_done = (after is None or after.window_start >= page.window_end) and not gap
                batch = prepare_batch(
                    source,
                    page.releases,
                    page.notes,
                    failed=sum(1 for n in page.notes if _is_page_failure(n)),
                    skipped=sum(1 for n in page.notes if _is_release_skip(n)),
                )
                counts = await service.store_batch(
                    run_id,
                    batch,
                    checkpoint=checkpoint_to_json(after),
                    pages=1,
                    watermark=page.window_end if window_done else None,
                )
                total.add(counts)
                if on_page is not None:
                    on_page(page, counts)
    except FeedError as exc:
        await service.finish_run(run_id, FAILED, str(exc))
        return RunResult(run_id, FAILED, total, str(exc))
    except (asyncio.CancelledError, KeyboardInterrupt):
        await asyncio.shield(service.finish_run(run_id, INTERRUPTED, "interrupted"))
        raise
    counts = await service.finish_run(run_id, COMPLETED)
    return RunResult(run_id, COMPLETED, counts)


FileListener = Callable[[int, Counts], None]


async def run_file_import(
    sessions: async_sessionmaker[AsyncSession] | AsyncEngine,
    source: str,
    paths: Sequence[Path],
    *,
    batch_size: int = FILE_BATCH,
    resume_run: m.ImportRun | None = None,
    on_batch: FileListener | None = None,
    parallel: bool | None = None,
) -> RunResult:
    """Import OCDS files in batches; the checkpoint (file index, items done) is committed with each batch.

    ``parallel`` (default: for files of 8 MB or more) reads, hashes and compiles the next batch in a child
    process while this one is stored; the result is the same either way.
    """
    service = ImportService(sessions, source)
    start_file, start_item = 0, 0
    if resume_run is not None and resume_run.checkpoint:
        start_file = int(resume_run.checkpoint.get("file_index", 0))
        start_item = int(resume_run.checkpoint.get("item_index", 0))
    parameters = {"paths": [str(p) for p in paths], "batch_size": batch_size}
    run_id = await service.start_run("file", parameters, resume_run.id if resume_run is not None else None)
    total = Counts()
    try:
        with (
            _import_gc(),
            FileBatches(
                source,
                paths,
                batch_size=batch_size,
                start_file=start_file,
                start_item=start_item,
                parallel=parallel,
            ) as batches,
        ):
            # The next batch is read (or received from the child) in a thread while this one is stored.
            upcoming = asyncio.ensure_future(asyncio.to_thread(next, batches, None))
            while (batch := await upcoming) is not None:
                upcoming = asyncio.ensure_future(asyncio.to_thread(next, batches, None))
                counts = await service.store_batch(run_id, batch, checkpoint=batch.checkpoint)
                total.add(counts)
                if on_batch is not None:
                    on_batch(batch.file_index, counts)
    except (asyncio.CancelledError, KeyboardInterrupt):
        await asyncio.shield(service.finish_run(run_id, INTERRUPTED, "interrupted"))
        raise
    except OSError as exc:
        await service.finish_run(run_id, FAILED, str(exc))
        return RunResult(run_id, FAILED, total, str(exc))
    counts = await service.finish_run(run_id, COMPLETED)
    return RunResult(run_id, COMPLETED, counts)


@contextlib.contextmanager
def _import_gc() -> Iterator[None]:
    """Fewer cyclic collections during a bulk import.

    A batch is thousands of small dicts and rows that live until it is committed; at the default thresholds
    the collector walks them (and everything older) again and again, about a sixth of an import's time.
    Nothing an import builds depends on cycles being collected promptly.
    """
    before = gc.get_threshold()
    gc.freeze()  # what was alive before the import (modules, mappers, caches) is never scanned again
    gc.set_threshold(50_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


async def unfinished_run(
    session: AsyncSession, source: str, kind: str, parameters: dict[str, Any]
) -> m.ImportRun | None:
    """The latest run with these exact parameters that stopped part-way (killed, interrupted or failed)."""
    rows = await session.scalars(
        select(m.ImportRun)
        .where(m.ImportRun.source == source, m.ImportRun.kind == kind)
        .order_by(m.ImportRun.id.desc())
        .limit(20)
    )
    for run in rows:
        if run.parameters == parameters:
            return run if run.status in (RUNNING, INTERRUPTED, FAILED) and run.checkpoint else None
    return None


async def superseded(session: AsyncSession, run_id: int) -> bool:
    """True when a later run already resumed this one."""
    found = await session.scalar(select(func.count()).where(m.ImportRun.resumed_from_id == run_id))
    return bool(found)


def note_filter(run_id: int, level: str | None = None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [m.ImportNote.run_id == run_id]
    if level:
        conditions.append(m.ImportNote.level == level)
    return conditions


__all__ = [
    "COMPLETED",
    "CONTRACTS_FINDER",
    "FAILED",
    "FEED_SOURCES",
    "FIND_A_TENDER",
    "INTERRUPTED",
    "RUNNING",
    "Counts",
    "FeedParameters",
    "ImportService",
    "RunResult",
    "checkpoint_from_json",
    "checkpoint_to_json",
    "note_filter",
    "run_feed_import",
    "run_file_import",
    "superseded",
    "unfinished_run",
]
