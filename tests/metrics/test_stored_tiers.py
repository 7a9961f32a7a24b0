"""Stored tiers and cached answers never let a figure go stale: after each kind of change (a contract, an
override, a supplier's postcode, a merge and its undo, an anchor's local area, a feed import, a spend import, a
payee decision, new rules or geography) GET /metrics answers exactly what a from-scratch computation answers
(every supplier reclassified, every anchor x supplier tier recomputed), the stored tiers equal the rebuilt ones,
and the old per-request tiers agree line by line. A repeat is served from the cache; a change moves the ETag."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from litestar.serialization import encode_json
from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from procurement import models as m
from procurement.imports.runs import run_file_import
from procurement.imports.service import CONTRACTS_FINDER
from procurement.metrics import linecache
from procurement.metrics.cache import ANSWERS
from procurement.metrics.lines import lines_with_details
from procurement.metrics.paid import payment_lines_with_details
from procurement.metrics.schemas import Metrics
from procurement.metrics.service import NOTES, _compute, basis_metrics, scope_ref
from procurement.organisations.seed import seed_anchors
from procurement.spend.service import import_spend_file
from procurement.suppliers.tiers import TIER_COLUMNS, refresh_tiers
from tests.conftest import Database
from tests.support.api import bearer, make_supplier, make_token
from tests.support.paths import FEEDS_DIR, FIXTURES_DIR

PAGE = FEEDS_DIR / "contracts-finder" / "ocds-search-page-2022-10-20.json"
SPEND = FIXTURES_DIR / "spend" / "council_manchester_2022-05_over500.csv"


async def _stored(session: Any) -> list[tuple[Any, ...]]:
    t = m.AnchorSupplierTier
    rows = await session.execute(select(*(getattr(t, c) for c in TIER_COLUMNS)).order_by(t.anchor_id, t.supplier_id))
    return [tuple(r) for r in rows.all()]


async def _from_scratch(db: Database, questions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each question answered after reclassifying everything and rebuilding every tier, in a transaction that is
    rolled back; checks on the way that the stored tiers and the old per-request tiers agree."""
    # The lines read afresh, not from their copy; only this database's copies: the cache folder is shared by the
    # test workers, and removing it whole took other tests' copies from under them.
    shutil.rmtree(linecache.folder(db.engine.url.render_as_string(hide_password=True)), ignore_errors=True)
    maker = async_sessionmaker(db.engine, expire_on_commit=False)
    async with maker() as s:
        anchors = list((await s.scalars(select(m.Organisation.id).order_by(m.Organisation.id))).all())
        stored = await _stored(s)
        read = await lines_with_details(s, anchors)
        legacy = await lines_with_details(s, anchors, from_scratch=True, refresh=True)
        assert read.equals(legacy), "stored tiers differ from the per-request tiers"
        paid = await payment_lines_with_details(s, anchors)
        paid_legacy = await payment_lines_with_details(s, anchors, from_scratch=True, refresh=True)
        assert paid.equals(paid_legacy), "stored tiers of payees differ from the per-request tiers"
        lean = await payment_lines_with_details(s, anchors, detailed=False)
        reviewer = ["row_number", "contract_title", "tier_method", "tier_confidence", "tier_reason"]
        assert lean.drop(reviewer).equals(paid.drop(reviewer)), "the lean payment lines (/metrics) differ"
        await s.rollback()
        await refresh_tiers(s)
        assert await _stored(s) == stored, "incrementally kept tiers differ from a full rebuild"
        answers = []
        for q in questions:
            scope, kind, computed = await _compute(
                s, q.get("anchor_id"), q.get("group"), q.get("period"), q.get("basis")
            )
            metrics = Metrics(
                scope=scope_ref(scope),
                period_kind=kind,
                period=q.get("period"),
                bases=[basis_metrics(c, scope.key, q.get("period")) for c in computed],
                notes=NOTES,
            )
            answers.append(json.loads(encode_json(metrics)))
        await s.rollback()
    return answers


