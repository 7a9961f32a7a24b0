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
   awards become contracts with CPV codes and supplier shares - each written only where a value differs;
5. new and changed suppliers are classified; the stored tiers of those whose classification changed are
   dropped (read on the fly meanwhile), and every pair without a stored tier is stored once, when the run ends.

Idempotency: step 2 writes nothing for an unchanged release, and step 3 only runs for ocids that got a
new version, so re-importing the same data writes no domain rows at all. When an ocid is compiled again,
every upsert compares the stored values first and writes only real differences, so contracts, values,
dates and shares depend on the set of latest release versions, not on how many times or in how many
pieces they arrived. One thing does depend on arrival order: a new master supplier takes the name of the
first party matched to it, and its declared values are the latest seen (tests compare runs batch for batch).

Fast path: plain-tuple bulk inserts and IN-list selects per batch; lookups of identifiers and names are
cached for the run (the caches are dropped when a batch rolls back, since they may name rows that were undone).
On PostgreSQL a batch's writes run behind (``bulk.WriteBehind``): steps 2-4 read what earlier batches committed
on a second connection (none of those reads depends on the batch's own writes, and the archive versions it
promotes are counted from memory) while the batch's transaction writes; classification, which reads the
batch's suppliers, waits for their writes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import itertools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import (
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from importers.ocds import (
    Note,
    Procurement,
)
from importers.prepare import CompiledOcid, PreparedBatch, PreparedRelease, compile_ocid, decode_release
from procurement import clock
from procurement import models as m
from procurement.audit import record_audit
from procurement.bulk import WIDE, WriteBehind, among, bulk_insert, chunks, cut, plans_cached
from procurement.imports.contract_writes import ContractWriter
from procurement.imports.parties import Caches, PartyResolver
from procurement.models import RunStatus
from procurement.suppliers.classification import classify_rows
from procurement.suppliers.tiers import forget_tiers, store_missing_tiers

CONTRACTS_FINDER = m.ContractSource.CONTRACTS_FINDER.value


FIND_A_TENDER = m.ContractSource.FIND_A_TENDER.value


FEED_SOURCES = (CONTRACTS_FINDER, FIND_A_TENDER)


# Releases per file batch (one transaction). Larger batches write each hot index page once for more rows:
# at 2,000 an import writes about half the bytes it writes at 1,000, and both processes together stay under 400 MB.
FILE_BATCH = 2000

# Tries of one batch when a concurrent import of another source wrote the same master row first.
BATCH_ATTEMPTS = 3

# PostgreSQL: the tables a batch looks rows up in by one array of keys (``bulk.among``), and the columns it looks them
# up by. The planner judges such a lookup by the columns' statistics: with none yet (a first import), it takes the
# source's rows for a few and scans them all instead of probing the index once per key, and each batch costs more
# than the last. Autovacuum analyses a table only after the import's first minute, so a table that has no
# statistics, or has grown fourfold since they were taken, has these columns analysed after a batch (a few times in
# all; the columns alone, at a fraction of the cost of the whole table).
LOOKUP_COLUMNS = {
    "raw_release": ("source", "release_id", "ocid"),
    "contract": ("source", "source_id"),
    "contract_cpv": ("contract_id",),
    "contract_supplier": ("contract_id",),
    "supplier_match": ("source", "ocid", "supplier_id"),
    "supplier": ("name_key", "merged_into_id"),
    "supplier_identifier": ("scheme", "value", "supplier_id"),
    "supplier_classification": ("supplier_id",),
    "anchor_supplier_tier": ("supplier_id",),
    "organisation": ("name_key",),
    "organisation_identifier": ("scheme", "value"),
}
# Below this many pages (8 kB each) any plan of such a lookup is cheap.
ANALYSE_FROM_PAGES = 128
ANALYSE_GROWTH = 4


async def _execute(statement: Any, session: AsyncSession) -> None:
    await session.execute(statement)


