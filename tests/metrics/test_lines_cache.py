"""The copy of the lines on disk behind /metrics (``linecache``) is always the lines as the database holds them: a
change to the lines by any writer (the API, an import, plain SQL, a transaction's own uncommitted writes) gives a
new token and a new copy (written in the background by the first read that misses it); a change that leaves the
lines alone (an override, a local area) keeps the copy."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from procurement import models as m
from procurement.imports.runs import run_file_import
from procurement.imports.service import CONTRACTS_FINDER
from procurement.metrics import linecache
from procurement.metrics import lines as lines_module
from tests.conftest import Database
from tests.support.copies import by_sql, check_copy, copy_of, make_place, post_contract
from tests.support.paths import FEEDS_DIR

PAGE = FEEDS_DIR / "contracts-finder" / "ocds-search-page-2022-10-20.json"


async def _same_as_the_database(s: AsyncSession, change: str, *, copied: bool = True) -> None:
    """The lean lines of every buyer, and of one, read through the copy equal those read from the tables
    (``copied``: and the copy is there after)."""
    buyers = sorted(set((await s.scalars(select(m.Contract.buyer_id))).all()))
    for ids in (buyers, buyers[:1]):
        read = await lines_module._read_line_rows(s, ids, detailed=False)
        assert read.height, change
        assert_frame_equal(await lines_module._line_rows(s, ids, detailed=False), read, check_exact=True)
    await linecache.written()
    assert (await copy_of(s, linecache.LINES) is not None) == copied, f"after {change} the copy should be: {copied}"


async def test_the_copy_of_the_lines_follows_every_change(db: Database, session: Any, app_client: Any) -> None:
    place = await make_place(session)
    bcc, editor, reviewer, admin = place.bcc, place.editor, place.reviewer, place.admin
    maker = async_sessionmaker(db.engine, expire_on_commit=False)
    check = partial(check_copy, db, app_client, place, linecache.LINES, same_as_the_database=_same_as_the_database)

    contract_id = await post_contract(app_client, place)
    state = await check("a new contract", changed=True, before=(None, None))

    r = await app_client.patch(f"/contracts/{contract_id}", json={"value": "4500.00"}, headers=editor)
    assert r.status_code == 200, r.text
    state = await check("a contract's new value", changed=True, before=state)

    r = await app_client.post(
        f"/suppliers/{place.london.id}/overrides",
        json={"flag": "lad_code", "value": "E08000025", "reason": "Works from its Birmingham office"},
        headers=reviewer,
    )
    assert r.status_code == 201, r.text
    state = await check("an override", changed=False, before=state)

    r = await app_client.put(f"/organisations/{bcc}/local-area", json={"preset": "wm_region"}, headers=admin)
    assert r.status_code == 200, r.text
    state = await check("a local-area change", changed=False, before=state)

    await run_file_import(db.engine, CONTRACTS_FINDER, [PAGE])
    state = await check("a feed import", changed=True, before=state)

    await by_sql(db, "UPDATE contract_supplier SET share_pence = share_pence + 1 WHERE contract_id = :c", c=contract_id)
    state = await check("a share changed by SQL", changed=True, before=state)
    await by_sql(db, "DELETE FROM contract_cpv")
    state = await check("CPV codes deleted by SQL", changed=True, before=state)

    r = await app_client.post(f"/contracts/{contract_id}/withdraw", json={"reason": "Cancelled"}, headers=editor)
    assert r.status_code == 200, r.text
    await check("a withdrawal", changed=True, before=state)

    # A transaction reading its own uncommitted change to the lines sees it, and leaves no copy that outlives it.
    async with maker() as s:
        await s.execute(text("UPDATE contract_supplier SET share_pence = share_pence + 7"))
        # SQLite's triggers give the transaction its new token at once, PostgreSQL's at commit (there the copy is
        # not used within it); either way no copy is written of lines that other sessions cannot see.
        await _same_as_the_database(s, "an uncommitted change", copied=False)
        await s.rollback()
    async with maker() as s:
        await _same_as_the_database(s, "a rolled-back change")


def test_a_scope_read_from_a_copy_by_anchor_ranges_is_its_rows(tmp_path: Any) -> None:
    """Read as one range of rows where the scope's anchors lie together (anchors with no rows in between count as
    together), filtered otherwise; a copy whose anchors are not in order is always filtered."""
    ordered = pl.DataFrame(
        {"anchor_id": [1, 1, 3, 3, 3, 5, 7, 7], "line_id": [1, 2, 3, 4, 5, 6, 7, 8], "name": list("abcdefgh")}
    )
    shuffled = ordered.sample(fraction=1.0, shuffle=True, seed=3).sort("line_id", descending=True)
    for frame, name in ((ordered, "ordered"), (shuffled, "shuffled")):
        path = tmp_path / f"{name}.arrow"
        frame.write_ipc(path, compression="uncompressed", record_batch_size=frame.height)
        for _ in range(2):  # worked out, then remembered
            for ids in ([1], [3], [7], [2], [1, 2, 3], [3, 5], [1, 5], [5, 1], [1, 3, 5, 7], [4, 6], [8, 9], [3, 7]):
                expected = frame.filter(pl.col("anchor_id").is_in(ids))
                for columns in (None, ["line_id", "name"]):
                    read = linecache.read_scope(path, ids, columns, by_anchor=True)
                    assert_frame_equal(read, expected if columns is None else expected.select(columns)), (name, ids)
                    held = linecache.scope_of(frame, path, ids, columns, by_anchor=True)
                    assert_frame_equal(held, expected if columns is None else expected.select(columns)), (name, ids)


def test_a_held_copy_is_the_copy_at_its_path_and_only_the_current_one_is_held(tmp_path: Any) -> None:
    """A kind's copy is read whole once and held; a copy at another path (a new token) replaces it, and a copy that
    is not there is not held (FileNotFoundError, as for a read from disk)."""
    first, second = tmp_path / "paid-a.arrow", tmp_path / "paid-b.arrow"
    pl.DataFrame({"anchor_id": [1, 2], "line_id": [1, 2]}).write_ipc(first)
    pl.DataFrame({"anchor_id": [1], "line_id": [9]}).write_ipc(second)
    read = linecache.held(linecache.PAID, first)
    first.unlink()  # held: not read again
    assert linecache.held(linecache.PAID, first) is read
    assert linecache.held(linecache.PAID, second)["line_id"].to_list() == [9]
    with pytest.raises(FileNotFoundError):
        linecache.held(linecache.PAID, first)  # no longer held, and gone from disk
    assert linecache.held(linecache.PAID, second)["line_id"].to_list() == [9]


async def test_a_missing_copy_waits_for_the_figures_being_worked_out(
    db: Database, session: Any, app_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The request that finds a copy missing is not made to share the cores with the copy's read of every line:
    the copy is written once no figures are being worked out in the process, and /metrics marks its own."""
    place = await make_place(session)
    await post_contract(app_client, place)
    monkeypatch.setattr(linecache, "WRITE_AFTER_S", 0.0)
    maker = async_sessionmaker(db.engine, expire_on_commit=False)
    with linecache.working_out():
        async with maker() as s:
            assert await copy_of(s, linecache.LINES) is None
            await lines_module._line_rows(s, [place.bcc], detailed=False)  # finds it missing: read from the tables
        await asyncio.sleep(0.5)
        assert linecache._writing, "the copy should be waiting to be written"
        async with maker() as s:
            assert await copy_of(s, linecache.LINES) is None, "no copy while figures are being worked out"
    await asyncio.wait_for(linecache.written(), timeout=10)
    async with maker() as s:
        assert await copy_of(s, linecache.LINES) is not None

    r = await app_client.get("/metrics", params={"anchor_id": place.bcc}, headers=place.reviewer)
    assert r.status_code == 200, r.text
    assert linecache._working.count == 0, "a /metrics answer should leave no figures marked as being worked out"
