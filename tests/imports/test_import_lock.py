"""One import per source at a time: real `localvalue import file` processes racing, waiting, killed and resumed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

import pytest
from advanced_alchemy.base import metadata_registry
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.imports.locks import current_holder, holder_now, import_lock
from procurement.imports.runs import run_file_import
from procurement.imports.service import CONTRACTS_FINDER
from tests.conftest import Database, _empty_tables
from tests.support.cli import LOCALVALUE, cli_env, localvalue
from tests.support.imports import CF_FILES, diff, snapshot
from tests.support.paths import REPO_DIR

# Ten releases per transaction, so the import lasts long enough to be caught holding the lock.
BATCH = 10
COMMAND = ["import", "file", "--batch-size", str(BATCH), *(str(p) for p in CF_FILES)]
# What a second run of the same data adds beside the first: its own run row and its audit event.
RUN_TABLES = {"import_run", "audit_event"}


def _start(db: Database, *args: str, stderr: IO[str] | int = subprocess.PIPE) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [LOCALVALUE, *args],
        env=cli_env(db.url),
        cwd=REPO_DIR,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )


async def _runs(db: Database) -> list[Any]:
    async with db.engine.connect() as conn:
        return list((await conn.execute(select(m.ImportRun).order_by(m.ImportRun.id))).all())


async def _counts(db: Database) -> dict[str, int]:
    async with db.engine.connect() as conn:
        return {
            t.name: int((await conn.execute(select(func.count()).select_from(t))).scalar_one())
            for t in metadata_registry.get(None).sorted_tables
            if t.name not in RUN_TABLES
        }


async def _clean(db: Database) -> tuple[dict[str, Any], dict[str, int]]:
    """The state one import alone leaves (batch for batch: see procurement.imports.service); emptied again after."""
    result = await run_file_import(db.engine, CONTRACTS_FINDER, list(CF_FILES), batch_size=BATCH)
    assert result.status == "completed"
    clean = await snapshot(db.engine), await _counts(db)
    await _empty_tables(db)
    return clean


async def _running_run(db: Database, processes: list[subprocess.Popen[str]], *, batches: int = 1) -> Any:
    """The run a process is storing (after ``batches`` committed), once one has it."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        runs = [r for r in await _runs(db) if r.status == "running" and r.fetched >= batches]
        if runs:
            return runs[-1]
        for p in processes:
            assert p.poll() is None, p.communicate()
        await asyncio.sleep(0.05)
    raise AssertionError("no import started storing releases")


@contextlib.asynccontextmanager
async def _writes_blocked(db: Database) -> AsyncIterator[None]:
    """Hold off every import write (reads go on), so a live import stays live while the test looks at it."""
    if db.backend == "sqlite":
        # SQLite's busy handler backs off for longer and longer, so an import committing batch after batch can
        # starve a patient blocker until it has finished: ask again every millisecond instead.
        conn = sqlite3.connect(db.url.split("///", 1)[1], isolation_level=None, timeout=0)
        deadline = time.monotonic() + 30
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.001)
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    async with db.engine.connect() as pg:
        await pg.execute(text("LOCK TABLE import_run IN EXCLUSIVE MODE"))
        try:
            yield
        finally:
            await pg.rollback()


