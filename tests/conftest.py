"""Shared fixtures: every database test runs once on SQLite and once on PostgreSQL.

Each backend gets a fresh database for the session, migrated to head with Alembic (the real schema path,
not create_all). Tables are emptied after each test. PostgreSQL is expected at TEST_POSTGRES_URL
(default postgres@127.0.0.1:5432, trust auth); `.ci/run` starts or installs it. If it is unreachable the
PostgreSQL half fails loudly rather than skipping.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sqlite3
import tempfile
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

os.environ.setdefault("LOCALVALUE_DEBUG", "0")
# Copies of the lines written while testing stay out of the checkout.
os.environ.setdefault("LOCALVALUE_CACHE_DIR", tempfile.mkdtemp(prefix="localvalue-cache-"))

PG_SERVER_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
BACKENDS = ("sqlite", "postgresql")


@dataclass
class Database:
    backend: str
    url: str
    engine: AsyncEngine
    name: str = ""  # the file (SQLite) or database (PostgreSQL) to remove afterwards


def _pg_url(database: str) -> str:
    base, _, _ = PG_SERVER_URL.rpartition("/")
    return f"{base}/{database}"


async def create_pg_database(name: str) -> str:
    import asyncpg

    dsn = PG_SERVER_URL.replace("postgresql+asyncpg", "postgresql")
    try:
        conn = await asyncpg.connect(dsn, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL is not reachable at {PG_SERVER_URL}: {exc}. Run .ci/run or start it.")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return _pg_url(name)


async def drop_pg_database(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_SERVER_URL.replace("postgresql+asyncpg", "postgresql"), timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def alembic_upgrade(url: str, revision: str = "head") -> None:
    from alembic import command
    from alembic.config import Config

    from procurement.db import MIGRATIONS_DIR

    cfg = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url)
    command.upgrade(cfg, revision)


async def new_database(backend: str, tmp_dir: Path, label: str) -> tuple[str, str]:
    """Returns (url, name); name is the file path for SQLite, the database name for PostgreSQL."""
    if backend == "sqlite":
        path = tmp_dir / f"{label}.db"
        return f"sqlite+aiosqlite:///{path}", str(path)
    name = f"lv_{label}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    return await create_pg_database(name), name


async def copy_database(backend: str, source: str, tmp_dir: Path, label: str) -> tuple[str, str]:
    """A new database holding what ``source`` (a name as ``new_database`` returns) holds; returns (url, name)."""
    if backend == "sqlite":
        path = tmp_dir / f"{label}.db"
        with contextlib.closing(sqlite3.connect(source)) as conn:
            conn.execute("VACUUM INTO ?", (str(path),))
        return f"sqlite+aiosqlite:///{path}", str(path)
    import asyncpg

    name = f"lv_{label}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    conn = await asyncpg.connect(PG_SERVER_URL.replace("postgresql+asyncpg", "postgresql"), timeout=10)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
    finally:
        await conn.close()
    return _pg_url(name), name


@pytest.fixture(scope="session")
async def templates() -> AsyncIterator[dict[str, tuple[str, str]]]:
    """Databases built once per worker with the real commands and copied for each test that starts from them
    (``copy_database``): key -> (backend, name)."""
    made: dict[str, tuple[str, str]] = {}
    yield made
    for backend, name in made.values():
        await dispose_database(backend, name)


async def dispose_database(backend: str, name: str) -> None:
    from procurement.metrics.linecache import written

    # A copy this process writes in the background would otherwise find its database gone (and log it).
    await written()
    if backend == "postgresql":
        await drop_pg_database(name)
    else:
        Path(name).unlink(missing_ok=True)


@pytest.fixture(scope="session")
async def _databases(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, Database]]:
    """Each backend's suite database, made when a worker first needs it and kept for the whole session.

    Not a parametrised session fixture: pytest tears one of those down whenever the next test wants the other
    backend, and with tests shared out between workers that meant migrating a new database again and again.
    """
    from procurement.db import close_changes

    made: dict[str, Database] = {}
    yield made
    for database in made.values():
        await close_changes(database.engine)
        await database.engine.dispose()
        await dispose_database(database.backend, database.name)


@pytest.fixture(params=BACKENDS)
async def database(
    request: pytest.FixtureRequest, _databases: dict[str, Database], tmp_path_factory: pytest.TempPathFactory
) -> Database:
    from procurement.db import make_engine

    backend: str = request.param
    if backend not in _databases:
        url, name = await new_database(backend, tmp_path_factory.mktemp(backend), "suite")
        await asyncio.to_thread(alembic_upgrade, url)
        _databases[backend] = Database(backend=backend, url=url, engine=make_engine(url), name=name)
    return _databases[backend]


_sequences: dict[str, dict[str, str]] = {}


async def _empty_tables(db: Database) -> None:
    """Delete the rows of the tables that have any, and restart their ids.

    Only the used tables are touched: TRUNCATE of every table cost PostgreSQL most of a second per test.
    """
    from advanced_alchemy.base import metadata_registry

    tables = [t.name for t in reversed(metadata_registry.get(None).sorted_tables)]
    probe = " UNION ALL ".join(f"SELECT '{t}' WHERE EXISTS (SELECT 1 FROM {t})" for t in tables)
    async with db.engine.begin() as conn:
        used = {row[0] for row in await conn.execute(text(probe))}
        for table in tables:
            if table in used:
                await conn.execute(text(f"DELETE FROM {table}"))
        # As a freshly migrated database has it: the data version's one row, each token naming no copy yet.
        tokens = [
            c.name for c in metadata_registry.get(None).tables["data_version"].columns if c.name.endswith("_token")
        ]
        row = {"id": 1, "version": 0, "epoch": uuid.uuid4().hex, **{t: uuid.uuid4().hex for t in tokens}}
        await conn.execute(
            text(f"INSERT INTO data_version ({', '.join(row)}) VALUES ({', '.join(':' + k for k in row)})"), row
        )
        if db.backend != "postgresql" or not used:
            return
        if db.url not in _sequences:
            found = await conn.execute(
                text(
                    "SELECT table_name, pg_get_serial_sequence(quote_ident(table_name), column_name) "
                    "FROM information_schema.columns WHERE table_schema = current_schema() "
                    "AND (column_default LIKE 'nextval%' OR is_identity = 'YES')"
                )
            )
            _sequences[db.url] = {name: seq for name, seq in found if seq}
        for table in used & _sequences[db.url].keys():
            await conn.execute(text("SELECT setval(:seq, 1, false)"), {"seq": _sequences[db.url][table]})


@pytest.fixture
async def db(database: Database) -> AsyncIterator[Database]:
    """A migrated, empty database of the current backend; emptied again after the test."""
    yield database
    await _empty_tables(database)


@pytest.fixture
async def session(db: Database) -> AsyncIterator[AsyncSession]:
    maker = async_sessionmaker(db.engine, expire_on_commit=False)
    async with maker() as s:
        yield s


@pytest.fixture(scope="session")
async def _session_clients() -> AsyncIterator[dict[str, Any]]:
    """One in-process app and client per backend, made on first use and kept for the session."""
    clients: dict[str, Any] = {}
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(_dispose_apps, clients)
        clients["stack"] = stack
        yield clients


async def _dispose_apps(clients: dict[str, Any]) -> None:
    from procurement.db import ALCHEMY_STATE_KEY

    for key, client in clients.items():
        if key != "stack":
            await client.app.state[ALCHEMY_STATE_KEY].get_engine().dispose()


@pytest.fixture
async def app_client(db: Database, _session_clients: dict[str, Any]) -> AsyncIterator[Any]:
    """An in-process client of the real app on the current backend (tables emptied after each test).

    The app lives for the session while each test's rows go, so the token uses it notes are written at the end of
    the test that made them (by then their ids may be given out again), never by its timer during another test."""
    from procurement import auth

    if db.backend not in _session_clients:
        from litestar.testing import AsyncTestClient

        from procurement.app import create_app
        from procurement.settings import Settings

        settings = Settings(**{**Settings.from_env().__dict__, "database_url": db.url})
        stack: contextlib.AsyncExitStack = _session_clients["stack"]
        auth.FLUSH_USES_EVERY_S = 10.0**9
        client = await stack.enter_async_context(AsyncTestClient(app=create_app(settings)))
        _session_clients[db.backend] = client
    client = _session_clients[db.backend]
    yield client
    client.blocking_portal.call(auth.token_checks(client.app.state).uses.flush)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "database" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.db)

    # Modules with slow or browser tests go first, the schemathesis runs (the longest) before them, so no long test
    # starts last and leaves the other worker idle (with `--dist worksteal`, which evens out the workers' queues).
    def rank(item: pytest.Item) -> int:
        if item.path.name == "test_schemathesis.py":
            return 0
        return 1 if item.path in heavy else 2

    heavy = {item.path for item in items if item.get_closest_marker("slow") or item.get_closest_marker("browser")}
    items.sort(key=rank)


_outcomes: Counter[tuple[str, str]] = Counter()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call" and not (report.when == "setup" and report.outcome != "passed"):
        return
    for backend in BACKENDS:
        if f"[{backend}" in report.nodeid or f"-{backend}]" in report.nodeid or f"-{backend}-" in report.nodeid:
            _outcomes[(backend, report.outcome)] += 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _outcomes:
        return
    terminalreporter.section("database tests per backend")
    for backend in BACKENDS:
        passed = _outcomes[(backend, "passed")]
        failed = _outcomes[(backend, "failed")]
        skipped = _outcomes[(backend, "skipped")]
        terminalreporter.write_line(f"{backend:<11} {passed} passed, {failed} failed, {skipped} skipped")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def port() -> int:
    return free_port()
