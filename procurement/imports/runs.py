"""Import runs: feed and file imports end to end, resumable, with counts and notes."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import (
    ColumnElement,
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from importers.http import Checkpoint, FeedError, Page, RetryPolicy
from importers.ocds import (
    ERROR,
    Note,
)
from importers.prepare import FileBatches, prepare_batch
from procurement import clock
from procurement import models as m
from procurement.db import get_or_not_found
from procurement.imports.locks import SourceLock, engine_of, holder_now, import_lock
from procurement.imports.schemas import ImportNote, ImportRun
from procurement.imports.service import CONTRACTS_FINDER, FEED_SOURCES, FILE_BATCH, Counts, ImportService, RunResult
from procurement.models import RunStatus


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
    from importers.contracts_finder import CONTRACTS_FINDER as CONTRACTS_FINDER_FEED
    from importers.find_a_tender import FIND_A_TENDER as FIND_A_TENDER_FEED
    from importers.http import iter_feed

    spec = CONTRACTS_FINDER_FEED if source == CONTRACTS_FINDER else FIND_A_TENDER_FEED
    return iter_feed(
        client,
        spec,
        params.start,
        params.end,
        window=params.window,
        resume=resume,
        policy=policy,
        base_url=params.base_url,
    )


async def run_feed_import(
    sessions: async_sessionmaker[AsyncSession] | AsyncEngine,
    source: str,
    params: FeedParameters,
    *,
    policy: RetryPolicy,
    resume_run: m.ImportRun | None = None,
    on_page: PageListener | None = None,
    lock: SourceLock | None = None,
) -> RunResult:
    """Fetch [start, end) page by page; each page and its checkpoint are committed together.

    Resuming (``resume_run``): continue from that run's checkpoint in a new run linked to it. The page in
    flight when a run died was never committed, so it is fetched again and nothing is counted twice.
    ``lock``: the source's import lock, already held by the caller (who chose ``resume_run`` under it);
    without it the lock is taken here, and ImportBusy raised if another import of the source is live.
    """
    if source not in FEED_SOURCES:
        raise ValueError(f"unknown feed source {source!r}")
    if lock is None:
        async with import_lock(engine_of(sessions), source) as held:
            return await run_feed_import(
                sessions, source, params, policy=policy, resume_run=resume_run, on_page=on_page, lock=held
            )
    service = ImportService(sessions, source)
    resume = checkpoint_from_json(resume_run.checkpoint) if resume_run is not None else None
    run_id = await service.start_run("feed", params.as_json(), resume_run.id if resume_run is not None else None)
    await lock.claim(run_id)
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
        await service.finish_run(run_id, RunStatus.FAILED, str(exc))
        return RunResult(run_id, RunStatus.FAILED, total, str(exc))
    except (asyncio.CancelledError, KeyboardInterrupt):
        await asyncio.shield(service.finish_run(run_id, RunStatus.INTERRUPTED, "interrupted"))
        raise
    except Exception as exc:  # recorded on the run, which stays resumable, never left `running`
        return await _failed(service, run_id, total, exc)
    counts = await service.finish_run(run_id, RunStatus.COMPLETED)
    return RunResult(run_id, RunStatus.COMPLETED, counts)


FileListener = Callable[[int, Counts], None]


async def run_file_import(
    sessions: async_sessionmaker[AsyncSession] | AsyncEngine,
    source: str | None,
    paths: Sequence[Path],
    *,
    batch_size: int = FILE_BATCH,
    resume_run: m.ImportRun | None = None,
    on_batch: FileListener | None = None,
    parallel: bool | None = None,
    lock: SourceLock | None = None,
) -> RunResult:
    """Import OCDS files in batches; the checkpoint (file index, items done) is committed with each batch.

    ``source`` None: each release is stored under the platform it came from (ocid prefix, else the package's
    publisher); a source given overrides that, with a note where a release looks otherwise. The run records the
    platforms it stored. ``parallel`` (default: for files of 8 MB or more) reads, hashes and compiles the next
    batch in a child process while this one is stored; the result is the same either way. ``lock`` as for
    run_feed_import (a file import holds the lock of ``file_lock_source(source)``).
    """
    if lock is None:
        async with import_lock(engine_of(sessions), file_lock_source(source)) as held:
            return await run_file_import(
                sessions,
                source,
                paths,
                batch_size=batch_size,
                resume_run=resume_run,
                on_batch=on_batch,
                parallel=parallel,
                lock=held,
            )
    first = ImportService(sessions, source or CONTRACTS_FINDER)
    services = {first.source: first}
    stored: dict[str, None] = {}  # the sources batches were stored under, in order
    start_file, start_item = 0, 0
    if resume_run is not None and resume_run.checkpoint:
        start_file = int(resume_run.checkpoint.get("file_index", 0))
        start_item = int(resume_run.checkpoint.get("item_index", 0))
    parameters = file_parameters(paths, batch_size, source)
    run_id = await first.start_run("file", parameters, resume_run.id if resume_run is not None else None)
    await lock.claim(run_id)
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
                service = services.get(batch.source)
                if service is None:
                    service = services[batch.source] = ImportService(sessions, batch.source)
                counts = await service.store_batch(run_id, batch, checkpoint=batch.checkpoint)
                stored[batch.source] = None
                total.add(counts)
                if on_batch is not None:
                    on_batch(batch.file_index, counts)
    except (asyncio.CancelledError, KeyboardInterrupt):
        await asyncio.shield(first.finish_run(run_id, RunStatus.INTERRUPTED, "interrupted", sources=list(stored)))
        raise
    except OSError as exc:
        await first.finish_run(run_id, RunStatus.FAILED, str(exc), sources=list(stored))
        return RunResult(run_id, RunStatus.FAILED, total, str(exc))
    except Exception as exc:  # recorded on the run, which stays resumable, never left `running`
        return await _failed(first, run_id, total, exc)
    counts = await first.finish_run(run_id, RunStatus.COMPLETED, sources=list(stored))
    return RunResult(run_id, RunStatus.COMPLETED, counts)


def file_parameters(paths: Sequence[Path], batch_size: int, source: str | None) -> dict[str, Any]:
    """What identifies a file run (so that a rerun of the same command resumes it)."""
    return {"paths": [str(p) for p in paths], "batch_size": batch_size, "source": source}


def file_lock_source(source: str | None) -> str:
    """The import lock a file import holds: its given source, else Contracts Finder (where most file releases,
    and every one whose platform cannot be told, are stored)."""
    return source or CONTRACTS_FINDER


async def _failed(service: ImportService, run_id: int, total: Counts, exc: Exception) -> RunResult:
    """An unexpected error ends the run as failed with the error recorded, instead of a traceback."""
    error = f"{type(exc).__name__}: {exc}"
    await service.finish_run(run_id, RunStatus.FAILED, error)
    return RunResult(run_id, RunStatus.FAILED, total, error.splitlines()[0])


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
    session: AsyncSession, source: str | None, kind: str, parameters: dict[str, Any]
) -> m.ImportRun | None:
    """The latest run with these exact parameters that stopped part-way (killed, interrupted or failed).

    ``source`` None: any source (a file run's parameters hold its --source, and its row the sources it stored)."""
    same_source = [] if source is None else [m.ImportRun.source == source]
    rows = await session.scalars(
        select(m.ImportRun).where(*same_source, m.ImportRun.kind == kind).order_by(m.ImportRun.id.desc()).limit(20)
    )
    for run in rows:
        if run.parameters == parameters:
            return (
                run
                if run.status in (RunStatus.RUNNING, RunStatus.INTERRUPTED, RunStatus.FAILED) and run.checkpoint
                else None
            )
    return None


async def superseded(session: AsyncSession, run_id: int) -> bool:
    """True when a later run already resumed this one."""
    found = await session.scalar(select(func.count()).where(m.ImportRun.resumed_from_id == run_id))
    return bool(found)


PROCESS_STOPPED = "its process stopped without finishing (no import of this source is running)"


async def stopped_runs(session: AsyncSession) -> dict[int, dt.datetime]:
    """Runs recorded as running whose process has died: run id -> the last progress it recorded.

    Computed on read from the import locks (a live run's process holds its source's lock for the whole run) and
    never written: the next import of the source, or ``localvalue import resume``, marks them interrupted."""
    running = (
        await session.execute(select(m.ImportRun.id, m.ImportRun.source).where(m.ImportRun.status == RunStatus.RUNNING))
    ).all()
    holders = {source: await holder_now(session, source) for source in {source for _, source in running}}
    dead = [
        run_id
        for run_id, source in running
        if (holder := holders[source]) is None or (holder.run_id is not None and holder.run_id != run_id)
    ]
    return {run_id: await _last_progress(session, run_id) for run_id in dead}


async def _last_progress(session: AsyncSession, run_id: int) -> dt.datetime:
    """The latest instant a run recorded: its start, its newest note or its newest stored release."""
    row = (
        await session.execute(
            select(
                m.ImportRun.started_at,
                select(func.max(m.ImportNote.created_at)).where(m.ImportNote.run_id == run_id).scalar_subquery(),
                select(func.max(m.RawRelease.received_at)).where(m.RawRelease.run_id == run_id).scalar_subquery(),
            ).where(m.ImportRun.id == run_id)
        )
    ).one()
    return max(as_utc(t) for t in row if t is not None)


def as_utc(value: dt.datetime | str) -> dt.datetime:
    # A scalar subquery's max() comes back from SQLite as text or a naive datetime, without the column's type.
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def uk_time(at: dt.datetime) -> str:
    """14 July 2025 at 10:30 (UK time), for pages."""
    local = at.astimezone(clock.UK)
    return f"{clock.long_date(local.date())} at {local:%H:%M} (UK time)"


def resume_command(run_id: int) -> str:
    return f"localvalue import resume {run_id}"


def note_filter(run_id: int, level: str | None = None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [m.ImportNote.run_id == run_id]
    if level:
        conditions.append(m.ImportNote.level == level)
    return conditions


def run_schema(run: m.ImportRun, notes: int, stopped: Mapping[int, dt.datetime] | None = None) -> ImportRun:
    """``stopped``: from stopped_runs; a run in it is shown interrupted, with when it last progressed."""
    last_progress = (stopped or {}).get(run.id)
    dead = last_progress is not None
    return ImportRun(
        id=run.id,
        source=run.source,
        kind=run.kind,
        parameters=run.parameters,
        status=RunStatus.INTERRUPTED if dead else run.status,
        started_at=run.started_at,
        finished_at=run.finished_at,
        checkpoint=run.checkpoint,
        fetched=run.fetched,
        new=run.new,
        changed=run.changed,
        unchanged=run.unchanged,
        skipped=run.skipped,
        failed=run.failed,
        pages=run.pages,
        notes=notes,
        error=PROCESS_STOPPED if dead else run.error,
        resumed_from_id=run.resumed_from_id,
        last_progress_at=last_progress,
        resume_command=resume_command(run.id) if dead else None,
    )


def note_schema(note: m.ImportNote) -> ImportNote:
    return ImportNote(
        id=note.id,
        level=note.level,
        ocid=note.ocid,
        release_id=note.release_id,
        path=note.path,
        value=note.value,
        message=note.message,
    )


async def get_run(session: AsyncSession, run_id: int) -> m.ImportRun:
    return await get_or_not_found(session, m.ImportRun, run_id, "import run")


async def note_counts(session: AsyncSession, run_ids: list[int]) -> dict[int, int]:
    if not run_ids:
        return {}
    rows = await session.execute(
        select(m.ImportNote.run_id, func.count()).where(m.ImportNote.run_id.in_(run_ids)).group_by(m.ImportNote.run_id)
    )
    return dict(rows.tuples().all())
