"""Server time per page at demo scale: each public page (and the signed-in workspace pages, with an admin token)
fetched 30 times through the real app in-process; prints p50 and p95 per page (target: p95 under 150 ms).

Run from the repository root after `make demo-data`:
    DATABASE_URL=sqlite+aiosqlite:///$PWD/localvalue.db .venv/bin/python -m benchmarks.pages_bench

It adds one admin API token to that database (as `make screens` adds a user).
"""

from __future__ import annotations

import asyncio
import statistics
import time

from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from procurement import models as m
from procurement.app import create_app
from procurement.settings import get_settings
from tests.support.api import bearer, make_token

ROUNDS = 30
TARGET_MS = 150.0


async def _pages(url: str) -> tuple[list[str], dict[str, str]]:
    engine = create_async_engine(url)
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        anchors = list(
            await session.scalars(select(m.Statement.organisation_id).where(m.Statement.organisation_id.is_not(None)))
        )
        token = await make_token(session, "admin")  # a fresh user each run (names are unique)
        await session.commit()
    await engine.dispose()
    public = ["/", *(f"/anchors/{a}" for a in sorted(set(anchors)))]
    workspace = ["/workspace", "/workspace/lines", "/workspace/review", "/workspace/imports"]
    return public + workspace, bearer(token)


async def run() -> None:
    settings = get_settings()
    paths, headers = await _pages(settings.database_url)
    async with AsyncTestClient(app=create_app(settings)) as client:
        print(f"{'page':40} {'p50 ms':>8} {'p95 ms':>8}")
        worst = 0.0
        for path in paths:
            auth = headers if path.startswith("/workspace") else {}
            first = await client.get(path, headers=auth)  # warm caches outside the timing
            assert first.status_code == 200, f"{path}: {first.status_code}"
            timings = []
            for _ in range(ROUNDS):
                start = time.perf_counter()
                response = await client.get(path, headers=auth)
                timings.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200
            p95 = statistics.quantiles(timings, n=20)[-1]
            worst = max(worst, p95)
            print(f"{path:40} {statistics.median(timings):8.1f} {p95:8.1f}")
    verdict = "meets" if worst < TARGET_MS else "MISSES"
    print(f"slowest p95: {worst:.1f} ms; {verdict} the target of {TARGET_MS:.0f} ms")


def main() -> None:
    asyncio.run(run())


if __name__ == "__main__":
    main()
