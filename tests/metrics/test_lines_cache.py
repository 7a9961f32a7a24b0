"""The copy of the lines on disk behind /metrics (``linecache``) is always the lines as the database holds them: a
change to the lines by any writer (the API, an import, plain SQL, a transaction's own uncommitted writes) gives a
new token and a new copy (written in the background by the first read that misses it); a change that leaves the
lines alone (an override, a local area) keeps the copy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from polars.testing import assert_frame_equal
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from procurement import models as m
from procurement.imports.runs import run_file_import
from procurement.imports.service import CONTRACTS_FINDER
from procurement.metrics import linecache
from procurement.metrics import lines as lines_module
from procurement.organisations.seed import seed_anchors
from tests.conftest import Database
from tests.support.api import bearer, make_supplier, make_token
from tests.support.paths import FEEDS_DIR

PAGE = FEEDS_DIR / "contracts-finder" / "ocds-search-page-2022-10-20.json"


async def _copy(s: AsyncSession) -> Path | None:
    token = await linecache.lines_token(s)
    conn = await s.connection()
    found = linecache.folder(conn.engine.url.render_as_string(hide_password=True)) / f"lines-{token}.arrow"
    return found if found.exists() else None


async def _same_as_the_database(s: AsyncSession, change: str, *, copied: bool = True) -> None:
    """The lean lines of every buyer, and of one, read through the copy equal those read from the tables
    (``copied``: and the copy is there after)."""
    buyers = sorted(set((await s.scalars(select(m.Contract.buyer_id))).all()))
    for ids in (buyers, buyers[:1]):
        read = await lines_module._read_line_rows(s, ids, detailed=False)
        assert read.height, change
        assert_frame_equal(await lines_module._line_rows(s, ids, detailed=False), read, check_exact=True)
    await linecache.written()
    assert (await _copy(s) is not None) == copied, f"after {change} the copy should be written: {copied}"


async def test_the_copy_of_the_lines_follows_every_change(db: Database, session: Any, app_client: Any) -> None:
    await seed_anchors(session)
    await session.commit()
    orgs = {o.gss_code or o.ods_code: o.id for o in (await session.scalars(select(m.Organisation))).all()}
    bcc = orgs["E08000025"]
    brum = await make_supplier(session, "Edgbaston Catering Ltd", postcode="B15 2GW")
    london = await make_supplier(session, "Westminster Consulting Ltd", postcode="SW1A 1AA")
    editor = bearer(await make_token(session, "editor", bcc))
    reviewer = bearer(await make_token(session, "cross_reviewer"))
    admin = bearer(await make_token(session, "admin"))
    await session.commit()
    maker = async_sessionmaker(db.engine, expire_on_commit=False)

    async def check(change: str, *, lines_changed: bool, before: tuple[str | None, Any]) -> tuple[str | None, Any]:
        async with maker() as s:
            r = await app_client.get(f"/metrics?anchor_id={bcc}", headers=reviewer)
            assert r.status_code == 200, (change, r.text)
            await linecache.written()
            token = await linecache.lines_token(s)
            assert token is not None
            assert (token != before[0]) == lines_changed, f"{change}: the token must move with the lines alone"
            copy = await _copy(s)
            assert copy is not None, f"{change}: /metrics should have written the copy"
            kept = copy.stat().st_ino
            if not lines_changed:
                assert kept == before[1], f"{change} left the lines alone: the copy is kept"
            await _same_as_the_database(s, change)
            assert copy.stat().st_ino == kept, "a read through a copy does not write it again"
            return token, kept

    r = await app_client.post(
        "/contracts",
        json={"buyer_id": bcc, "title": "Meals", "value": "3000.00", "currency": "GBP", "award_date": "2025-05-01",
              "start_date": "2025-05-01", "end_date": "2026-04-30",
              "suppliers": [{"supplier_id": brum.id}, {"supplier_id": london.id}]},
        headers=editor,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    contract_id = r.json()["id"]
    state = await check("a new contract", lines_changed=True, before=(None, None))

    r = await app_client.patch(f"/contracts/{contract_id}", json={"value": "4500.00"}, headers=editor)
    assert r.status_code == 200, r.text
    state = await check("a contract's new value", lines_changed=True, before=state)

    r = await app_client.post(
        f"/suppliers/{london.id}/overrides",
        json={"flag": "lad_code", "value": "E08000025", "reason": "Works from its Birmingham office"},
        headers=reviewer,
    )
    assert r.status_code == 201, r.text
    state = await check("an override", lines_changed=False, before=state)

    r = await app_client.put(f"/organisations/{bcc}/local-area", json={"preset": "wm_region"}, headers=admin)
    assert r.status_code == 200, r.text
    state = await check("a local-area change", lines_changed=False, before=state)

    await run_file_import(db.engine, CONTRACTS_FINDER, [PAGE])
    state = await check("a feed import", lines_changed=True, before=state)

    # Plain SQL, outside the ORM: the database's triggers still see it (the version is bumped by hand, as the
    # answers cached in memory need).
    bump = text("UPDATE data_version SET version = version + 1")
    async with db.engine.begin() as conn:
        await conn.execute(text("UPDATE contract_supplier SET share_pence = share_pence + 1 WHERE contract_id = :c"),
                           {"c": contract_id})  # fmt: skip
        await conn.execute(bump)
    state = await check("a share changed by SQL", lines_changed=True, before=state)
    async with db.engine.begin() as conn:
        await conn.execute(text("DELETE FROM contract_cpv"))
        await conn.execute(bump)
    state = await check("CPV codes deleted by SQL", lines_changed=True, before=state)

    r = await app_client.post(f"/contracts/{contract_id}/withdraw", json={"reason": "Cancelled"}, headers=editor)
    assert r.status_code == 200, r.text
    await check("a withdrawal", lines_changed=True, before=state)

    # A transaction reading its own uncommitted change to the lines sees it, and leaves no copy that outlives it.
    async with maker() as s:
        await s.execute(text("UPDATE contract_supplier SET share_pence = share_pence + 7"))
        # SQLite's triggers give the transaction its new token at once, PostgreSQL's at commit (there the copy is
        # not used within it); either way no copy is written of lines that other sessions cannot see.
        await _same_as_the_database(s, "an uncommitted change", copied=False)
        await s.rollback()
    async with maker() as s:
        await _same_as_the_database(s, "a rolled-back change")
