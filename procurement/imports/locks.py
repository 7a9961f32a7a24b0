"""One import per source at a time, on SQLite and PostgreSQL, held by the process for the whole run.

PostgreSQL: a session advisory lock (``pg_try_advisory_lock``) on a key derived from the source, taken on a
dedicated connection kept open (in autocommit, so no transaction idles) until the run ends. The holder names
itself in ``application_name`` so others (and a DBA's ``pg_stat_activity``) can say which run holds it.

SQLite: an exclusive ``flock`` on a file beside the database (``localvalue.db.import-contracts_finder.lock``)
holding the holder's run id, pid, host and start time as JSON. A lock row with a heartbeat would have to guess
from the heartbeat's age whether a slow batch or a dead process is behind it, and would write to the database
while the import's own write transactions wait for it; the kernel releases a file lock exactly when the holding
process ends, however it ends (SIGKILL included), so "not held" means "dead" with no timing guesses. This is
correct for several processes on one machine, which is what SQLite itself supports; the file is never deleted
(deleting it would let two processes lock two different files of the same name).

A killed holder's PostgreSQL session lasts until the server notices its closed connection (at once when idle,
when its statement ends when busy); a holder naming a process of this host that no longer exists is therefore
waited for (up to ORPHAN_SECONDS) rather than reported as live.

Either way a run whose process died no longer holds the lock, so the next holder marks its ``running`` rows
as interrupted and they can be resumed; a run found ``running`` while the lock is held is live.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import os
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from procurement import clock
from procurement import models as m
from procurement.errors import ConflictError
from procurement.models import RunStatus

# How often a waiting import looks again.
POLL_SECONDS = 0.5
# A killed holder's PostgreSQL session outlives its process until the server notices the closed connection
# (once the statement it was running ends): how long a holder of this host whose process is gone is waited for.
ORPHAN_SECONDS = 30.0
DIED = "the importing process stopped without finishing (found when the next import of this source started)"


class ImportBusy(ConflictError):
    """Another live import of the same source holds the lock."""


@dataclass(frozen=True)
class Holder:
    """Who holds a source's lock, as far as it said (a holder that has only just started has no run yet)."""

    run_id: int | None = None
    pid: int | None = None
    host: str | None = None
    since: dt.datetime | None = None

    def details(self) -> str:
        parts = []
        if self.since is not None:
            parts.append(f"started {self.since.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC")
        if self.pid is not None:
            parts.append(f"pid {self.pid}" + (f" on {self.host}" if self.host else ""))
        return f" ({', '.join(parts)})" if parts else ""

    def describe(self) -> str:
        return (f"run {self.run_id}" if self.run_id is not None else "an import that is starting") + self.details()


class _Backend(Protocol):
    async def try_acquire(self) -> bool: ...

    async def claim(self, run_id: int | None) -> None: ...

    async def holder(self) -> Holder | None: ...

    async def release(self) -> None: ...


def _host() -> str:
    return socket.gethostname().split(".")[0]


class _FileLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None
        self.since = clock.now()

    async def try_acquire(self) -> bool:
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        self.since = clock.now()
        return True

    async def claim(self, run_id: int | None) -> None:
        assert self.fd is not None
        data = json.dumps({"run_id": run_id, "pid": os.getpid(), "host": _host(), "since": self.since.isoformat()})
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data.encode(), 0)

    async def holder(self) -> Holder | None:
        try:
            raw = self.path.read_text(encoding="utf-8")
            data: dict[str, Any] = json.loads(raw) if raw.strip() else {}
        except (OSError, ValueError):
            data = {}  # the holder is writing it this very moment
        since = data.get("since")
        return Holder(
            data.get("run_id"), data.get("pid"), data.get("host"), dt.datetime.fromisoformat(since) if since else None
        )

    def peek(self) -> Holder | None:
        """The holder the file names, without taking the lock (a reader must never make an import refuse).

        A holder empties the file when it lets go; one killed leaves its pid behind, so a pid of this host that
        no longer exists is no holder."""
        holder = self._named()
        return None if _gone(holder) else holder

    def _named(self) -> Holder | None:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except OSError:
            return None  # no file: nobody has ever imported this source
        try:
            data: dict[str, Any] = json.loads(raw) if raw.strip() else {}
        except ValueError:
            return Holder()  # being written this very moment
        if not data:
            return None
        since = data.get("since")
        return Holder(
            data.get("run_id"), data.get("pid"), data.get("host"), dt.datetime.fromisoformat(since) if since else None
        )

    async def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self.fd, 0)
        os.close(self.fd)  # closing the descriptor releases the flock
        self.fd = None


