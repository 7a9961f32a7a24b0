"""One database read shared by the concurrent requests that need it, never older than any of them.

Under load many requests ask the same cheap question at once (is the database up, which data version is
current, has the statement table changed). ``Coalesced.get`` lets them share one query instead of each checking
out a connection, and keeps the answer exactly as fresh as a query of their own: a caller never joins a read that
was already running when it asked (that read may have started before a write the caller has seen committed); it
waits for the next read, which starts after it asked and serves everyone who asked meanwhile. So at most one read
runs at a time per process, and a caller waits for at most two.

Given a change counter (``procurement.db.changes_of``: SQLite's ``PRAGMA data_version``, read without leaving
the event loop; on PostgreSQL, notifications of commits counted by a listening connection, settled by one shared
round trip on it, see ``procurement.pgchanges``), a caller is served the last run's result without any read while
the counter, settled after it asked, still shows the value it had when that run started: no commit has ended
since, so a read of its own would find the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from functools import partial
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")


class ChangeCounter(Protocol):
    def version(self) -> int | None:
        """A number that moves whenever a change to the database is committed, counting only commits that have
        ended (a read started now sees them all); None when it cannot be read now."""

    async def settled(self) -> int | None:
        """``version()`` once it counts every commit that ended before this call (SQLite's counts them at once)."""


class Coalesced(Generic[T]):
    """Shares runs of ``fetch`` between concurrent callers; each gets the result of a run started after it asked.

    A failure is every waiter's failure of that run (each then answers as it would have on its own query); the
    next caller starts a fresh run. A caller that is cancelled (its client went away) leaves the run to the others.
    """

    def __init__(
        self,
        fetch: Callable[[], Awaitable[T]],
        *,
        changes: ChangeCounter | None = None,
        keep: Callable[[T], bool] | None = None,
    ) -> None:
        """``changes``: reuse a run's result while this counter has not moved since the run started (``keep``: only
        results it accepts, e.g. not a failed ping)."""
        self._fetch = fetch
        self._running: asyncio.Future[T] | None = None
        self._next: asyncio.Future[T] | None = None
        self._changes = changes
        self._keep = keep
        self._held: tuple[int, T] | None = None  # the counter when a run started, and what it returned

    async def get(self) -> T:
        held = self._held
        if held is not None and self._changes is not None and await self._changes.settled() == held[0]:
            return held[1]
        if self._running is not None and self._running.get_loop() is not asyncio.get_running_loop():
            self._running = self._next = None  # left over from a closed event loop (tests run one per case)
        if self._running is None:
            self._running = self._start()
            return await asyncio.shield(self._running)
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        return await asyncio.shield(self._next)

    def _start(self) -> asyncio.Future[T]:
        # Read before the run begins: whatever it reads is at least as new as this counter value.
        counted = None if self._changes is None else self._changes.version()
        task = asyncio.ensure_future(self._fetch())
        if counted is not None:
            task.add_done_callback(lambda run: self._hold(counted, run))
        task.add_done_callback(self._finished)
        return task

    def _hold(self, counted: int, run: asyncio.Future[T]) -> None:
        if run.cancelled() or run.exception() is not None:
            return
        result = run.result()
        if self._keep is None or self._keep(result):
            self._held = (counted, result)

    def _finished(self, task: asyncio.Future[T]) -> None:
        self._running = None
        waiting, self._next = self._next, None
        if waiting is None:
            _consume(task)
            return
        self._running = self._start()
        self._running.add_done_callback(lambda run: _settle(waiting, run))
        _consume(task)


def _settle(waiting: asyncio.Future[T], run: asyncio.Future[T]) -> None:
    if waiting.done():  # pragma: no cover - nothing else settles it
        return
    if run.cancelled():
        waiting.cancel()
    elif (error := run.exception()) is not None:
        waiting.set_exception(error)
    else:
        waiting.set_result(run.result())
    _consume(waiting)


def _consume(future: asyncio.Future[T]) -> None:
    # Mark the outcome as seen: when every waiter was cancelled, asyncio would otherwise log the unretrieved error.
    if not future.cancelled():
        future.exception()


K = TypeVar("K", bound=Hashable)


class CoalescedByKey(Generic[K, T]):
    """``Coalesced`` per key (the same question asked with the same parameters), for at most ``max_keys`` keys:
    past that all are forgotten, which only means less sharing (a caller already waiting keeps its run)."""

    def __init__(
        self, fetch: Callable[[K], Awaitable[T]], max_keys: int = 256, *, changes: ChangeCounter | None = None
    ) -> None:
        self._fetch = fetch
        self._by_key: dict[K, Coalesced[T]] = {}
        self.max_keys = max_keys
        self._changes = changes

    async def get(self, key: K) -> T:
        shared = self._by_key.get(key)
        if shared is None:
            if len(self._by_key) >= self.max_keys:
                self._by_key.clear()
            shared = self._by_key[key] = Coalesced(partial(self._fetch, key), changes=self._changes)
        return await shared.get()
