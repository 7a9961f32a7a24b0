"""Import runs and notes through the API: paged lists, one run, notes, streamed CSV, and who may read them."""

from __future__ import annotations

import csv
import io
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from procurement.imports.runs import run_file_import
from procurement.imports.service import CONTRACTS_FINDER
from tests.conftest import Database
from tests.support.api import bearer, make_token
from tests.support.imports import CF_FILES


async def test_runs_and_notes_are_visible_to_token_holders(
    db: Database, session: AsyncSession, app_client: Any
) -> None:
    first = await run_file_import(db.engine, CONTRACTS_FINDER, list(CF_FILES))
    second = await run_file_import(db.engine, CONTRACTS_FINDER, list(CF_FILES))
    token = await make_token(session, "reviewer")

    assert (await app_client.get("/imports")).status_code == 401

    page = (await app_client.get("/imports?limit=1", headers=bearer(token))).json()
    assert page["total"] == 2
    assert page["limit"] == 1
    [latest] = page["items"]
    assert latest["id"] == second.run_id
    assert (latest["new"], latest["unchanged"], latest["notes"]) == (0, 280, 0)

    run = (await app_client.get(f"/imports/{first.run_id}", headers=bearer(token))).json()
    assert run["status"] == "completed"
    assert (run["fetched"], run["new"], run["changed"], run["skipped"], run["failed"]) == (280, 280, 0, 0, 0)
    assert run["parameters"]["paths"] == [str(p) for p in CF_FILES]
    assert run["notes"] == 5

    notes = (await app_client.get(f"/imports/{first.run_id}/notes?limit=2", headers=bearer(token))).json()
    assert notes["total"] == 5
    assert len(notes["items"]) == 2
    everything = (await app_client.get(f"/imports/{first.run_id}/notes", headers=bearer(token))).json()["items"]
    # The nameless supplier party of the 2025 sample (GB-CFS-173) is reported where it is.
    [nameless] = [n for n in everything if n["message"] == "party without name"]
    assert nameless["path"] == "parties[GB-CFS-173]"
    assert nameless["ocid"] == "ocds-b5fd17-1dfbc9b2-d863-427c-9a37-856d6c4b364d"

    response = await app_client.get(f"/imports/{first.run_id}/notes.csv", headers=bearer(token))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 5
    assert {r["message"] for r in rows} == {n["message"] for n in everything}

    warnings = (await app_client.get(f"/imports/{first.run_id}/notes?level=warning", headers=bearer(token))).json()
    assert warnings["total"] == 5


async def test_unknown_run_is_a_404_problem(db: Database, session: AsyncSession, app_client: Any) -> None:
    token = await make_token(session, "reviewer")
    for path in ("/imports/999", "/imports/999/notes", "/imports/999/notes.csv"):
        response = await app_client.get(path, headers=bearer(token))
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("application/problem+json")
    response = await app_client.get("/imports/1/notes?level=fatal", headers=bearer(token))
    assert response.status_code == 400
