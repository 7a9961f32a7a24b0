"""Migrations are the only schema path: upgrade an empty database, find no drift, go down and up again."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from advanced_alchemy.base import metadata_registry
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

import procurement.models  # noqa: F401
from procurement.db import MIGRATIONS_DIR, make_engine
from tests.conftest import BACKENDS, dispose_database, new_database


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