async def advisory_holder(conn: AsyncConnection | AsyncSession, key: int) -> Holder | None:
    """Who holds the advisory lock ``key`` (from pg_locks; nothing is taken), or None."""
    # A bigint advisory key shows in pg_locks as classid (high 32 bits) and objid (low 32 bits).
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    row = (
        await conn.execute(
            text(
                "SELECT a.application_name, a.backend_start FROM pg_locks l "
                "JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
                "AND l.classid = :hi AND l.objid = :lo "
                "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ),
            {"hi": unsigned >> 32, "lo": unsigned & 0xFFFFFFFF},
        )
    ).first()
    if row is None:
        return None
    fields = dict(part.split("=", 1) for part in str(row[0] or "").split() if "=" in part)
    run_id, pid = fields.get("run", ""), fields.get("pid", "")
    return Holder(
        int(run_id) if run_id.isdigit() else None,
        int(pid) if pid.isdigit() else None,
        fields.get("host") or None,
        row[1],
    )


def _gone(holder: Holder | None) -> bool:
    """A holder named by a process of this host that no longer exists: its lock is on its way out."""
    return holder is not None and holder.pid is not None and holder.host == _host() and not _alive(holder.pid)


async def _acquire(backend: _Backend) -> bool:
    """Take the lock if nobody live holds it, waiting out the session a killed process of this host left."""
    deadline = asyncio.get_running_loop().time() + ORPHAN_SECONDS
    while not await backend.try_acquire():
        holder = await backend.holder()
        if holder is not None and not _gone(holder):
            return False
        # Here the holder is a dead process's session, or none (let go since we tried, or ending as we looked).
        if asyncio.get_running_loop().time() >= deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _advisory_key(source: str) -> int:
    digest = hashlib.sha256(f"localvalue:import:{source}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class _AdvisoryLock:
    def __init__(self, engine: AsyncEngine, source: str) -> None:
        self.engine = engine
        self.key = _advisory_key(source)
        self.conn: AsyncConnection | None = None

    async def try_acquire(self) -> bool:
        conn = await self.engine.connect()
        try:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            got = await conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key})
        except BaseException:
            await conn.close()
            raise
        if not got:
            await conn.close()
            return False
        self.conn = conn
        return True

    async def claim(self, run_id: int | None) -> None:
        assert self.conn is not None
        name = f"localvalue-import run={run_id or ''} pid={os.getpid()} host={_host()}"[:63]
        await self.conn.execute(text("SELECT set_config('application_name', :name, false)"), {"name": name})

    async def holder(self) -> Holder | None:
        async with self.engine.connect() as conn:
            return await advisory_holder(conn, self.key)

    async def release(self) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        try:
            await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
            await conn.execute(text("RESET application_name"))
        except BaseException:
            # A broken connection has lost the lock with its session; never pool it again.
            await conn.invalidate()
            raise
        finally:
            await conn.close()


class _NoLock:
    """An in-memory SQLite database is private to its process: there is nobody to exclude."""

    async def try_acquire(self) -> bool:
        return True

    async def claim(self, run_id: int | None) -> None:
        del run_id

    async def holder(self) -> Holder | None:
        return None

    async def release(self) -> None:
        return None


def _backend(engine: AsyncEngine, source: str) -> _Backend:
    if engine.dialect.name == "postgresql":
        return _AdvisoryLock(engine, source)
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return _NoLock()
    return _FileLock(Path(f"{database}.import-{source}.lock"))


