"""Kill a real `localvalue import contracts-finder` part-way with a signal, resume it, compare with a clean run."""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import subprocess
import time

import pytest
from sqlalchemy import select

from procurement import models as m
from procurement.imports.runs import FeedParameters, run_feed_import
from procurement.imports.service import CONTRACTS_FINDER
from tests.conftest import Database, _empty_tables
from tests.support.cli import LOCALVALUE, cli_env, localvalue
from tests.support.feedserver import running_feed_server
from tests.support.imports import FAST, FAST_CLI, diff, snapshot
from tests.support.paths import REPO_DIR

START = dt.datetime(2025, 1, 20, tzinfo=dt.UTC)
END = dt.datetime(2025, 3, 12, tzinfo=dt.UTC)  # --to 2025-03-11 includes that day
# Every page answers after 0.3 s, so the ten requests of the run take long enough to kill it part-way.
SLOW = {"page_size": 25, "faults": [{"kind": "slow", "delay_s": 0.3}]}


def _command(base_url: str) -> list[str]:
    return [
        "import", "contracts-finder", "--from", "2025-01-20", "--to", "2025-03-11", "--window-days", "15",
        "--base-url", base_url, *FAST_CLI,
    ]  # fmt: skip


async def _runs(db: Database) -> list[m.ImportRun]:
    async with db.engine.connect() as conn:
        return list((await conn.execute(select(m.ImportRun).order_by(m.ImportRun.id))).all())  # type: ignore[arg-type]


async def _kill_after_pages(db: Database, process: subprocess.Popen[str], sig: int, pages: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        runs = await _runs(db)
        if runs and runs[-1].pages >= pages:
            process.send_signal(sig)
            return
        assert process.poll() is None, process.communicate()
        await asyncio.sleep(0.05)
    raise AssertionError("the import never stored a page")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
async def test_killed_run_resumes_to_the_clean_state(db: Database, sig: int) -> None:
    with running_feed_server({"page_size": 25}) as server:
        clean_run = await run_feed_import(
            db.engine, CONTRACTS_FINDER, FeedParameters(START, END, dt.timedelta(days=15), server.base_url), policy=FAST
        )
    assert clean_run.counts.new == 180
    clean = await snapshot(db.engine)
    await _empty_tables(db)

    with running_feed_server(SLOW) as server:
        process = subprocess.Popen(
            [LOCALVALUE, *_command(server.base_url)],
            env=cli_env(db.url),
            cwd=REPO_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            await _kill_after_pages(db, process, sig, pages=3)
            _out, err = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
        [killed] = await _runs(db)
        assert 3 <= killed.pages < 10
        assert killed.checkpoint is not None
        if sig == signal.SIGTERM:
            assert process.returncode == 130
            assert killed.status == "interrupted"
            assert "resume" in err
        else:
            assert process.returncode == -signal.SIGKILL
            assert killed.status == "running"  # nobody could record anything

        # The same command again finds the unfinished run and continues from its checkpoint.
        resumed = localvalue(*_command(server.base_url), database_url=db.url, timeout=120)
    assert f"resuming run {killed.id}" in resumed.stderr
    summary = resumed.stdout.strip().splitlines()[-1]
    first, second = await _runs(db)
    assert second.resumed_from_id == first.id
    assert first.status == "interrupted"
    assert second.status == "completed"
    # Nothing was fetched twice except, at most, the page in flight when the signal came (never stored).
    assert first.new + second.new == 180
    assert summary == f"new {second.new}, changed 0, unchanged 0, skipped 0, failed 0"
    assert first.pages + second.pages == 10
    assert diff(clean, await snapshot(db.engine)) == {}


@pytest.mark.slow
async def test_sync_continues_from_the_watermark(db: Database) -> None:
    with running_feed_server({"page_size": 25}) as server:
        first = localvalue(
            "import", "contracts-finder", "--from", "2025-01-20", "--to", "2025-01-31", "--window-days", "15",
            "--base-url", server.base_url, *FAST_CLI, database_url=db.url,
        )  # fmt: skip
        assert first.stdout.strip() == "new 100, changed 0, unchanged 0, skipped 0, failed 0"
        synced = localvalue(
            "import", "sync", "--source", "contracts_finder", "--base-url", server.base_url, *FAST_CLI,
            database_url=db.url, timeout=120,
        )  # fmt: skip
        starts = [r.target for r in server.requests if "cursor" not in r.target]
    # The 80 releases of 11 March 2025 come in; the 2022 ones (before the watermark) are never asked for.
    assert synced.stdout.strip() == "contracts_finder: new 80, changed 0, unchanged 0, skipped 0, failed 0"
    assert "publishedFrom=2025-02-01T00%3A00%3A00" in starts[1]
    async with db.engine.connect() as conn:
        mark = (await conn.execute(select(m.FeedWatermark.watermark))).scalar_one()
    assert mark > dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
