"""Shared reads (procurement.coalesce): concurrent callers share one run, and none is served by a run that began
before it asked; with a change counter, a result is reused only while no commit has ended since its run began.
Driven step by step with events, never by time."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from procurement.coalesce import Coalesced, CoalescedByKey
from procurement.db import SqliteChanges, changes_of
from procurement.pgchanges import PgChanges


class Reads:
    """A read that waits until released, numbering its runs."""

    def __init__(self) -> None:
        self.started = 0
        self.release = asyncio.Event()
        self.fail = False

    async def __call__(self) -> int:
        self.started += 1
        run = self.started
        await self.release.wait()
        if self.fail:
            raise RuntimeError(f"run {run} failed")
        return run


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_callers_share_one_run_and_latecomers_wait_for_a_fresh_one() -> None:
    reads = Reads()
    shared = Coalesced(reads)
    first = asyncio.ensure_future(shared.get())
    await _settle()
    # Both ask while run 1 is under way: it may have begun before a write they saw, so they get run 2.
    late = [asyncio.ensure_future(shared.get()) for _ in range(2)]
    await _settle()
    assert reads.started == 1
    reads.release.set()
    assert await first == 1
    assert await asyncio.gather(*late) == [2, 2]
    assert reads.started == 2
    assert await shared.get() == 3  # nothing under way: a run of its own


async def test_a_failed_run_fails_its_callers_and_the_next_caller_runs_again() -> None:
    reads = Reads()
    reads.fail = True
    reads.release.set()
    shared = Coalesced(reads)
    with pytest.raises(RuntimeError, match="run 1"):
        await shared.get()
    reads.fail = False
    assert await shared.get() == 2


async def test_a_cancelled_caller_leaves_the_run_to_the_others() -> None:
    reads = Reads()
    shared = Coalesced(reads)
    leaving = asyncio.ensure_future(shared.get())
    staying = asyncio.ensure_future(shared.get())
    await _settle()
    leaving.cancel()
    reads.release.set()
    assert await staying == 2
    with pytest.raises(asyncio.CancelledError):
        await leaving


async def test_keys_do_not_share() -> None:
    seen: list[str] = []

    async def read(key: str) -> str:
        seen.append(key)
        return key.upper()

    shared = CoalescedByKey(read, max_keys=2)
    assert await asyncio.gather(shared.get("a"), shared.get("b"), shared.get("c")) == ["A", "B", "C"]
    assert sorted(seen) == ["a", "b", "c"]


class Counter:
    """A change counter moved by hand; None while 'busy'."""

    def __init__(self) -> None:
        self.value: int | None = 1

    def version(self) -> int | None:
        return self.value

    async def settled(self) -> int | None:
        return self.value


async def test_a_result_is_reused_only_while_the_counter_stays_where_its_run_began() -> None:
    reads, counter = Reads(), Counter()
    reads.release.set()
    shared = Coalesced(reads, changes=counter)
    assert await shared.get() == 1
    assert await shared.get() == 1  # nothing committed since run 1 began
    counter.value = 2
    assert await shared.get() == 2
    counter.value = None  # the counter cannot be read: a read of its own
    assert await shared.get() == 3
    counter.value = 2  # run 3 began while the counter was unknown, so it is not held; run 2 still is
    assert await shared.get() == 2


async def test_a_change_committed_while_a_run_is_under_way_is_not_missed() -> None:
    reads, counter = Reads(), Counter()
    shared = Coalesced(reads, changes=counter)
    first = asyncio.ensure_future(shared.get())
    await _settle()
    counter.value = 2  # committed after run 1 began: run 1 may not have seen it
    reads.release.set()
    assert await first == 1
    assert await shared.get() == 2
    assert await shared.get() == 2


async def test_only_kept_results_are_reused() -> None:
    reads, counter = Reads(), Counter()
    reads.release.set()
    shared = Coalesced(reads, changes=counter, keep=lambda run: run > 1)
    assert await shared.get() == 1
    assert await shared.get() == 2
    assert await shared.get() == 2


def _database_with_table(path: Path) -> sqlite3.Connection:
    """A writer in autocommit on a new database file holding one table."""
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("CREATE TABLE t (x INTEGER)")
    return writer


def test_sqlite_counter_moves_with_every_commit_elsewhere_and_never_waits_for_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "counted.db"
    writer = _database_with_table(path)
    changes = SqliteChanges(path)
    before = changes.version()
    assert before is not None
    assert changes.version() == before
    writer.execute("INSERT INTO t VALUES (1)")
    moved = changes.version()
    assert moved is not None
    assert moved != before
    for value in range(2, 50):  # each commit counted by the very next look, never a commit behind
        seen = changes.version()
        writer.execute("INSERT INTO t VALUES (?)", (value,))
        assert changes.version() not in (None, seen)
    moved = changes.version()
    writer.execute("BEGIN EXCLUSIVE")
    writer.execute("INSERT INTO t VALUES (2)")
    started = time.monotonic()
    # Nothing committed yet: the last value, or unknown (busy), at once, not after the 30 s busy timeout.
    assert changes.version() in (None, moved)
    assert time.monotonic() - started < 1
    writer.execute("ROLLBACK")
    assert changes.version() == moved  # a rolled-back change never reached the file
    writer.execute("INSERT INTO t VALUES (3)")
    assert changes.version() not in (None, moved)
    writer.close()


def test_sqlite_counter_in_wal_mode_still_moves_with_every_commit(tmp_path: Path) -> None:
    """A WAL commit ends in the shared-memory index, which no file write reports: the counter must notice the
    change of mode and still move with every commit."""
    path = tmp_path / "wal.db"
    writer = _database_with_table(path)
    changes = SqliteChanges(path)
    rollback = changes.version()
    assert rollback is not None
    assert rollback < 0  # counted from the file's writes
    writer.execute("PRAGMA journal_mode=WAL")
    for value in range(20):
        seen = changes.version()
        writer.execute("INSERT INTO t VALUES (?)", (value,))
        assert changes.version() not in (None, seen)
    assert changes.version() not in (None, rollback)
    assert changes.version() == changes.version()
    writer.close()


def test_sqlite_counter_of_a_replaced_file_asks_the_database(tmp_path: Path) -> None:
    """A watch follows the file it was made on: once that file is moved away it must not be trusted."""
    path = tmp_path / "moved.db"
    writer = _database_with_table(path)
    writer.close()
    changes = SqliteChanges(path)
    watched = changes.version()
    assert watched is not None
    assert watched < 0
    path.rename(tmp_path / "elsewhere.db")
    sqlite3.connect(path, isolation_level=None).execute("CREATE TABLE u (x INTEGER)")
    after = changes.version()
    assert after is None or after > 0  # from the database itself, never a count of the old file's writes


def test_sqlite_counter_in_a_forked_child_counts_commits_the_parent_also_sees(tmp_path: Path) -> None:
    """Parent and child each have their own queue of writes: one reading it never hides a commit from the other."""
    path = tmp_path / "forked.db"
    writer = _database_with_table(path)
    changes = SqliteChanges(path)
    before = changes.version()
    to_parent, from_child = os.pipe()
    to_child, from_parent = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through its exit code
        seen = changes.version()
        os.write(from_child, b"x")
        os.read(to_child, 1)  # until the parent has committed
        os._exit(0 if changes.version() not in (None, seen, before) else 1)
    try:
        assert os.read(to_parent, 1) == b"x"
        writer.execute("INSERT INTO t VALUES (1)")
        os.write(from_parent, b"y")
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert changes.version() not in (None, before)
    finally:
        for fd in (to_parent, from_child, to_child, from_parent):
            os.close(fd)
        writer.close()


def test_a_counter_for_postgresql_none_for_memory() -> None:
    assert isinstance(changes_of(create_async_engine("postgresql+asyncpg://postgres@127.0.0.1/x")), PgChanges)
    assert changes_of(create_async_engine("sqlite+aiosqlite://")) is None


def test_sqlite_counters_given_up_give_back_their_watch(tmp_path: Path) -> None:
    """A watch is an inotify instance, 128 per user by default: counters made and dropped one after another (as
    each test's app makes its own) must not use them up and fall back to asking the database."""
    path = tmp_path / "many.db"
    sqlite3.connect(path, isolation_level=None).execute("CREATE TABLE t (x INTEGER)")
    for _ in range(400):
        value = SqliteChanges(path).version()
        assert value is not None
        assert value < 0  # counted from the file's writes, not asked of the database
