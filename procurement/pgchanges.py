"""PostgreSQL's change counter: notifications of committed changes, counted by a listening connection.

Every table has a statement-level trigger that calls ``pg_notify('localvalue_changes', '')`` on any insert,
update, delete or truncate (migration 0011), so any writer moves it: the service, the CLI, bulk SQL, psql.
PostgreSQL delivers a notification only when its transaction commits (never for a rollback), in commit order.
Each worker keeps one connection that LISTENs on that channel and counts what arrives; ``version()`` is that
count, and None while the connection is not up (every reconnect also moves it, since commits made while it was
down were not heard).

A notification arrives a moment after its commit ended, so the count alone may lag a commit that a client has
already seen: a client writes through another worker, then reads here at once. ``settled()`` closes that window
with a round trip on the listening connection that starts after it is called, and returns the count once the
answer is back. Why that is enough (PostgreSQL's source as of 14, 15 (the version used here) and the development
tree, not a documented guarantee):

* the committing backend signals every listening backend that has not read the new entry (``SignalBackends``)
  before it sends the ReadyForQuery that ends the COMMIT (since 15 from within the commit itself), and drivers
  (asyncpg, libpq, so psql) report the commit only once that has arrived: before any request that saw the
  commit can reach this worker;
* a listening backend with a pending signal reads the queue, up to every committed entry, and sends those
  notifications to its client before it answers the next command (``ProcessClientReadInterrupt`` handles the
  interrupt when the command is read, and ``PostgresMain`` before each ReadyForQuery);
* asyncpg hands each notification to its listener with ``call_soon`` while parsing the data, before it completes
  the round trip's future, so the callback has run when ``settled()`` resumes.

So a count returned by ``settled()`` includes every commit that ended before ``settled()`` was called, exactly
like SQLite's ``PRAGMA data_version``; the tests check it with a write on another connection followed at once by
``settled()``. A failed, timed-out or dropped round trip answers None (the caller reads for itself). The round trips
are shared (``Coalesced``): one at a time per worker, each serving every caller that asked before it started. It
assumes a session-level connection straight to the server: LISTEN does not work through a transaction pooler.
The documented route (NOTIFY itself and wait for that: notifications arrive in commit order) would spend a
transaction id and a commit record in the WAL on every round trip, thousands a second under load; ``SELECT 1``
spends neither.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg

from procurement.coalesce import Coalesced

CHANNEL = "localvalue_changes"
APPLICATION_NAME = "localvalue changes"  # how the listening connections show in pg_stat_activity
ROUND_TRIP_TIMEOUT_S = 2.0
CONNECT_TIMEOUT_S = 5.0
RECONNECT_AFTER_S = (0.1, 5.0)  # first wait after a failure, and the longest

_log = logging.getLogger(__name__)


class PgChanges:
    """The counted notifications of one database, heard on a connection of this worker's event loop."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._count = 0
        self._connection: asyncpg.Connection[Any] | None = None  # set only while listening
        self._keeper: asyncio.Task[None] | None = None
        self._round_trips: Coalesced[int | None] = Coalesced(self._round_trip)

    def version(self) -> int | None:
        """The count so far: every commit it counts has ended. Starts listening on first use."""
        if not self._listening():
            return None
        return self._count

    async def settled(self) -> int | None:
        """The count once every commit that ended before this call is in it; None when that cannot be known."""
        if not self._listening():
            return None
        return await self._round_trips.get()

    @property
    def server_pid(self) -> int | None:
        """The listening connection's backend, while there is one (to find it in ``pg_stat_activity``)."""
        connection = self._connection
        return None if connection is None or connection.is_closed() else connection.get_server_pid()

    async def close(self) -> None:
        """Stops listening (at shutdown); a later use starts again."""
        keeper, self._keeper = self._keeper, None
        if keeper is None or keeper.get_loop() is not asyncio.get_running_loop():
            return  # never started, or started on another event loop, whose end cancels it
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper

    def _listening(self) -> bool:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        if self._keeper is None or self._keeper.get_loop() is not loop:
            # First use, or left over from another event loop (an app served again, a test's).
            self._connection = None
            self._keeper = loop.create_task(self._keep_listening())
            return False
        connection = self._connection
        return connection is not None and not connection.is_closed()

    async def _round_trip(self) -> int | None:
        connection = self._connection
        if connection is None or connection.is_closed():
            return None
        try:
            async with asyncio.timeout(ROUND_TRIP_TIMEOUT_S):
                await connection.execute("SELECT 1")
        except Exception:  # any failure (it may be half closed: asyncpg's own errors) means it cannot vouch
            connection.terminate()  # its keeper hears it end and connects anew
            return None
        if connection.is_closed() or connection is not self._connection:
            return None
        return self._count

    def _heard(self, *_notification: object) -> None:
        self._count += 1

    async def _keep_listening(self) -> None:
        wait = RECONNECT_AFTER_S[0]
        while True:
            try:
                await self._listen_until_lost()
                _log.warning("lost the connection that hears database changes; reconnecting")
                wait = RECONNECT_AFTER_S[0]
            except Exception as error:  # whatever failed, try again; meanwhile the counter is unknown (None)
                _log.warning("cannot listen for database changes (%s); retrying", type(error).__name__)
            await asyncio.sleep(wait)
            wait = min(wait * 2, RECONNECT_AFTER_S[1])

    async def _listen_until_lost(self) -> None:
        connection = await asyncpg.connect(
            self._dsn, timeout=CONNECT_TIMEOUT_S, server_settings={"application_name": APPLICATION_NAME}
        )
        ended = asyncio.Event()
        connection.add_termination_listener(lambda _connection: ended.set())
        try:
            await connection.add_listener(CHANNEL, self._heard)  # LISTEN, committed when it returns
            # Commits before the LISTEN were not heard: whatever was counted before is no longer comparable.
            self._count += 1
            self._connection = connection
            await ended.wait()
        finally:
            self._connection = None
            if not connection.is_closed():
                await _close(connection)


async def _close(connection: asyncpg.Connection[Any]) -> None:
    try:
        await connection.close(timeout=ROUND_TRIP_TIMEOUT_S)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
        connection.terminate()
