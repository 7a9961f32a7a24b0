"""GET /health: 200 with the schema revision while the database answers, 503 "degraded" naming the error when it
does not (a load balancer then takes the worker out)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from litestar.testing import AsyncTestClient

from procurement.app import create_app
from procurement.settings import Settings
from tests.conftest import Database


def _settings(url: str) -> Settings:
    return Settings(**{**Settings.from_env().__dict__, "database_url": url})


async def test_health_answers_every_concurrent_caller(db: Database) -> None:
    async with AsyncTestClient(app=create_app(_settings(db.url))) as client:
        answers = await asyncio.gather(*(client.get("/health") for _ in range(8)))
    assert {a.status_code for a in answers} == {200}
    assert {a.json()["database"]["status"] for a in answers} == {"ok"}
    assert all(a.json()["database"]["revision"] for a in answers)


async def test_health_reports_a_database_that_is_gone(db: Database, tmp_path: Path) -> None:
    gone = (
        f"sqlite+aiosqlite:///{tmp_path}/no-such-directory/gone.db"
        if db.backend == "sqlite"
        else "postgresql+asyncpg://postgres@127.0.0.1:1/gone"  # nothing listens on port 1
    )
    async with AsyncTestClient(app=create_app(_settings(gone))) as client:
        answer = await client.get("/health")
    assert answer.status_code == 503
    body = answer.json()
    assert (body["status"], body["database"]["status"], body["database"]["revision"]) == ("degraded", "error", None)
    assert body["database"]["dialect"] == db.backend
    assert body["database"]["detail"]
