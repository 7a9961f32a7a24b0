"""A run still recorded as running whose process died reads as interrupted (API and data-quality page), with its
last progress and the command that resumes it; computed from the import lock on read, nothing written."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import clock
from procurement import models as m
from procurement.imports.locks import import_lock
from procurement.imports.runs import PROCESS_STOPPED, file_parameters
from procurement.imports.service import CONTRACTS_FINDER, ImportService
from tests.conftest import Database
from tests.support.api import bearer, make_token
from tests.support.imports import CF_FILES
from tests.support.people import make_person, sign_in


@pytest.fixture
async def client(app_client: Any) -> AsyncIterator[Any]:
    app_client.cookies.clear()
    yield app_client
    app_client.cookies.clear()


async def _running_run(db: Database, session: AsyncSession, last_progress: dt.datetime) -> int:
    """A run row exactly as `localvalue import file` leaves it when killed part-way: running, with a checkpoint,
    its start and its last note (its last sign of life) at ``last_progress``."""
    service = ImportService(db.engine, CONTRACTS_FINDER)
    run_id = await service.start_run("file", file_parameters(list(CF_FILES), 10, None))
    await session.execute(
        update(m.ImportRun)
        .where(m.ImportRun.id == run_id)
        .values(
            started_at=last_progress - dt.timedelta(minutes=20),
            checkpoint={"file_index": 0, "item_index": 120},
            fetched=120,
            new=120,
        )
    )
    session.add(m.ImportNote(run_id=run_id, level="warning", message="party without name", created_at=last_progress))
    await session.commit()
    return run_id


def _text(html: str) -> str:
    return re.sub(r"\s+([:.,])", r"\1", re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def _instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


async def _status_in_database(db: Database, run_id: int) -> str:
    async with db.engine.connect() as conn:
        return str((await conn.execute(select(m.ImportRun.status).where(m.ImportRun.id == run_id))).scalar_one())


async def test_a_run_whose_process_died_reads_as_interrupted_without_a_write(
    db: Database, session: AsyncSession, client: Any
) -> None:
    last = (clock.now() - dt.timedelta(hours=3)).replace(microsecond=0)
    run_id = await _running_run(db, session, last)
    token = bearer(await make_token(session, "reviewer"))

    [listed] = (await client.get("/imports", headers=token)).json()["items"]
    one = (await client.get(f"/imports/{run_id}", headers=token)).json()
    for run in (listed, one):
        assert run["id"] == run_id
        assert run["status"] == "interrupted"
        assert run["error"] == PROCESS_STOPPED
        assert _instant(run["last_progress_at"]) == last
        assert run["resume_command"] == f"localvalue import resume {run_id}"
        assert run["finished_at"] is None
    # Filters agree with what is shown.
    assert (await client.get("/imports?status=running", headers=token)).json()["total"] == 0
    interrupted = (await client.get("/imports?status=interrupted", headers=token)).json()
    assert [r["id"] for r in interrupted["items"]] == [run_id]

    # The reviewers' data-quality page says so, with the same command.
    await make_person(session, "rev@nhs.net", "reviewer")
    assert (await sign_in(client, "rev@nhs.net")).status_code in (200, 303)
    page = _text((await client.get("/workspace/imports")).text)
    assert "1 import run stopped without finishing" in page
    assert f"Run {run_id}: its process stopped; last progress" in page
    assert f"localvalue import resume {run_id}" in page
    detail = _text((await client.get(f"/workspace/imports/{run_id}")).text)
    assert "interrupted: its process stopped; last progress" in detail

    # Reading wrote nothing: the row is still running until an import of the source (or a resume) marks it.
    assert await _status_in_database(db, run_id) == "running"
    async with import_lock(db.engine, CONTRACTS_FINDER):
        pass
    assert await _status_in_database(db, run_id) == "interrupted"
    after = (await client.get(f"/imports/{run_id}", headers=token)).json()
    assert (after["status"], after["resume_command"], after["last_progress_at"]) == ("interrupted", None, None)


async def test_a_live_run_reads_as_running_however_long_its_batch_takes(
    db: Database, session: AsyncSession, client: Any
) -> None:
    token = bearer(await make_token(session, "reviewer"))
    async with import_lock(db.engine, CONTRACTS_FINDER) as lock:
        run_id = await _running_run(db, session, clock.now() - dt.timedelta(hours=3))
        await lock.claim(run_id)
        run = (await client.get(f"/imports/{run_id}", headers=token)).json()
        assert (run["status"], run["last_progress_at"], run["resume_command"]) == ("running", None, None)
        running = (await client.get("/imports?status=running", headers=token)).json()
        assert [r["id"] for r in running["items"]] == [run_id]
    # The holder went away without finishing the run (as a killed process does): now it reads as stopped.
    run = (await client.get(f"/imports/{run_id}", headers=token)).json()
    assert run["status"] == "interrupted"
    assert run["resume_command"] == f"localvalue import resume {run_id}"
