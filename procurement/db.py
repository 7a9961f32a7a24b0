"""Database engine, the advanced-alchemy config, and sessions for work outside a request."""

from __future__ import annotations

import sqlite3
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from advanced_alchemy.extensions.litestar import (
    AlembicAsyncConfig,
    AsyncSessionConfig,
    SQLAlchemyAsyncConfig,
)
from advanced_alchemy.extensions.litestar._utils import delete_aa_scope_state, get_aa_scope_state
from advanced_alchemy.extensions.litestar.plugins.init.config.asyncio import autocommit_handler_maker
from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from procurement.errors import NotFound
from procurement.filewrites import FileWrites
from procurement.pgchanges import PgChanges
from procurement.settings import Settings, get_settings

T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
VERSION_TABLE = "alembic_version"
ALCHEMY_STATE_KEY = "localvalue_alchemy"
# A pooled connection idle for longer than this is pinged before use (see _ping_if_idle).
PING_AFTER_IDLE_S = 10.0


def _enable_sqlite_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    # SQLite ignores foreign keys unless asked on every connection.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, echo=echo)
        event.listen(engine.sync_engine, "connect", _enable_sqlite_foreign_keys)
        return engine
    engine = create_async_engine(url, echo=echo, pool_size=5, max_overflow=5)
    event.listen(engine.sync_engine, "connect", _mark_used)
    event.listen(engine.sync_engine, "checkout", _ping_if_idle)
    event.listen(engine.sync_engine, "checkin", _mark_used)
    return engine


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """A connection idle for a while (the server may have restarted or a proxy dropped it) is pinged before use;
    a busy one is not. SQLAlchemy's pool_pre_ping would cost three round trips (BEGIN, ping, ROLLBACK on asyncpg)
    on every request."""
    if time.monotonic() - record.info.get("used_at", 0.0) < PING_AFTER_IDLE_S:
        return
    try:
        dbapi_connection.ping()
    except Exception as error:  # any failure means: do not use this connection
        raise exc.DisconnectionError from error  # the pool discards it and checks out another


def _mark_used(_dbapi_connection: Any, record: Any) -> None:
    record.info["used_at"] = time.monotonic()


class SqliteChanges:
    """SQLite's change counter for one database file, read on the calling thread.

    In a rollback-journal mode (SQLite's default, and ours) every commit writes the database file before it
    ends, so a count of the writes to the file (``procurement.filewrites``: one ``ioctl`` when there were none)
    moves for every commit that has ended, whoever made it; a write seen before its commit ended only means a
    read that waits for that commit. In WAL mode a commit ends in the shared-memory index, which no write
    reports, and where the file cannot be watched, the counter is ``PRAGMA data_version`` on a read-only
    connection of this process: a shared lock and the file header, microseconds and eight system calls, with no
    hop to aiosqlite's thread; a writer holding the file answers "busy" at once (no wait on the event loop) and
    the counter is then unknown (None), as it is when the file cannot be read. The two never give the same
    value (negative and positive), so a value from one is never taken for the other's."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._connection: sqlite3.Connection | None = None
        self._writes = FileWrites(path)
        self._journal: tuple[int, bool] | None = None  # the write count when the header was read; rollback mode?

    def version(self) -> int | None:
        written = self._writes.count()
        if written is not None:
            if self._journal is None or self._journal[0] != written:
                # Leaving a rollback mode writes the header, so it is read again after any write.
                self._journal = (written, _rollback_journal(self._path))
            if self._journal[1]:
                return -1 - written
        return self._data_version()

    def _data_version(self) -> int | None:
        try:
            if self._connection is None:
                # Opened once and kept: values from two connections cannot be compared.
                connection = sqlite3.connect(
                    f"{self._path.as_uri()}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
                )
                connection.execute("PRAGMA busy_timeout=0")
                self._connection = connection
            row = self._connection.execute("PRAGMA data_version").fetchone()
        except sqlite3.Error:
            return None
        return int(row[0])

    async def settled(self) -> int | None:
        # The file's writes and its header are counted when they happen, whoever made them.
        return self.version()


_SQLITE_MAGIC = b"SQLite format 3\x00"


def _rollback_journal(path: Path) -> bool:
    """Whether the database file's header says a rollback journal (read and write versions 1), not WAL (2)."""
    try:
        with path.open("rb") as file:
            header = file.read(20)
    except OSError:
        return False
    return header[:16] == _SQLITE_MAGIC and header[18:20] == b"\x01\x01"


_CHANGES: weakref.WeakKeyDictionary[Any, SqliteChanges | PgChanges] = weakref.WeakKeyDictionary()


def changes_of(engine: AsyncEngine) -> SqliteChanges | PgChanges | None:
    """The change counter of an engine's database, one per engine: the SQLite file's, or PostgreSQL's counted
    notifications (``procurement.pgchanges``); None for an in-memory database (its reads are not skipped)."""
    url = engine.url
    changes = _CHANGES.get(engine.sync_engine)
    if changes is not None:
        return changes
    if url.get_backend_name() == "postgresql":
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        changes = _CHANGES[engine.sync_engine] = PgChanges(dsn)
        return changes
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:" or url.query:
        return None
    changes = _CHANGES[engine.sync_engine] = SqliteChanges(Path(url.database).resolve())
    return changes


async def close_changes(engine: AsyncEngine) -> None:
    """Stops the engine's PostgreSQL listener, if one was started (at shutdown, before the engine goes)."""
    changes = _CHANGES.get(engine.sync_engine)
    if isinstance(changes, PgChanges):
        await changes.close()


