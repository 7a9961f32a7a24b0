"""Feed imports against a real local HTTP server serving the real samples page by page, with faults.

Each faulty run is compared with a clean run of the same range on the same backend: same contracts,
suppliers, shares and raw releases, nothing lost or duplicated, and every problem is a note.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from procurement import models as m
from procurement.imports.runs import FeedParameters, run_feed_import
from procurement.imports.service import CONTRACTS_FINDER, RunResult
from tests.conftest import Database, _empty_tables
from tests.support.feedserver import running_feed_server
from tests.support.imports import FAST, diff, snapshot

# 100 releases on 2025-01-23 and 80 on 2025-03-11: four 15-day windows, two of them empty.
START = dt.datetime(2025, 1, 20, tzinfo=dt.UTC)
END = dt.datetime(2025, 3, 12, tzinfo=dt.UTC)
WINDOW = dt.timedelta(days=15)


async def _import(db: Database, script: dict[str, Any], window: dt.timedelta = WINDOW) -> tuple[RunResult, list[Any]]:
    with running_feed_server(script) as server:
        params = FeedParameters(START, END, window, server.base_url)
        result = await run_feed_import(db.engine, CONTRACTS_FINDER, params, policy=FAST)
        return result, server.requests


async def _notes(db: Database, run_id: int) -> list[Any]:
    async with db.engine.connect() as conn:
        return list(await conn.execute(select(m.ImportNote).where(m.ImportNote.run_id == run_id)))


async def _clean(db: Database) -> dict[str, Any]:
    result, _ = await _import(db, {"page_size": 25})
    assert result.counts.summary() == "new 180, changed 0, unchanged 0, skipped 0, failed 0"
    state = await snapshot(db.engine)
    await _empty_tables(db)
    return state


async def test_transient_faults_end_in_the_clean_state(db: Database) -> None:
    clean = await _clean(db)
    # Request numbers count retries: 1-3 window 1 page 1 (two 403s), 4-5 page 2 (429), 6-7 page 3 (503),
    # 8-9 page 4 (slower than the 0.5 s timeout), 10-11 empty window 2 (truncated JSON), 12-13 empty window 3
    # (connection closed mid-body), 14 window 4 page 1 (invalid UTF-8), 15 page 2 (double-encoded),
    # 16 page 3, 17 page 4 whose links.next points back at itself (a repeated page).
    script = {
        "page_size": 25,
        "faults": [
            {"kind": "status", "status": 403, "requests": [1, 2]},
            {"kind": "status", "status": 429, "requests": [4]},
            {"kind": "status", "status": 503, "requests": [6]},
            {"kind": "slow", "delay_s": 1.5, "requests": [8]},
            {"kind": "truncate", "requests": [10]},
            {"kind": "truncate", "mode": "connection", "requests": [12]},
            {"kind": "bad_utf8", "requests": [14]},
            {"kind": "double_encoded", "requests": [15]},
            {"kind": "repeat_next", "requests": [17]},
        ],
    }
    result, requests = await _import(db, script)
    assert [r.fault for r in requests if r.fault] == [
        "status", "status", "status", "status", "slow", "truncate", "truncate", "bad_utf8", "double_encoded",
        "repeat_next",
    ]  # fmt: skip
    assert result.status == "completed"
    assert result.counts.summary() == "new 180, changed 0, unchanged 0, skipped 0, failed 0"
    state = await snapshot(db.engine)
    # The client cannot tell that the looping page was the window's last, so the watermark stays at the start
    # of that window and the next `sync` reads it again (harmless: unchanged releases write nothing).
    assert state.pop("watermarks") == [("contracts_finder", dt.datetime(2025, 3, 6, tzinfo=dt.UTC))]
    assert clean.pop("watermarks") == [("contracts_finder", END)]
    assert diff(clean, state) == {}
    messages = [n.message for n in await _notes(db, result.run_id)]
    assert any("invalid UTF-8" in msg for msg in messages)
    assert any("repeats an already-fetched page" in msg for msg in messages)


async def test_bad_releases_and_invalid_numbers_are_notes(db: Database) -> None:
    clean = await _clean(db)
    script = {
        "page_size": 25,
        "faults": [
            {"kind": "drop_ids", "n": 1, "requests": [2]},
            {"kind": "bad_numbers", "huge": 1, "requests": [8]},
        ],
    }
    result, _ = await _import(db, script)
    assert result.counts.skipped == 1
    assert result.counts.new == 179
    notes = await _notes(db, result.run_id)
    [skip] = [n for n in notes if n.message.startswith("release without ocid")]
    assert skip.release_id is not None
    assert any("1e9999" in n.message for n in notes)
    state = await snapshot(db.engine)
    # Only the dropped release is missing from the archive; everything else is as in the clean run.
    assert len(state["raw"]) == 179
    assert {r[2] for r in clean["raw"]} - {r[2] for r in state["raw"]} == {skip.release_id}


async def test_page_without_next_is_flagged_and_the_watermark_waits(db: Database) -> None:
    clean = await _clean(db)
    # One 60-day window, pages of 100: the first page loses links.next, so 80 releases are not reached.
    result, _ = await _import(
        db, {"page_size": 100, "faults": [{"kind": "no_next", "requests": [1]}]}, dt.timedelta(days=60)
    )
    assert result.counts.new == 100
    notes = await _notes(db, result.run_id)
    assert any("without links.next" in n.message for n in notes)
    async with db.engine.connect() as conn:
        assert (await conn.execute(select(m.FeedWatermark))).first() is None  # `sync` will read the window again
    # Reading the range again completes it. Releases now arrive in another order, so which spelling names a
    # supplier matched by name ("WSP UK Ltd" or "WSP UK Limited") and which notice's declaration is the
    # latest can differ; everything that does not depend on arrival order equals the clean run.
    again, _ = await _import(db, {"page_size": 25})
    assert again.counts.summary() == "new 80, changed 0, unchanged 100, skipped 0, failed 0"
    state = await snapshot(db.engine)
    assert state["raw"] == clean["raw"]
    assert state["organisations"] == clean["organisations"]
    assert len(state["suppliers"]) == len(clean["suppliers"])

    def amounts(contracts: list[Any]) -> list[Any]:
        return [(*c[:13], tuple(s[1:] for s in c[13])) for c in contracts]

    assert amounts(state["contracts"]) == amounts(clean["contracts"])
