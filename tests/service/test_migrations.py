"""Migrations are the only schema path: upgrade an empty database, find no drift, go down and up again, also
with the demo data present; a downgrade that would delete published statements is refused unless forced."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from advanced_alchemy.base import metadata_registry
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

import procurement.models  # noqa: F401
from procurement.db import MIGRATIONS_DIR, make_engine
from tests.conftest import BACKENDS, dispose_database, new_database
from tests.support.cli import localvalue
from tests.support.demo import load_demo, revision, table_columns, table_rows

T = TypeVar("T")


def _config(url: str) -> Config:
    cfg = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True, "render_as_batch": True})
    return list(compare_metadata(context, metadata_registry.get(None)))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


@pytest.mark.parametrize("backend", BACKENDS)
async def test_upgrade_matches_models_and_round_trips(backend: str, tmp_path: Path) -> None:
    url, name = await new_database(backend, tmp_path, "migrations")
    engine = make_engine(url)
    try:
        await asyncio.to_thread(command.upgrade, _config(url), "head")
        async with engine.connect() as conn:
            diff = await conn.run_sync(_diff)
            tables = await conn.run_sync(_tables)
        assert diff == [], f"models and migrations differ on {backend}: {diff}"
        expected = {t.name for t in metadata_registry.get(None).sorted_tables}
        assert expected <= tables

        await asyncio.to_thread(command.downgrade, _config(url), "base")
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) <= {"alembic_version"}

        await asyncio.to_thread(command.upgrade, _config(url), "head")
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()
        await dispose_database(backend, name)


async def _read(engine: AsyncEngine, fn: Callable[[Connection], T]) -> T:
    # A new connection each time: the schema changes between reads, and a pooled asyncpg connection's prepared
    # statements would then be refused as stale.
    await engine.dispose()
    async with engine.connect() as conn:
        return await conn.run_sync(fn)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
async def test_round_trip_with_the_demo_data(backend: str, tmp_path: Path) -> None:
    url, name = await new_database(backend, tmp_path, "migrations_data")
    engine = make_engine(url)
    try:
        localvalue("database", "upgrade", "--no-prompt", database_url=url)
        load_demo(url)
        before = await _read(engine, table_rows)
        head = await _read(engine, revision)

        # Going below the statements revision would delete a published statement: refused, nothing touched.
        refused = localvalue("database", "downgrade", "0004", "--no-prompt", database_url=url, check=False)
        assert refused.returncode == 1
        assert refused.stderr.strip().splitlines()[-1] == (
            "Error: downgrading below revision 0005 deletes the 1 published statement(s); "
            "back them up first (`localvalue backup PATH`), then add --force"
        )
        assert "Traceback" not in refused.stderr
        assert await _read(engine, revision) == head
        assert await _read(engine, _diff) == []
        assert await _read(engine, table_rows) == before

        # Down to the feed-imports schema and back: every row of what remains is kept, column for column.
        localvalue("database", "downgrade", "0002", "--no-prompt", "--force", database_url=url)
        columns = await _read(engine, table_columns)
        kept = await _read(engine, table_rows)
        assert set(kept) == {t for t in before if t in columns}
        assert {t: len(rows) for t, rows in kept.items()} == {t: len(before[t]) for t in kept}
        assert not any(t.startswith("_alembic_tmp") for t in await _read(engine, _tables))
        await asyncio.to_thread(command.upgrade, _config(url), "head")
        assert await _read(engine, _diff) == []
        assert await _read(engine, functools.partial(table_rows, columns=columns)) == kept

        # All the way down (the statement went with 0005) and up again.
        await asyncio.to_thread(command.downgrade, _config(url), "base")
        assert await _read(engine, _tables) <= {"alembic_version"}
        await asyncio.to_thread(command.upgrade, _config(url), "head")
        assert await _read(engine, _diff) == []
    finally:
        await engine.dispose()
        await dispose_database(backend, name)
