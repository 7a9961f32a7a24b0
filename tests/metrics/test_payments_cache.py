"""The copy of the lean payment lines on disk behind /metrics?basis=paid (``linecache``, keyed by
``payments_token``) is always the payment lines as the database holds them: every change to the lines, their
files or the payee matches by any writer (an import, a review decision, plain SQL, a replaced file, a transaction's
own uncommitted writes, a rolled-back one) gives a new token, and what is read through the copy equals a fresh
read of the tables; a change to none of them keeps the copy. The engine's answer is keyed by the payments and
tiers copies' tokens only while every tier came from the copy. The copy of the paid basis's engine lines (payment
lines with their stored tiers, ``linecache.PAID``) is keyed by both tokens and equals the lines made from the
tables alone."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import polars as pl
from polars.testing import assert_frame_equal
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from procurement import models as m
from procurement.metrics import linecache, paid
from procurement.metrics import lines as lines_module
from socialvalue.metrics import INPUT_SCHEMA, compute_metrics
from tests.conftest import Database
from tests.support.api import make_supplier
from tests.support.cli import localvalue
from tests.support.copies import by_sql, check_copy, copy_of, make_place
from tests.support.paths import FIXTURES_DIR

CHELSEA = FIXTURES_DIR / "spend" / "nhs_chelsea-westminster-ft_2020-04_over25k.csv"


async def _from_the_tables(s: AsyncSession, ids: list[int]) -> pl.DataFrame:
    """The lean paid lines (``keyed_payment_lines``, in (anchor, line) order) made from the tables alone, through
    no copy."""
    raw = paid._with_stand_ins((await paid._read_payment_rows(s, ids, detailed=False)).sort("anchor_id", "line_id"))
    tiers = await lines_module.stored_tiers(s, ids, detailed=False)
    joined = raw.join(tiers, on=["anchor_id", "contracted_supplier_id"], how="left", maintain_order="left")
    filled = await lines_module.fill_missing_tiers(s, joined, from_scratch=False)
    return await paid._with_buyer_names(s, paid._engine_columns(filled.lazy()), ids)


async def _same_figures(s: AsyncSession, anchors: list[int]) -> None:
    """The lean lines come by anchor, the detailed ones in line order: the figures are the same."""
    lean = await paid.payment_lines_with_details(s, anchors, detailed=False)
    full = await paid.payment_lines_with_details(s, anchors, detailed=True)
    assert not lean["line_id"].equals(full["line_id"]), "lines of different anchors interleaved, so the orders differ"
    for periods in ("quarter", "year"):
        a, b = (
            compute_metrics(f.select(list(INPUT_SCHEMA)), basis="paid", scopes={"all": tuple(anchors)}, periods=periods)
            for f in (lean, full)
        )
        for name in ("summary", "by_tier", "by_category", "top_suppliers", "by_cpv_division", "excluded"):
            assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)
        for view in (False, True):
            assert paid.paid_facts(lean, periods=periods, influenceable=view) == paid.paid_facts(
                full, periods=periods, influenceable=view
            )


async def _same_as_the_database(s: AsyncSession, change: str, *, copied: bool = True) -> None:
    """The lean payment lines of every anchor with lines, and of each one (the copy is read by anchor ranges),
    read through the copy equal those read from the tables (``copied``: and the copy is there after, and then
    read, and the lines keyed by the copies' tokens); so do the paid basis's engine lines, whole."""
    anchors = sorted(set((await s.scalars(select(m.PaymentLine.anchor_id))).all()))
    assert len(anchors) == 3, "a first, a middle and a last anchor in the copy"
    for ids in (anchors, anchors[:1], anchors[1:2], anchors[2:], anchors[::2]):
        read = await paid._read_payment_rows(s, ids, detailed=False)
        assert read.height, change
        through, _token = await paid._payment_rows(s, ids, detailed=False)
        assert_frame_equal(through, read, check_exact=True)
    await linecache.written()
    assert (await copy_of(s, linecache.PAYMENTS) is not None) == copied, f"after {change} the copy: {copied}"
    assert (await copy_of(s, linecache.PAID) is not None) == copied, f"after {change} the paid copy: {copied}"
    for ids in (anchors, anchors[:1], anchors[1:2], anchors[2:], anchors[::2]):
        made, key = await paid.keyed_payment_lines(s, ids, detailed=False)
        assert (key is not None) == copied, f"after {change}: keyed by the copies' tokens: {copied}"
        assert_frame_equal(made, await _from_the_tables(s, ids), check_exact=True)
        figures, same_key = await paid.keyed_payment_lines(s, ids, detailed=False, figures_only=True)
        assert same_key == key
        assert_frame_equal(figures, made.select(list(paid.FIGURE_SCHEMA)), check_exact=True)
    through, token = await paid._payment_rows(s, anchors, detailed=False)
    assert (token is not None) == copied, f"after {change}: read through the copy: {copied}"
    assert_frame_equal(through, await paid._read_payment_rows(s, anchors, detailed=False), check_exact=True)
    frame, key = await paid.keyed_payment_lines(s, anchors, detailed=False)
    assert (key is not None) == copied, f"after {change}: keyed by the copies' tokens: {copied}"
    fresh = await paid.payment_lines_with_details(s, anchors, detailed=False)
    assert_frame_equal(frame, fresh, check_exact=True)


def _import(db: Database, path: Path, anchor: int, *more: str) -> None:
    localvalue("import", "spend", str(path), "--anchor", str(anchor), *more, database_url=db.url)


async def test_the_copy_of_the_payment_lines_follows_every_change(
    db: Database, session: Any, app_client: Any, tmp_path: Path
) -> None:
    place = await make_place(session)
    bcc = place.bcc
    maker = async_sessionmaker(db.engine, expire_on_commit=False)
    check = partial(
        check_copy, db, app_client, place, linecache.PAYMENTS, same_as_the_database=_same_as_the_database,
        query="&basis=paid",
    )  # fmt: skip

    # One letter from the payee "Jca Engineering Limited": left for a person to review.
    near = await make_supplier(session, "JCA Engineerng Limited")
    await session.commit()
    others = (await session.scalars(select(m.Organisation.id).where(m.Organisation.id != bcc))).all()
    for anchor in (bcc, min(others), max(others)):
        _import(db, CHELSEA, anchor)
    state = await check("new spend files", changed=True, before=(None, None))

    item_id = (
        await session.scalars(
            select(m.PayeeMatch.id).where(
                m.PayeeMatch.anchor_id == bcc, m.PayeeMatch.payee_name == "Jca Engineering Limited"
            )
        )
    ).one()
    for decision in (
        {"decision": "confirm", "supplier_id": near.id, "reason": "same firm, typo in our master"},
        {"decision": "reject", "reason": "not the same firm after all"},
    ):
        r = await app_client.post(f"/spend/payees/{item_id}/decision", json=decision, headers=place.editor)
        assert r.status_code == 200, r.text
        state = await check(f"a payee match {decision['decision']}ed", changed=True, before=state)

    await by_sql(db, "UPDATE payment_line SET amount_pence = amount_pence + 1 WHERE anchor_id = :a", a=bcc)
    state = await check("a payment line changed by SQL", changed=True, before=state)
    await by_sql(db, "DELETE FROM payee_match WHERE id = :i", i=item_id)
    state = await check("a payee match deleted by SQL", changed=True, before=state)

    corrected = tmp_path / "chelsea-corrected.csv"
    corrected.write_bytes(CHELSEA.read_bytes().replace(b'"67,132.60"', b'"67,232.60"', 1))
    _import(db, corrected, bcc, "--reason", "trust republished April")
    state = await check("a file replaced", changed=True, before=state)
    async with maker() as s:
        await _same_figures(s, sorted({bcc, min(others), max(others)}))

    await by_sql(db, "UPDATE supplier SET locality = 'Birmingham' WHERE id = :s", s=place.brum.id)
    state = await check("a change to no table the payment lines are read from", changed=False, before=state)

    # A payee's supplier renamed: the payment lines are the same, their engine lines (the name) are not.
    async with maker() as s:
        before = await linecache.token(s, linecache.PAID)
        payee = (
            await s.scalars(select(m.PaymentLine.supplier_id).where(m.PaymentLine.supplier_id.is_not(None)))
        ).first()
    assert payee is not None
    await by_sql(db, "UPDATE supplier SET name = name || ' (renamed)' WHERE id = :s", s=payee)
    state = await check("a payee's supplier renamed", changed=False, before=state)
    async with maker() as s:
        assert await linecache.token(s, linecache.PAID) != before
        made, _key = await paid.keyed_payment_lines(s, [bcc, *others], detailed=False)
        assert made["supplier_name"].str.ends_with(" (renamed)").any()

    # Stored tiers built with other rules than today's: the paid copy is not used (its tiers are judged afresh).
    async with db.engine.begin() as conn:
        rules = (await conn.execute(text("SELECT tiers_rules FROM data_version"))).scalar_one()
        await conn.execute(text("UPDATE data_version SET tiers_rules = 'rules of another release'"))
    async with maker() as s:
        assert await linecache.token(s, linecache.PAID) is None
        assert (await linecache.scope_rows(s, linecache.PAID, [bcc])).rows is None
        _frame, key = await paid.keyed_payment_lines(s, [bcc], detailed=False)
        assert key is None, "other rules: the tiers are judged afresh, not read from a copy"
    async with db.engine.begin() as conn:
        await conn.execute(text("UPDATE data_version SET tiers_rules = :r"), {"r": rules})

    # A transaction reading its own uncommitted change sees it, and leaves no copy that outlives it.
    async with maker() as s:
        await s.execute(text("UPDATE payment_line SET amount_pence = 1"))
        # SQLite's triggers give the transaction its new token at once, PostgreSQL's at commit (there the copy is
        # not used within it); either way no copy is written of lines that other sessions cannot see.
        await _same_as_the_database(s, "an uncommitted change", copied=False)
        seen, _token = await paid._payment_rows(s, [bcc], detailed=False)
        assert seen["value_pence"].unique().to_list() == [1]
        await s.rollback()
    async with maker() as s:
        await _same_as_the_database(s, "a rolled-back change")
        seen, _token = await paid._payment_rows(s, [bcc], detailed=False)
        assert seen["value_pence"].n_unique() > 1
