"""Revision 0007_roles keeps what existing users could do: a reviewer from before scopes (which could act on
everything) becomes a cross-organisation reviewer, and going back down turns it into a reviewer again."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text

from procurement.db import MIGRATIONS_DIR, make_engine
from tests.conftest import BACKENDS, alembic_upgrade, dispose_database, new_database


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
async def test_reviewers_keep_their_reach_across_the_roles_revision(backend: str, tmp_path: Path) -> None:
    url, name = await new_database(backend, tmp_path, "roles")
    engine = make_engine(url)
    cfg = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url)

    async def roles() -> list[tuple[str, str]]:
        async with engine.connect() as conn:
            return [tuple(r) for r in (await conn.execute(text("SELECT name, role FROM app_user ORDER BY id"))).all()]

    try:
        await asyncio.to_thread(alembic_upgrade, url, "0006")
        async with engine.begin() as conn:
            for user, role in (("ops", "admin"), ("rev@icb", "reviewer"), ("jo@walsall", "editor")):
                await conn.execute(
                    text(
                        "INSERT INTO app_user (name, role, is_active, created_at, updated_at) "
                        "VALUES (:n, :r, :a, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                    ),
                    {"n": user, "r": role, "a": True},
                )
        await asyncio.to_thread(alembic_upgrade, url, "0007_roles")
        assert await roles() == [("ops", "admin"), ("rev@icb", "cross_reviewer"), ("jo@walsall", "editor")]
        await asyncio.to_thread(command.downgrade, cfg, "0006")
        assert await roles() == [("ops", "admin"), ("rev@icb", "reviewer"), ("jo@walsall", "editor")]
        await asyncio.to_thread(alembic_upgrade, url, "head")
    finally:
        await engine.dispose()
        await dispose_database(backend, name)