async def test_every_kind_of_change_reaches_the_figures(
    db: Database, session: Any, app_client: Any, tmp_path: Path
) -> None:
    await seed_anchors(session)
    await session.commit()
    orgs = {o.gss_code or o.ods_code: o.id for o in (await session.scalars(select(m.Organisation))).all()}
    bcc, uhb = orgs["E08000025"], orgs["RRK"]
    brum = await make_supplier(session, "Edgbaston Catering Ltd", postcode="B15 2GW")
    london = await make_supplier(session, "Westminster Consulting Ltd", postcode="SW1A 1AA")
    walsall = await make_supplier(session, "Walsall Laundry Ltd", postcode="WS1 1TP")
    editor = bearer(await make_token(session, "editor", bcc))
    reviewer = bearer(await make_token(session, "cross_reviewer"))
    admin = bearer(await make_token(session, "admin"))
    questions: list[dict[str, Any]] = [
        {},
        {"anchor_id": bcc, "period": "2025Q1"},
        {"anchor_id": bcc, "period": "2025/26", "basis": "spread"},
        {"anchor_id": uhb},
        {"anchor_id": bcc, "basis": "paid"},
    ]

    async def ask(q: dict[str, Any], etag: str | None = None) -> Any:
        params = "&".join(f"{k}={v}" for k, v in q.items())
        headers = {**reviewer, **({"If-None-Match": etag} if etag else {})}
        return await app_client.get(f"/metrics?{params}", headers=headers)

    async def check(change: str) -> list[str]:
        answers = [await ask(q) for q in questions]
        for r in answers:
            assert r.status_code == 200, (change, r.text)
        expected = await _from_scratch(db, questions)
        for q, r, e in zip(questions, answers, expected, strict=True):
            assert r.json() == e, f"after {change}: /metrics?{q} differs from the figures computed from scratch"
        return [r.headers["etag"] for r in answers]

    async def contract(buyer: int, token: dict[str, str], suppliers: list[int], value: str) -> None:
        r = await app_client.post(
            "/contracts",
            json={
                "buyer_id": buyer,
                "title": "Meals and laundry",
                "value": value,
                "currency": "GBP",
                "award_date": "2025-05-01",
                "start_date": "2025-05-01",
                "end_date": "2026-04-30",
                "suppliers": [{"supplier_id": s} for s in suppliers],
            },
            headers=token,
        )
        assert r.status_code == 201, r.text

    await contract(bcc, editor, [brum.id, london.id], "3000.00")
    await contract(uhb, admin, [walsall.id, london.id], "1000.00")
    tags = await check("contracts")

    # A repeat comes from the cache, and revalidates to a 304 with the same ETag.
    hits = ANSWERS.hits
    again = await ask(questions[1])
    assert ANSWERS.hits == hits + 1
    assert again.headers["etag"] == tags[1]
    not_modified = await ask(questions[1], tags[1])
    assert not_modified.status_code == 304
    assert not_modified.content == b""

    london_local_before = (await ask(questions[1])).json()["bases"][0]["periods"][0]["headline"]["local_pence"]
    r = await app_client.post(
        f"/suppliers/{london.id}/overrides",
        json={"flag": "lad_code", "value": "E08000025", "reason": "Works from its Birmingham office"},
        headers=reviewer,
    )
    assert r.status_code == 201, r.text
    after = await check("an override")
    assert after[1] != tags[1], "an override must move the ETag"
    assert (await ask(questions[1], tags[1])).status_code == 200
    moved = (await ask(questions[1])).json()["bases"][0]["periods"][0]["headline"]["local_pence"]
    assert moved > london_local_before, "the override must move the figure"

    r = await app_client.patch(
        f"/suppliers/{walsall.id}",
        json={"postcode": "B1 1BB", "reason": "Moved to Birmingham city centre"},
        headers=reviewer,
    )
    assert r.status_code == 200, r.text
    await check("a postcode correction")

    r = await app_client.post(
        "/suppliers/merge",
        json={"source_id": walsall.id, "target_id": london.id, "reason": "The same company recorded twice"},
        headers=reviewer,
    )
    assert r.status_code in (200, 201), r.text
    await check("a merge")
    r = await app_client.post(
        f"/supplier-merges/{r.json()['id']}/undo", json={"reason": "Not the same company after all"}, headers=reviewer
    )
    assert r.status_code in (200, 201), r.text
    await check("undoing a merge")

    r = await app_client.put(f"/organisations/{bcc}/local-area", json={"preset": "wm_region"}, headers=admin)
    assert r.status_code == 200, r.text
    await check("a local-area change")

    await run_file_import(db.engine, CONTRACTS_FINDER, [PAGE])
    await check("a feed import")

    anchor = await session.get(m.Organisation, bcc)
    await import_spend_file(session, SPEND, anchor)
    await session.commit()
    await check("a spend import")

    # New rules or geography: stored tiers are not used (figures come from scratch) until the next rebuild.
    async with db.engine.begin() as conn:
        await conn.execute(update(m.DataVersion).values(tiers_rules="rules of another release", version=999))
    await check("new rules or geography")
    await contract(bcc, editor, [brum.id], "10.00")
    await check("the first write after new rules")


async def test_get_metrics_writes_nothing(db: Database, session: Any, app_client: Any) -> None:
    await seed_anchors(session)
    await session.commit()
    bcc = (await session.scalars(select(m.Organisation.id).where(m.Organisation.gss_code == "E08000025"))).one()
    brum = await make_supplier(session, "Edgbaston Catering Ltd", postcode="B15 2GW")
    editor = bearer(await make_token(session, "editor", bcc))
    r = await app_client.post(
        "/contracts",
        json={"buyer_id": bcc, "title": "Meals", "value": "100.00", "currency": "GBP", "award_date": "2025-05-01",
              "suppliers": [{"supplier_id": brum.id}]},
        headers=editor,
    )  # fmt: skip
    assert r.status_code == 201
    ANSWERS.clear()
    writes: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().split(" ", 1)[0].upper() in {"INSERT", "UPDATE", "DELETE"}:
            writes.append(statement)

    engine = app_client.app.state["localvalue_alchemy"].get_engine().sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        for basis in ("", "&basis=paid", "&basis=spread&period=2025/26"):
            assert (await app_client.get(f"/metrics?anchor_id={bcc}{basis}", headers=editor)).status_code == 200
            assert (await app_client.get(f"/metrics.csv?anchor_id={bcc}{basis}", headers=editor)).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert writes == []
