"""The change counter behind shared reads (``procurement.db.changes_of``) on both databases: any commit moves it,
whoever makes it (ORM or plain SQL on another connection), a rollback does not, and on PostgreSQL a commit that
ended before ``settled()`` was called is always counted by it; unknown (None) while the listener is down."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from sqlalchemy import text

from procurement.app import create_app
from procurement.db import ALCHEMY_STATE_KEY, changes_of
from procurement.pgchanges import APPLICATION_NAME, PgChanges
from procurement.settings import Settings
from tests.conftest import Database


def _pg_dsn(db: Database) -> str:
    return db.url.replace("postgresql+asyncpg", "postgresql")


async def _listening(changes: object) -> int:
    """The counter's settled value once it can be read (PostgreSQL's listener connects in the background)."""
    assert hasattr(changes, "settled")
    for _ in range(200):
        value = await changes.settled()
        if value is not None:
            return int(value)
        await asyncio.sleep(0.05)
    raise AssertionError("the change counter never became readable")


_INSERT = "INSERT INTO data_version (id, version, epoch) VALUES (:id, 0, :epoch)"


async def test_commits_elsewhere_move_it_and_rollbacks_do_not(db: Database) -> None:
    changes = changes_of(db.engine)
    assert changes is not None
    before = await _listening(changes)
    assert await changes.settled() == before  # nothing committed since

    async with db.engine.connect() as conn:
        await conn.execute(text(_INSERT), {"id": 7, "epoch": uuid.uuid4().hex})
        await conn.rollback()
    assert await changes.settled() == before

    async with db.engine.begin() as conn:
        await conn.execute(text(_INSERT), {"id": 7, "epoch": uuid.uuid4().hex})
    after_insert = await changes.settled()
    assert after_insert not in (None, before)

    async with db.engine.begin() as conn:  # a statement that changes no row still counts (statement triggers)
        await conn.execute(text("UPDATE data_version SET version = version + 1 WHERE id = 7"))
    assert await changes.settled() not in (None, after_insert)


# These are PostgreSQL's alone: SQLite's counter is its file header, read directly, with no connection to lose.
_POSTGRESQL_ONLY = pytest.mark.parametrize("database", ["postgresql"], indirect=True)


@_POSTGRESQL_ONLY
async def test_postgresql_counts_a_commit_as_soon_as_its_writer_has_seen_it(db: Database) -> None:
    """A write committed on a plain connection (as psql would), then at once ``settled()``: counted every time."""
    changes = changes_of(db.engine)
    assert isinstance(changes, PgChanges)
    await _listening(changes)
    writer = await asyncpg.connect(_pg_dsn(db))
    try:
        await writer.execute("INSERT INTO data_version (id, version, epoch) VALUES (8, 0, 'x')")
        for _ in range(100):
            before = await changes.settled()
            await writer.execute("UPDATE data_version SET version = version + 1 WHERE id = 8")
            assert await changes.settled() != before
        async with writer.transaction():
            before = await changes.settled()
            await writer.execute("TRUNCATE audit_event")
        assert await changes.settled() != before
    finally:
        await writer.close()


@_POSTGRESQL_ONLY
async def test_postgresql_counter_is_unknown_while_its_listener_is_down(db: Database) -> None:
    changes = changes_of(db.engine)
    assert isinstance(changes, PgChanges)
    held = await _listening(changes)
    admin = await asyncpg.connect(_pg_dsn(db))
    try:
        assert changes.server_pid is not None
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", changes.server_pid)
        # Gone before the terminated listener could hear this commit: a counter that trusted its old count would
        # show nothing new.
        await admin.execute("UPDATE data_version SET version = version + 1")
        assert await changes.settled() is None
        assert changes.version() is None
        back = await _listening(changes)
        assert back != held
    finally:
        await admin.close()
        await changes.close()


@_POSTGRESQL_ONLY
async def test_every_postgresql_table_has_the_change_trigger(db: Database) -> None:
    """A table made by a later migration without the trigger would let a cached read outlive a change to it."""
    async with db.engine.connect() as conn:
        missing = (
            await conn.execute(
                text(
                    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT EXISTS ("
                    "SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = 'localvalue_changes')"
                )
            )
        ).scalars()
        assert sorted(missing) == [], (
            "tables without the change trigger; add it in their migration (see migration 0011_changes)"
        )


@_POSTGRESQL_ONLY
async def test_the_app_stops_listening_when_it_shuts_down(db: Database) -> None:
    app = create_app(Settings(**{**Settings.from_env().__dict__, "database_url": db.url}))
    engine = app.state[ALCHEMY_STATE_KEY].get_engine()
    changes = changes_of(engine)
    assert isinstance(changes, PgChanges)
    admin = await asyncpg.connect(_pg_dsn(db))
    listening = "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND application_name = $2"
    try:
        async with app.lifespan():  # on this event loop, which goes on after it: only the shutdown can close it
            await _listening(changes)
            pid = changes.server_pid
            assert await admin.fetchval(listening, pid, APPLICATION_NAME) == 1
        for _ in range(200):
            if await admin.fetchval(listening, pid, APPLICATION_NAME) == 0:
                break
            await asyncio.sleep(0.05)
        assert await admin.fetchval(listening, pid, APPLICATION_NAME) == 0
    finally:
        await admin.close()
        await engine.dispose()