def _end_request_session(session_scope_key: str) -> Any:
    """advanced-alchemy's autocommit (commit on 2xx, else roll back, then close), skipped for a request session
    that holds nothing: no transaction open and no pending change (a handler answered from a cache), where commit
    and close would only cost time. Such a session holds no connection."""
    autocommit = autocommit_handler_maker(session_scope_key=session_scope_key)

    async def handler(message: Any, scope: Any) -> None:
        session: AsyncSession | None = get_aa_scope_state(scope, session_scope_key)
        if session is None:
            return
        if not session.in_transaction() and not (session.new or session.dirty or session.deleted):
            delete_aa_scope_state(scope, session_scope_key)
            return
        await autocommit(message, scope)

    return handler


def make_alchemy_config(settings: Settings) -> SQLAlchemyAsyncConfig:
    config = SQLAlchemyAsyncConfig(
        engine_instance=make_engine(settings.database_url, echo=settings.echo_sql),
        session_config=AsyncSessionConfig(expire_on_commit=False),
        alembic_config=AlembicAsyncConfig(
            version_table_name=VERSION_TABLE,
            script_config=str(MIGRATIONS_DIR / "alembic.ini"),
            script_location=str(MIGRATIONS_DIR),
            compare_type=True,
            render_as_batch=True,
        ),
    )
    # The key is made unique per config (tests build several apps in one process), so it is known only now.
    config.before_send_handler = _end_request_session(config.session_scope_key)
    return config


@lru_cache(maxsize=1)
def get_alchemy_config() -> SQLAlchemyAsyncConfig:
    return make_alchemy_config(get_settings())


@asynccontextmanager
async def session_scope(config: SQLAlchemyAsyncConfig | None = None) -> AsyncIterator[AsyncSession]:
    """A session for CLI commands and jobs: commit on success, roll back on error."""
    cfg = config or get_alchemy_config()
    async with cfg.get_session() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


async def get_or_not_found(session: AsyncSession, model: type[T], ident: int, what: str) -> T:
    """The row with this primary key, or NotFound naming what was asked for ("No contract with id 7.")."""
    row = await session.get(model, ident)
    if row is None:
        raise NotFound(f"No {what} with id {ident}.")
    return row


async def fetch_frame(session: AsyncSession, sql: str, schema: dict[str, Any]) -> Any:
    """A polars frame of one SELECT (no parameters: callers put only integers they made into ``sql``), read at
    the driver so no per-row SQLAlchemy object is made: PostgreSQL streams it as CSV with COPY, SQLite hands each
    column over as one JSON array (see ``_sqlite_columns``). ``schema`` maps each selected column, in order, to a
    polars type."""
    import io

    import polars as pl

    conn = await session.connection()
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    names = list(schema)
    if conn.dialect.name == "postgresql":
        buffer = io.BytesIO()
        await driver.copy_from_query(sql, output=buffer, format="csv")
        buffer.seek(0)
        as_read = {k: (pl.String if v in (pl.Boolean, pl.Date) else v) for k, v in schema.items()}
        frame = (
            pl.read_csv(buffer, has_header=False, new_columns=names, schema=as_read)
            if buffer.getbuffer().nbytes
            else None
        )
        if frame is None:
            return pl.DataFrame(schema=schema)
        return frame.with_columns(
            [(pl.col(k) == "t").alias(k) for k, v in schema.items() if v == pl.Boolean]
            + [pl.col(k).str.to_date("%Y-%m-%d") for k, v in schema.items() if v == pl.Date]
        )
    if any(v == pl.Float64 for v in schema.values()):
        # SQLite writes a REAL into JSON with 15 significant digits, which need not give back the same float.
        return _sqlite_frame(await driver.execute_fetchall(sql), schema)
    return await _sqlite_columns(driver, sql, schema)


async def _sqlite_columns(driver: Any, sql: str, schema: dict[str, Any]) -> Any:
    """The rows of ``sql`` as columns, each built by SQLite as one JSON array and decoded by polars: a Python
    object per value (what fetching rows makes) costs more than the query. The arrays are aggregated in one
    pass over the same rows, so they line up, in the query's order (SQLite keeps a FROM-clause subquery's
    ORDER BY when the outer query is a plain aggregate of it)."""
    import polars as pl

    names = [f"c{i}" for i in range(len(schema))]
    arrays = ", ".join(f"json_group_array({n})" for n in names)
    (row,) = await driver.execute_fetchall(f"WITH q({', '.join(names)}) AS ({sql}) SELECT count(*), {arrays} FROM q")  # noqa: S608 (the caller's own query)
    if not row[0]:
        return pl.DataFrame(schema=schema)
    series = []
    for (name, dtype), text in zip(schema.items(), row[1:], strict=True):
        as_read = pl.String if dtype == pl.Date else pl.Int64 if dtype == pl.Boolean else dtype
        values = pl.Series(name, [text], pl.String).str.json_decode(pl.List(as_read)).explode()
        series.append(_typed(values, dtype))
    return pl.DataFrame(series)


def _sqlite_frame(rows: Any, schema: dict[str, Any]) -> Any:
    import polars as pl

    if not rows:
        return pl.DataFrame(schema=schema)
    columns = list(zip(*rows, strict=True))
    series = []
    for (name, dtype), values in zip(schema.items(), columns, strict=True):
        as_read = pl.String if dtype == pl.Date else pl.Int64 if dtype == pl.Boolean else dtype
        series.append(_typed(pl.Series(name, values, dtype=as_read), dtype))
    return pl.DataFrame(series)


def _typed(values: Any, dtype: Any) -> Any:
    """SQLite's form of a column (dates as ISO text, booleans as 0 / 1) in its polars type."""
    import polars as pl

    if dtype == pl.Date:
        return values.str.to_date("%Y-%m-%d")
    if dtype == pl.Boolean:
        return values.cast(pl.Boolean)
    return values
