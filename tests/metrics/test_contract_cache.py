"""The copy of the contract lines' engine columns on disk (``linecache.CONTRACT``: the lean lines joined to their
stored tiers, keyed by the lines and tiers tokens) is what a lean read of the lines gives, and is read in its
place: a change to the lines or to the stored tiers moves its token (the copy for the old one is never read
again), a change to neither keeps it. Lines read from it by anchor give the engine the same figures as lines in
line order. Two copies each made of others (``CONTRACT``, ``PAID``) are written side by side without waiting for
each other."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

import polars as pl
from polars.testing import assert_frame_equal
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from procurement import models as m
from procurement.metrics import linecache
from procurement.metrics import lines as lines_module
from socialvalue.metrics import INPUT_SCHEMA, compute_metrics
from tests.conftest import Database
from tests.support.cli import localvalue
from tests.support.copies import by_sql, check_copy, copy_of, make_place, post_contract
from tests.support.paths import FIXTURES_DIR

CHELSEA = FIXTURES_DIR / "spend" / "nhs_chelsea-westminster-ft_2020-04_over25k.csv"


async def _from_the_tables(s: AsyncSession, ids: list[int]) -> pl.DataFrame:
    """The lean lines (``keyed_lines``, in line order) made from the tables alone, through no copy."""
    raw = await lines_module._read_line_rows(s, ids, detailed=False)
    tiers = await lines_module.stored_tiers(s, ids, detailed=False)
    joined = raw.join(tiers, on=["anchor_id", "contracted_supplier_id"], how="left", maintain_order="left")
    filled = await lines_module.fill_missing_tiers(s, joined, from_scratch=False)
    return lines_module._engine_frame(filled.with_columns(buyer_name=pl.lit(None, pl.String)).lazy()).collect()


def _same_figures(by_line: pl.DataFrame, by_anchor: pl.DataFrame, anchors: list[int]) -> None:
    for basis in ("awarded", "spread"):
        for periods in ("quarter", "year"):
            a, b = (
                compute_metrics(
                    f.select(list(INPUT_SCHEMA)), basis=basis, scopes={"all": tuple(anchors)}, periods=periods
                )
                for f in (by_line, by_anchor)
            )
            for name in ("summary", "by_tier", "by_category", "top_suppliers", "by_cpv_division"):
                assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)
            spans = [r.rests_on("all", p) for r in (a, b) for p in a.summary["period"].to_list()[:1]]
            assert_frame_equal(spans[0].sort(spans[0].columns), spans[1].sort(spans[1].columns), check_exact=True)


async def _same_as_the_database(s: AsyncSession, change: str, *, copied: bool = True) -> None:
    """The lean lines of every buyer, and of each one and two apart (the copy is read by anchor ranges), read
    through the copy equal those made from the tables (``copied``: and keyed by the copies' tokens), in line
    order or by anchor; and the copy is read in place of the copies it is made of."""
    buyers = sorted(set((await s.scalars(select(m.Contract.buyer_id))).all()))
    assert len(buyers) == 3, "a first, a middle and a last anchor in the copy"
    await linecache.written()
    assert (await copy_of(s, linecache.CONTRACT) is not None) == copied, f"after {change} the copy: {copied}"
    for ids in (buyers, buyers[:1], buyers[1:2], buyers[2:], buyers[::2]):
        fresh = await _from_the_tables(s, ids)
        assert fresh.height, change
        made, key = await lines_module.keyed_lines(s, ids, detailed=False)
        assert (key is not None) == copied, f"after {change}: keyed by the copies' tokens: {copied}"
        assert_frame_equal(made, fresh, check_exact=True)
        by_anchor, anchor_key = await lines_module.keyed_lines(s, ids, detailed=False, by_anchor=True)
        assert_frame_equal(by_anchor, fresh.sort("anchor_id", "line_id"), check_exact=True)
        # Lines in another order are another content: never answered from the other's memo.
        assert anchor_key != key or anchor_key is None
    made, _key = await lines_module.keyed_lines(s, buyers, detailed=False)
    by_anchor, _key = await lines_module.keyed_lines(s, buyers, detailed=False, by_anchor=True)
    assert not made["line_id"].equals(by_anchor["line_id"]), "lines of different anchors interleaved"
    _same_figures(made, by_anchor, buyers)
    if copied:
        # Read from this copy alone: the copies it was made of are not needed to name the lines by their tokens.
        copy = await copy_of(s, linecache.CONTRACT)
        assert copy is not None
        for part in (linecache.LINES, linecache.TIERS):
            for path in copy.parent.glob(f"{part.prefix}*.arrow"):
                path.unlink()
        again, key = await lines_module.keyed_lines(s, buyers, detailed=False)
        assert key is not None, "the lines came from the copy of their engine columns"
        assert_frame_equal(again, made, check_exact=True)


async def test_the_copy_of_the_engine_lines_follows_every_change(db: Database, session: Any, app_client: Any) -> None:
    place = await make_place(session)
    bcc, reviewer = place.bcc, place.reviewer
    check = partial(check_copy, db, app_client, place, linecache.CONTRACT, same_as_the_database=_same_as_the_database)

    others = (await session.scalars(select(m.Organisation.id).where(m.Organisation.id != bcc))).all()
    for buyer in (bcc, min(others), max(others), bcc):
        await post_contract(app_client, place, buyer)
    state = await check("new contracts", changed=True, before=(None, None))

    await by_sql(db, "UPDATE contract_supplier SET share_pence = share_pence + 1")
    state = await check("a change to the lines", changed=True, before=state)

    r = await app_client.post(
        f"/suppliers/{place.london.id}/overrides",
        json={"flag": "lad_code", "value": "E08000025", "reason": "Works from its Birmingham office"},
        headers=reviewer,
    )
    assert r.status_code == 201, r.text
    state = await check("a change to the stored tiers (an override)", changed=True, before=state)

    await by_sql(db, "UPDATE anchor_supplier_tier SET tier = 'rest_of_uk' WHERE supplier_id = :s", s=place.brum.id)
    state = await check("a tier changed by SQL", changed=True, before=state)

    await by_sql(db, "UPDATE supplier SET locality = 'Birmingham' WHERE id = :s", s=place.brum.id)
    state = await check("a change to neither", changed=False, before=state)

    # Between a change and the next read that writes its copy, none is there for the new token: nothing is read
    # from the copy of the lines as they were.
    async with async_sessionmaker(db.engine, expire_on_commit=False)() as s:
        await by_sql(db, "UPDATE contract_supplier SET share_pence = 5")
        assert await linecache.token(s, linecache.CONTRACT) != state[0]
        assert await copy_of(s, linecache.CONTRACT) is None
        made, _key = await lines_module.keyed_lines(s, [bcc], detailed=False, by_anchor=True)
        assert made["value_pence"].unique().to_list() == [5]
        await linecache.written()
        await _same_as_the_database(s, "a change read before its copy")

    # A pair left without a stored tier is judged on each read: no copy of the engine lines is made of it.
    await by_sql(db, "DELETE FROM anchor_supplier_tier WHERE supplier_id = :s", s=place.london.id)
    async with async_sessionmaker(db.engine, expire_on_commit=False)() as s:
        await app_client.get(f"/metrics?anchor_id={bcc}", headers=reviewer)
        await linecache.written()
        assert await copy_of(s, linecache.CONTRACT) is None
        _frame, key = await lines_module.keyed_lines(s, [bcc], detailed=False)
        assert key is None, "a tier judged on the fly is not named by the copies' tokens"


async def test_copies_made_of_others_are_written_side_by_side(db: Database, session: Any, app_client: Any) -> None:
    """The contract and paid basis's engine lines, each made of two other copies, are all first missed together:
    each waits for the copies it is made of alone, so all are written (waiting for every other copy, each would
    wait for the other for ever)."""
    place = await make_place(session)
    await post_contract(app_client, place)
    localvalue("import", "spend", str(CHELSEA), "--anchor", str(place.bcc), database_url=db.url)
    for query in ("", "&basis=paid"):
        r = await app_client.get(f"/metrics?anchor_id={place.bcc}{query}", headers=place.reviewer)
        assert r.status_code == 200, r.text
    await asyncio.wait_for(linecache.written(), timeout=60)
    async with async_sessionmaker(db.engine, expire_on_commit=False)() as s:
        for kind in (linecache.LINES, linecache.TIERS, linecache.PAYMENTS, linecache.CONTRACT, linecache.PAID):
            assert await copy_of(s, kind) is not None, kind.prefix