def engine_of(sessions: async_sessionmaker[AsyncSession] | AsyncEngine) -> AsyncEngine:
    if isinstance(sessions, AsyncEngine):
        return sessions
    bind = sessions.kw.get("bind")
    if not isinstance(bind, AsyncEngine):
        msg = "import sessions must be bound to an engine"
        raise TypeError(msg)
    return bind


class SourceLock:
    """A held lock; ``claim`` names the run that now holds it."""

    def __init__(self, backend: _Backend) -> None:
        self._backend = backend

    async def claim(self, run_id: int) -> None:
        await self._backend.claim(run_id)


async def _with_started_at(engine: AsyncEngine, holder: Holder) -> Holder:
    if holder.run_id is None:
        return holder
    async with engine.connect() as conn:
        started = await conn.scalar(select(m.ImportRun.started_at).where(m.ImportRun.id == holder.run_id))
    return Holder(holder.run_id, holder.pid, holder.host, started or holder.since)


async def current_holder(engine: AsyncEngine, source: str) -> Holder | None:
    """Who holds the source's lock now, or None when nobody does (so no run of it is live)."""
    backend = _backend(engine, source)
    if await _acquire(backend):
        await backend.release()
        return None
    holder = await backend.holder()
    return await _with_started_at(engine, holder) if holder is not None else Holder()


async def _mark_dead_runs(engine: AsyncEngine, source: str) -> None:
    """Runs of this source still marked running while we hold its lock belong to processes that died."""
    async with engine.begin() as conn:
        await conn.execute(
            update(m.ImportRun)
            .where(m.ImportRun.source == source, m.ImportRun.status == RunStatus.RUNNING)
            .values(status=RunStatus.INTERRUPTED, error=DIED, finished_at=clock.now())
        )


async def holder_now(session: AsyncSession, source: str) -> Holder | None:
    """Who holds the source's import lock, read without taking it (for pages and API answers: reading must
    neither write nor make a starting import think the source is busy). None: nobody, so no run of it is live."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        holder = await advisory_holder(session, _advisory_key(source))
        return None if _gone(holder) else holder
    database = bind.engine.url.database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return Holder()  # a private in-memory database: whatever runs in it is this process, alive
    return _FileLock(Path(f"{database}.import-{source}.lock")).peek()


def busy_message(source: str, holder: Holder, *, resume_of: int | None = None) -> str:
    if resume_of is not None and resume_of == holder.run_id:
        return f"run {resume_of} is still running{holder.details()}; only a stopped run can be resumed"
    what = f"{holder.describe()} is importing {source}"
    stop = f" (kill {holder.pid})" if holder.pid is not None else ""
    then = f"`localvalue import resume {holder.run_id}`" if holder.run_id is not None else "the import again"
    return f"{what}; wait for it (add --wait) or stop it{stop} and run {then}"


@contextlib.asynccontextmanager
async def import_lock(
    engine: AsyncEngine,
    source: str,
    *,
    wait: bool = False,
    on_wait: Callable[[Holder], None] | None = None,
    resume_of: int | None = None,
) -> AsyncIterator[SourceLock]:
    """Hold the source's import lock for the block; raise ImportBusy (one line) if another import holds it.

    With ``wait`` the caller waits until the holder finishes; ``on_wait(holder)`` is called once when it starts
    waiting. On entry, runs of the source left ``running`` by dead processes are marked interrupted.
    """
    backend = _backend(engine, source)
    told = False
    while not await _acquire(backend):
        holder = await backend.holder()
        for _ in range(20):  # the holder writes its name just after taking the lock: give it a moment
            if holder is None or holder.pid is not None:
                break
            await asyncio.sleep(0.025)
            holder = await backend.holder()
        holder = await _with_started_at(engine, holder) if holder is not None else Holder()
        if not wait:
            raise ImportBusy(busy_message(source, holder, resume_of=resume_of))
        if not told and on_wait is not None:
            on_wait(holder)
            told = True
        await asyncio.sleep(POLL_SECONDS)
    lock = SourceLock(backend)
    try:
        await backend.claim(None)
        await _mark_dead_runs(engine, source)
        yield lock
    finally:
        await asyncio.shield(backend.release())
