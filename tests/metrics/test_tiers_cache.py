"""The copy of the stored tiers on disk behind /metrics (``linecache``, keyed by ``tiers_token``) is always the
stored tiers and supplier names as the database holds them: every change to either by any writer (the API, plain
SQL, a transaction's own uncommitted writes, a rolled-back one) gives a new token, and what is read through the
copy equals a fresh read of the tables; a change to neither keeps the copy. The engine's answer is keyed by the
two copies' tokens only while every tier came from the copy."""

from __future__ import annotations

from functools import partial
from typing import Any

import polars as pl
from polars.testing import assert_frame_equal
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from procurement import models as m
from procurement.metrics import linecache
from procurement.metrics import lines as lines_module
from tests.conftest import Database
from tests.support.copies import by_sql, check_copy, copy_of, make_place, post_contract

_KEY = ["anchor_id", "contracted_supplier_id"]


async def _same_as_the_database(s: AsyncSession, change: str, *, copied: bool = True) -> None:
    """The lean stored tiers of every buyer, and of each one (the copy is read by anchor ranges), read through the
    copy equal those read from the tables (``copied``: and the copy is there after, and then read, and the lines
    keyed by the copies' tokens)."""
    buyers = sorted(set((await s.scalars(select(m.Contract.buyer_id))).all()))
    assert len(buyers) == 3, "a first, a middle and a last anchor in the copy"
    for ids in (buyers, buyers[:1], buyers[1:2], buyers[2:], buyers[::2]):
        read = (await lines_module.stored_tiers(s, ids, detailed=False)).sort(_KEY)
        assert read.height, change
        through, _token = await lines_module._tier_rows(s, ids, detailed=False)
        assert_frame_equal(through.sort(_KEY), read, check_exact=True)
    await linecache.written()
    assert (await copy_of(s, linecache.TIERS) is not None) == copied, f"after {change} the copy should be: {copied}"
    through, token = await lines_module._tier_rows(s, buyers, detailed=False)
    assert (token is not None) == copied, f"after {change}: read through the copy: {copied}"
    fresh = (await lines_module.stored_tiers(s, buyers, detailed=False)).sort(_KEY)
    assert_frame_equal(through.sort(_KEY), fresh, check_exact=True)
    _frame, key = await lines_module.keyed_lines(s, buyers, detailed=False)
    assert (key is not None) == copied, f"after {change}: keyed by the copies' tokens: {copied}"


async def test_the_copy_of_the_tiers_follows_every_change(db: Database, session: Any, app_client: Any) -> None:
    place = await make_place(session)
    bcc, brum, london, reviewer, admin = place.bcc, place.brum, place.london, place.reviewer, place.admin
    maker = async_sessionmaker(db.engine, expire_on_commit=False)
    check = partial(check_copy, db, app_client, place, linecache.TIERS, same_as_the_database=_same_as_the_database)

    others = (await session.scalars(select(m.Organisation.id).where(m.Organisation.id != bcc))).all()
    for buyer in (bcc, min(others), max(others)):
        await post_contract(app_client, place, buyer)
    state = await check("new contracts", changed=True, before=(None, None))

    for supplier, override, change in (
        (london, {"flag": "lad_code", "value": "E08000025", "reason": "Works from Birmingham"}, "an override"),
        (brum, {"flag": "category", "value": "charity", "reason": "A registered charity"}, "a classification change"),
    ):
        r = await app_client.post(f"/suppliers/{supplier.id}/overrides", json=override, headers=reviewer)
        assert r.status_code == 201, r.text
        state = await check(change, changed=True, before=state)

    r = await app_client.put(f"/organisations/{bcc}/local-area", json={"preset": "wm_region"}, headers=admin)
    assert r.status_code == 200, r.text
    state = await check("a local-area change", changed=True, before=state)

    rename = {"name": "Edgbaston Kitchens Ltd", "reason": "Renamed at Companies House"}
    r = await app_client.patch(f"/suppliers/{brum.id}", json=rename, headers=admin)
    assert r.status_code == 200, r.text
    state = await check("a supplier renamed", changed=True, before=state)

    await by_sql(db, "UPDATE supplier SET name = 'London Advisory Ltd' WHERE id = :s", s=london.id)
    state = await check("a supplier renamed by SQL", changed=True, before=state)
    await by_sql(db, "UPDATE anchor_supplier_tier SET tier = 'rest_of_uk' WHERE supplier_id = :s", s=brum.id)
    state = await check("a tier changed by SQL", changed=True, before=state)
    await by_sql(db, "UPDATE supplier SET locality = 'Birmingham' WHERE id = :s", s=brum.id)
    await check("a supplier column not read beside a tier", changed=False, before=state)

    # A transaction reading its own uncommitted change sees it, and leaves no copy that outlives it.
    async with maker() as s:
        await s.execute(text("UPDATE anchor_supplier_tier SET tier = 'outside_uk'"))
        await s.execute(text("UPDATE supplier SET name = name || ' (uncommitted)'"))
        # SQLite's triggers give the transaction its new token at once, PostgreSQL's at commit (there the copy is
        # not used within it); either way no copy is written of tiers that other sessions cannot see.
        await _same_as_the_database(s, "an uncommitted change", copied=False)
        seen, _token = await lines_module._tier_rows(s, [bcc], detailed=False)
        assert seen["tier"].unique().to_list() == ["outside_uk"]
        await s.rollback()
    async with maker() as s:
        await _same_as_the_database(s, "a rolled-back change")
        names = (await lines_module._tier_rows(s, [bcc], detailed=False))[0]["supplier_name"]
        assert names.dtype == pl.String
        assert not names.str.contains("uncommitted").any()

    # Last, as it leaves the stored tiers incomplete: the pair left without a stored tier is judged from the
    # database on each read, so the lines are not named by the copies' tokens.
    await by_sql(db, "DELETE FROM anchor_supplier_tier WHERE supplier_id = :s", s=london.id)
    async with maker() as s:
        await app_client.get(f"/metrics?anchor_id={bcc}", headers=reviewer)
        await linecache.written()
        _frame, key = await lines_module.keyed_lines(s, [bcc], detailed=False)
        assert key is None, "a tier judged on the fly is not named by the copies' tokens"
        assert await copy_of(s, linecache.TIERS) is not None