async def _exited(processes: list[subprocess.Popen[str]], timeout: float = 60) -> subprocess.Popen[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in processes:
            if p.poll() is not None:
                return p
        await asyncio.sleep(0.05)
    raise AssertionError("no process exited")


async def _stderr_says(path: Path, words: str, process: subprocess.Popen[str]) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        said = path.read_text()
        if words in said:
            return said
        assert process.poll() is None, (process.returncode, said)
        await asyncio.sleep(0.05)
    raise AssertionError(f"never said {words!r}: {path.read_text()!r}")


@pytest.mark.slow
async def test_two_imports_at_once_one_refuses_one_waits(db: Database, tmp_path: Path) -> None:
    clean, clean_counts = await _clean(db)

    racers = [_start(db, *COMMAND), _start(db, *COMMAND)]
    try:
        run = await _running_run(db, racers)
        async with _writes_blocked(db):
            loser = await _exited(racers)
            [winner] = [p for p in racers if p is not loser]
            out, err = loser.communicate(timeout=10)
            # One line naming the holder (pid and host always; its run once it has one) and what to do.
            assert loser.returncode == 1, (out, err)
            assert len(err.strip().splitlines()) == 1, err
            assert f"pid {winner.pid} on " in err
            assert "is importing contracts_finder; wait for it (add --wait) or stop it" in err
            assert "Traceback" not in err
            holder = await current_holder(db.engine, CONTRACTS_FINDER)
            assert holder is not None
            assert (holder.run_id, holder.pid) == (run.id, winner.pid)

            # `resume` never touches a live run.
            refused = localvalue("import", "resume", str(run.id), database_url=db.url, check=False)
            assert refused.returncode == 1
            assert refused.stderr.strip().splitlines() == [
                f"Error: run {run.id} is still running{holder.details()}; only a stopped run can be resumed"
            ]
            assert winner.poll() is None

            # A third run with --wait waits for the holder instead.
            log = tmp_path / "waiter.err"
            with log.open("w") as sink:
                waiter = _start(db, *COMMAND, "--wait", stderr=sink)
            said = await _stderr_says(log, "waiting for", waiter)
            assert f"waiting for run {run.id} (started " in said
        out, err = winner.communicate(timeout=180)
        assert winner.returncode == 0, err
        assert out.strip().splitlines()[-1].startswith("new ")
        assert waiter.wait(timeout=180) == 0, log.read_text()
        assert waiter.stdout is not None
        assert waiter.stdout.read().strip().splitlines()[-1].startswith("new 0, changed 0, unchanged ")
    finally:
        for p in racers:
            if p.poll() is None:
                p.kill()

    runs = await _runs(db)
    assert [r.status for r in runs] == ["completed", "completed"]
    assert diff(clean, await snapshot(db.engine)) == {}
    assert await _counts(db) == clean_counts


@pytest.mark.slow
async def test_killed_import_is_found_dead_and_resumed(db: Database) -> None:
    clean, clean_counts = await _clean(db)

    process = _start(db, *COMMAND)
    try:
        killed = await _running_run(db, [process], batches=20)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    [left] = await _runs(db)
    assert left.status == "running"  # nobody could record anything
    assert await current_holder(db.engine, CONTRACTS_FINDER) is None  # ... but nobody holds the lock: it is dead
    [listed] = localvalue("import", "runs", database_url=db.url).stdout.splitlines()
    assert " interrupted " in listed  # as the API and the data-quality page call it
    assert listed.endswith(f"(its process stopped; `localvalue import resume {killed.id}`)")

    resumed = localvalue("import", "resume", str(killed.id), database_url=db.url, timeout=180)
    assert f"resuming run {killed.id} from " in resumed.stderr
    first, second = await _runs(db)
    assert (first.status, second.status) == ("interrupted", "completed")
    assert second.resumed_from_id == first.id
    assert diff(clean, await snapshot(db.engine)) == {}
    assert await _counts(db) == clean_counts


# Holds the source's lock as an import does, then keeps its PostgreSQL session busy (the statement a killed
# import was running when it died), so the server only notices the dead client when the statement ends.
_LINGERING_HOLDER = """
import asyncio, sys, time
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from procurement.imports.locks import _backend

async def main() -> None:
    engine = create_async_engine(sys.argv[1])
    lock = _backend(engine, "contracts_finder")
    assert await lock.try_acquire()
    await lock.claim(None)
    print("held", flush=True)
    if engine.dialect.name == "postgresql":
        await lock.conn.execute(text("SELECT pg_sleep(3)"))
    time.sleep(60)

asyncio.run(main())
"""


async def test_a_killed_holders_lingering_session_is_waited_for_not_reported(
    db: Database, session: AsyncSession
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", _LINGERING_HOLDER, db.url],
        env=cli_env(db.url),
        cwd=REPO_DIR,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "held"
        held = await current_holder(db.engine, CONTRACTS_FINDER)
        assert held is not None
        assert held.pid == process.pid
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    # Pages and the API read the holder without waiting: a dead process of this host holds nothing.
    assert await holder_now(session, CONTRACTS_FINDER) is None
    # Taking the lock waits for the server to end the dead process's session, rather than refusing.
    assert await current_holder(db.engine, CONTRACTS_FINDER) is None
    async with import_lock(db.engine, CONTRACTS_FINDER):
        pass