class _Once:
    """A write to await exactly once, wherever it ends up running (see ``classify_rows(alongside=...)``)."""

    def __init__(self, write: Callable[[], Awaitable[None]]) -> None:
        self._write: Callable[[], Awaitable[None]] | None = write

    async def __call__(self) -> None:
        write, self._write = self._write, None
        if write is not None:
            await write()


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


class ImportService(PartyResolver, ContractWriter):
    """Runs, batches and their transactions. One instance per run (its caches belong to the run)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession] | AsyncEngine, source: str) -> None:
        self.sessions = (
            async_sessionmaker(sessions, expire_on_commit=False) if isinstance(sessions, AsyncEngine) else sessions
        )
        self.source = source
        self.caches = Caches()
        self._provisional = itertools.count(-1, -1)
        self._pending_audits: list[tuple[int, str, str]] = []
        self._writes = WriteBehind(None, behind=False)  # type: ignore[arg-type]  # the batch's, set per batch
        self._lz4: bool | None = None  # whether PostgreSQL can compress with lz4 (asked once)

    # runs ------------------------------------------------------------------------------------------------------

    async def start_run(self, kind: str, parameters: dict[str, Any], resumed_from_id: int | None = None) -> int:
        async with self.sessions() as session, session.begin():
            run = m.ImportRun(
                source=self.source,
                kind=kind,
                parameters=parameters,
                status=RunStatus.RUNNING,
                started_at=clock.now(),
                resumed_from_id=resumed_from_id,
            )
            session.add(run)
            if resumed_from_id is not None:
                # The old run stopped without finishing (killed, or failed); it is superseded, not completed.
                await session.execute(
                    update(m.ImportRun)
                    .where(
                        m.ImportRun.id == resumed_from_id, m.ImportRun.status.in_((RunStatus.RUNNING, RunStatus.FAILED))
                    )
                    .values(status=RunStatus.INTERRUPTED)
                )
            await session.flush()
            return run.id

    async def finish_run(
        self, run_id: int, status: str, error: str | None = None, *, sources: Sequence[str] = ()
    ) -> Counts:
        """Close the run; ``sources``: the platforms a file run stored releases under (recorded as its source).

        Then the tiers its batches left to be judged on the fly are stored (with any an earlier run that stopped
        part-way left), unless it was interrupted: the next run stores those, and reads are right meanwhile."""
        counts = await self._close_run(run_id, status, error, sources)
        if status == RunStatus.COMPLETED:
            await self.store_tiers()
        elif status == RunStatus.FAILED:
            # The run failed already (maybe the database is why); its error is the one to report.
            with contextlib.suppress(SQLAlchemyError, OSError):
                await self.store_tiers()
        return counts

    async def store_tiers(self) -> int:
        """``store_missing_tiers`` in its own transaction; returns the pairs stored."""
        async with self.sessions() as session, session.begin():
            return await store_missing_tiers(session)

    async def _close_run(self, run_id: int, status: str, error: str | None, sources: Sequence[str]) -> Counts:
        async with self.sessions() as session, session.begin():
            run = await session.get_one(m.ImportRun, run_id)
            run.status = status
            if sources:
                run.source = "+".join(sorted(sources))
            run.finished_at = clock.now()
            run.error = cut(error, 5000)
            if status == RunStatus.COMPLETED:
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

        ``checkpoint`` is where a resumed run continues once this batch is committed. Imports of one source
        never overlap (``locks``), but one of another source may create the same supplier or buyer at the
        same moment; the batch then rolls back and is stored again, seeing that row.
        """
        for attempt in itertools.count(1):
            try:
                counts = await self._store_batch(run_id, batch, checkpoint, pages, watermark)
            except IntegrityError:
                if attempt >= BATCH_ATTEMPTS:
                    raise
            else:
                await self._refresh_statistics()
                return counts
        raise AssertionError  # unreachable

    async def _refresh_statistics(self) -> None:
        """PostgreSQL: analyse the lookup columns of tables without statistics or grown past them
        (``LOOKUP_COLUMNS``)."""
        async with self.sessions() as session:
            if session.get_bind().dialect.name != "postgresql":
                return
            # Statistics only make plans faster: a failure here must not fail the import (the batch is committed).
            with contextlib.suppress(SQLAlchemyError):
                async with session.begin():
                    grown = (
                        await session.scalars(
                            text(
                                "SELECT relname FROM pg_class WHERE oid = ANY(CAST(:tables AS regclass[])) "
                                "AND pg_relation_size(oid) >= 8192 * greatest(:growth * relpages, :least) "
                                "ORDER BY relname"
                            ),
                            {"tables": list(LOOKUP_COLUMNS), "growth": ANALYSE_GROWTH, "least": ANALYSE_FROM_PAGES},
                        )
                    ).all()
                    if grown:
                        targets = ", ".join(f"{t} ({', '.join(LOOKUP_COLUMNS[t])})" for t in grown)
                        # Never waits: a table another session is analysing or vacuuming (autovacuum) is skipped.
                        await session.execute(text(f"ANALYZE (SKIP_LOCKED) {targets}"))

    async def _store_batch(
        self,
        run_id: int,
        batch: PreparedBatch,
        checkpoint: dict[str, Any] | None,
        pages: int,
        watermark: dt.datetime | None,
    ) -> Counts:
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
                    await self._batch_settings(session, writes=True)
                    # Until the batch's first read that must see its own writes (classification), it reads what
                    # earlier batches committed on a second connection, while its writes run on this one.
                    async with self.sessions() as reads, reads.begin():
                        await self._batch_settings(reads, writes=False)
                        await self._store_rows(session, reads, run_id, batch, counts)
                else:
                    if dialect == "sqlite":
                        # SQLite's default page cache (2 MB) is far smaller than the indexes a bulk import probes.
                        await session.execute(text("PRAGMA cache_size = -65536"))
                    await self._store_rows(session, session, run_id, batch, counts)
                await self._update_run(session, run_id, counts, checkpoint)
                if watermark is not None:
                    await self._advance_watermark(session, watermark)
                return counts
        except BaseException:
            self.caches = Caches()
            self._pending_audits.clear()
            raise

    async def _store_rows(
        self, session: AsyncSession, reads: AsyncSession, run_id: int, batch: PreparedBatch, counts: Counts
    ) -> None:
        """The batch's rows, in ``session``'s transaction; ``reads``: where it reads rows of earlier batches (the same
        session, or on PostgreSQL a second connection, when the writes run behind: ``WriteBehind``)."""
        self._writes = writes = WriteBehind(session, behind=reads is not session)
        try:
            all_notes = list(batch.notes)
            touched, archive, promoted = await self._store_raw(reads, run_id, batch.releases, counts)
            if writes.behind:
                # The archive is the server's largest piece of work: it goes first, while the batch is derived; the
                # held-back contract writes go in while its suppliers are classified.
                await writes.add(lambda s: bulk_insert(s, m.RawRelease, archive))
                write_archive = _Once(writes.run_deferred)
            else:
                # The archive's rows go in while the batch's suppliers are classified (the connection is idle then);
                # the batch reads them from memory.
                write_archive = _Once(lambda: bulk_insert(session, m.RawRelease, archive))
            await self._derive(session, reads, batch, touched, [*archive, *promoted], write_archive, counts, all_notes)
            await write_archive()
            await writes.run_deferred()
            await self._insert_notes(session, run_id, all_notes)
        finally:
            await writes.settle()

    async def _batch_settings(self, session: AsyncSession, *, writes: bool) -> None:
        """PostgreSQL settings for one of the batch's transactions, in one round trip: ``writes``, the one its writes go
        to; else the one that reads what earlier batches committed.

        plan_cache_mode: asyncpg keeps prepared statements; on the reading connection a generic plan made while the
        tables were nearly empty (sequential scans) would otherwise be reused as they grow, slowing every batch. The
        writing connection keeps the default (cached plans), which its COPYs' foreign-key checks need (``bulk._copy``);
        its reads look up the batch's own suppliers by key, and a plan made on smaller tables is dropped when they are
        analysed (``_refresh_statistics``). synchronous_commit: the commit does not wait for its WAL to reach the disk;
        a server crash can lose only the last batches whole, with the run's checkpoint, so a resumed run stores them
        again. default_toast_compression: the raw archive's JSON is compressed with lz4 (where the server has it) at
        about half pglz's cost. random_page_cost: a batch's lookups probe indexes the import keeps in memory; priced as
        a disk's seeks, thousands of probes look dearer than reading a whole table of tens of thousands of rows, which
        costs several times more."""
        if self._lz4 is None:
            self._lz4 = bool(
                await session.scalar(
                    text("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
                )
            )
        settings = {
            "plan_cache_mode": "auto" if writes else "force_custom_plan",
            "synchronous_commit": "off",
            "random_page_cost": "1.1",
        }
        if self._lz4:
            settings["default_toast_compression"] = "lz4"
        calls = ", ".join(f"set_config(:k{i}, :v{i}, true)" for i in range(len(settings)))
        values = {f"{p}{i}": x for i, kv in enumerate(settings.items()) for p, x in zip("kv", kv, strict=True)}
        await session.execute(text(f"SELECT {calls}"), values)
        if writes:
            plans_cached(session)

    async def _store_raw(
        self, session: AsyncSession, run_id: int, releases: Sequence[PreparedRelease], counts: Counts
    ) -> tuple[dict[str, PreparedRelease], list[dict[str, Any]], list[dict[str, Any]]]:
        """The raw archive: what is new or changed; returns the latest version of touched releases, the rows
        to insert (the caller inserts them) and the versions that came back (promoted here, by a write that may
        still be running: the batch counts them from memory, like the rows to insert).

        Idempotent by construction: a release whose hash equals its latest stored version writes nothing.
        Content that returns to an earlier version's hash (A -> B -> A) cannot be inserted twice (unique
        on hash); that old row is promoted to the newest version number instead.
        """
        release_ids = sorted({r.release_id for r in releases})
        versions: dict[str, dict[str, int]] = {}  # release id -> {hash: version}
        dialect = session.get_bind().dialect.name
        for chunk in chunks(release_ids, WIDE):
            rows = await session.execute(
                select(m.RawRelease.release_id, m.RawRelease.content_hash, m.RawRelease.version).where(
                    m.RawRelease.source == self.source, among(dialect, m.RawRelease.release_id, chunk)
                )
            )
            for rid, content_hash, version in rows:
                versions.setdefault(rid, {})[content_hash] = version
        now = clock.now()
        inserts: list[dict[str, Any]] = []
        promoted: list[dict[str, Any]] = []
        touched: dict[str, PreparedRelease] = {}
        for release in releases:
            rid, content_hash = release.release_id, release.content_hash
            known = versions.setdefault(rid, {})
            latest = max(known.values(), default=0)
            if known.get(content_hash) == latest and latest:
                counts.unchanged += 1
                continue
            if content_hash in known:
                promote = (
                    update(m.RawRelease)
                    .where(
                        m.RawRelease.source == self.source,
                        m.RawRelease.release_id == rid,
                        m.RawRelease.content_hash == content_hash,
                    )
                    .values(version=latest + 1, run_id=run_id, received_at=now)
                )
                await self._writes.add(functools.partial(_execute, promote))
                promoted.append(
                    {
                        "ocid": release.ocid,
                        "release_id": rid,
                        "version": latest + 1,
                        "content_hash": content_hash,
                        "release_date": release.release_date,
                    }
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
        return touched, inserts, promoted

    async def _latest_versions(
        self, session: AsyncSession, ocids: Sequence[str], unwritten: Sequence[Mapping[str, Any]] = ()
    ) -> dict[str, dict[str, tuple[int, str, dt.datetime | None]]]:
        """ocid -> release id -> (version, content hash, release date) of the latest stored version, counting
        ``unwritten`` archive rows (this batch's, inserted or promoted in its transaction, maybe not yet) as stored."""
        latest: dict[str, dict[str, tuple[int, str, dt.datetime | None]]] = {o: {} for o in ocids}
        dialect = session.get_bind().dialect.name
        for chunk in chunks(ocids, WIDE):
            rows = await session.execute(
                select(
                    m.RawRelease.ocid,
                    m.RawRelease.release_id,
                    m.RawRelease.version,
                    m.RawRelease.content_hash,
                    m.RawRelease.release_date,
                ).where(m.RawRelease.source == self.source, among(dialect, m.RawRelease.ocid, chunk))
            )
            for ocid, rid, version, content_hash, release_date in rows:
                known = latest[ocid].get(rid)
                if known is None or version > known[0]:
                    latest[ocid][rid] = (version, content_hash, release_date)
        for row in unwritten:
            if row["ocid"] not in latest:
                continue
            known = latest[row["ocid"]].get(row["release_id"])
            if known is None or row["version"] > known[0]:
                latest[row["ocid"]][row["release_id"]] = (row["version"], row["content_hash"], row["release_date"])
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
        for chunk in chunks(sorted(missing)):
            rows = await session.execute(
                select(m.RawRelease.ocid, m.RawRelease.data).where(
                    m.RawRelease.source == self.source,
                    tuple_(m.RawRelease.release_id, m.RawRelease.version).in_(list(chunk)),
                )
            )
            for ocid, data in rows:
                if ocid in releases:
                    releases[ocid].append((decode_release(data), False))
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
        reads: AsyncSession,
        batch: PreparedBatch,
        touched: dict[str, PreparedRelease],
        archive: Sequence[Mapping[str, Any]],
        write_archive: _Once,
        counts: Counts,
        notes: list[Note],
    ) -> None:
        """``session``: the batch's transaction; ``reads``: see ``_store_rows``."""
        if not touched:
            return
        latest = await self._latest_versions(reads, sorted({r.ocid for r in touched.values()}), archive)
        compiled: dict[str, CompiledOcid] = {}
        stale: dict[str, dict[str, tuple[int, str, dt.datetime | None]]] = {}
        for ocid, versions in latest.items():
            ready = batch.compiled.get(ocid)
            if ready is not None and ready.basis == {(rid, h) for rid, (_, h, _) in versions.items()}:
                compiled[ocid] = ready
            elif versions:
                stale[ocid] = versions
        compiled.update(await self._compile_here(reads, stale, touched))
        procurements: list[tuple[Procurement, dt.datetime | None]] = []
        for ocid in sorted(compiled):
            result = compiled[ocid]
            notes.extend(result.notes)
            if result.procurement is None:
                counts.failed += 1
                continue
            procurements.append((result.procurement, result.last_date))
        buyers = await self._resolve_buyers(reads, [p for p, _ in procurements], notes)
        suppliers = await self._resolve_suppliers(reads, [p for p, _ in procurements], notes)
        await self._upsert_contracts(reads, procurements, buyers, suppliers, notes)
        # Classification reads the suppliers, identifiers and matches just written.
        await self._writes.flush()
        # New or changed suppliers are classified in the batch's own transaction. Their stored tiers are dropped
        # instead of recomputed (judged on the fly when read, meanwhile) and stored once, at the end of the run.
        if suppliers:
            classified = await classify_rows(session, sorted(set(suppliers.values())), alongside=write_archive)
            await forget_tiers(session, classified.changed)
        await write_archive()  # before audits: they go through the ORM (flushed by the writes' statements)
        if procurements:
            # Bulk writes go round the ORM's hooks: the data version is bumped at commit all the same.
            session.info[m.FIGURES_DIRTY] = True
        await self._audit_new_organisations(session)

    async def _insert_notes(self, session: AsyncSession, run_id: int, notes: Sequence[Note]) -> None:
        if not notes:
            return
        now = clock.now()
        await bulk_insert(
            session,
            m.ImportNote,
            [
                {
                    "run_id": run_id,
                    "level": n.level,
                    "ocid": cut(n.ocid, 200),
                    "release_id": cut(n.release_id, 250),
                    "path": cut(n.path, 500),
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
            session.add(m.FeedWatermark(source=self.source, watermark=watermark, updated_at=clock.now()))
        elif current.watermark < watermark:
            current.watermark = watermark
            current.updated_at = clock.now()
