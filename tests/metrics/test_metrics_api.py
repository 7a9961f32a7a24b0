"""Local-spend metrics through the real app: seeded anchors, suppliers at real postcodes, contracts via the API,
figures checked by hand and against the pure engine; CSV and XLSX read back and summed to the headline."""

from __future__ import annotations

import asyncio
import io
import threading
from typing import Any

import openpyxl
import polars as pl
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.errors import DomainError, NotFound
from procurement.metrics import lines as lines_module
from procurement.metrics.lines import Scope, lines_frame, resolve_scope
from procurement.metrics.service import compute_bases
from procurement.organisations.groups import seed_groups
from procurement.organisations.seed import seed_anchors
from procurement.workspace.service import Selection, dashboard
from socialvalue.metrics import compute_metrics
from tests.support.api import bearer, make_supplier, make_token
from tests.support.cli import localvalue


async def _org(session: AsyncSession, **where: str) -> m.Organisation:
    column, value = next(iter(where.items()))
    return (await session.scalars(select(m.Organisation).where(getattr(m.Organisation, column) == value))).one()


async def _contract(client: Any, token: str, **body: Any) -> dict[str, Any]:
    response = await client.post("/contracts", json={"currency": "GBP", **body}, headers=bearer(token))
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def _world(session: AsyncSession, client: Any) -> dict[str, Any]:
    await seed_anchors(session)
    await seed_groups(session)
    await session.commit()
    bcc = await _org(session, gss_code="E08000025")
    uhb = await _org(session, ods_code="RRK")
    brum = await make_supplier(session, "Edgbaston Catering Ltd", postcode="B15 2GW")  # Birmingham
    london = await make_supplier(session, "Westminster Consulting Ltd", postcode="SW1A 1AA")  # London
    walsall = await make_supplier(session, "Walsall Laundry Ltd", postcode="WS1 1TP")  # Walsall, West Midlands
    bcc_editor = await make_token(session, "editor", bcc.id)
    uhb_editor = await make_token(session, "editor", uhb.id)
    # A: £1,000 to the Birmingham supplier, awarded and delivered within 2025Q1 (Apr-Jun 2025).
    a = await _contract(
        client,
        bcc_editor,
        buyer_id=bcc.id,
        title="School meals pilot",
        value="1000.00",
        cpv_codes=["55524000"],
        award_date="2025-05-01",
        start_date="2025-05-01",
        end_date="2025-06-30",
        suppliers=[{"supplier_id": brum.id}],
    )
    # B: £3,000 awarded in 2025Q1, split £1,000 Birmingham / £2,000 London, running Jul 2025 - Jun 2026.
    b = await _contract(
        client,
        bcc_editor,
        buyer_id=bcc.id,
        title="Consultancy and catering",
        value="3000.00",
        cpv_codes=["79411000"],
        award_date="2025-04-10",
        start_date="2025-07-01",
        end_date="2026-06-30",
        suppliers=[{"supplier_id": brum.id, "share": "1000.00"}, {"supplier_id": london.id, "share": "2000.00"}],
    )
    # C: withdrawn, so excluded (and counted as such).
    c = await _contract(
        client,
        bcc_editor,
        buyer_id=bcc.id,
        title="Recorded twice",
        value="500.00",
        award_date="2025-06-01",
        suppliers=[{"supplier_id": brum.id}],
    )
    withdrawn = await client.post(
        f"/contracts/{c['id']}/withdraw", json={"reason": "duplicate record"}, headers=bearer(bcc_editor)
    )
    assert withdrawn.status_code == 200
    # D: UHB buys £600 of laundry in Walsall: regional for a Birmingham and Solihull trust.
    await _contract(
        client,
        uhb_editor,
        buyer_id=uhb.id,
        title="Linen service",
        value="600.00",
        cpv_codes=["98311000"],
        award_date="2025-06-15",
        start_date="2025-06-15",
        end_date="2025-06-30",
        suppliers=[{"supplier_id": walsall.id}],
    )
    reviewer = await make_token(session, "reviewer")
    return {"bcc": bcc, "uhb": uhb, "a": a, "b": b, "reviewer": reviewer, "brum": brum, "london": london}


async def _metrics(client: Any, token: str, **params: Any) -> dict[str, Any]:
    response = await client.get("/metrics", params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_anchor_figures_by_hand_and_against_the_engine(app_client: Any, session: AsyncSession) -> None:
    w = await _world(session, app_client)
    bcc, token = w["bcc"], w["reviewer"]

    awarded = await _metrics(app_client, token, anchor_id=bcc.id, period="2025Q1", basis="awarded")
    assert awarded["scope"] == {"key": f"org:{bcc.id}", "kind": "anchor", "name": bcc.name, "anchor_ids": [bcc.id]}
    (basis,) = awarded["bases"]
    assert basis["basis"] == "awarded"
    assert basis["label"].startswith("Awarded basis")
    (q1,) = basis["periods"]
    h = q1["headline"]
    # By hand: A £1,000 + B £3,000 awarded in Q1; local = A + B's Birmingham share = £2,000; C is withdrawn.
    assert (h["total_pence"], h["total"]) == (400000, "4000.00")
    assert (h["local_pence"], h["local"]) == (200000, "2000.00")
    assert h["local_share"] == {"share": "0.5000", "share_known": "0.5000", "coverage": "1.0000", "status": "known"}
    # No supplier's SME status is known: the share is not known, with its coverage, never 0.
    assert h["sme_share"] == {"share": None, "share_known": None, "coverage": "0.0000", "status": "not_known"}
    assert (h["contracts"], h["suppliers"]) == (2, 2)
    assert h["supplier_names"] == ["Edgbaston Catering Ltd", "Westminster Consulting Ltd"]
    assert h["lines"] == 3
    assert h["suppliers"] == 2
    assert q1["coverage"]["excluded_withdrawn_lines"] == 1
    tiers = {t["tier"]: t["value_pence"] for t in q1["by_tier"]}
    assert tiers == {"local": 200000, "regional": 0, "rest_of_uk": 200000, "outside_uk": 0, "unknown": 0}
    top = q1["top_suppliers"]
    assert [(t["supplier_id"], t["value_pence"], t["tier"]) for t in top] == [
        (w["brum"].id, 200000, "local"),
        (w["london"].id, 200000, "rest_of_uk"),
    ]
    assert {c["cpv_division"]: c["value_pence"] for c in q1["by_cpv_division"]} == {"55": 100000, "79": 300000}

    # Spread: only A falls in Q1 (B starts in July), all of it local.
    spread = await _metrics(app_client, token, anchor_id=bcc.id, period="2025Q1", basis="spread")
    sh = spread["bases"][0]["periods"][0]["headline"]
    assert (sh["total_pence"], sh["local_pence"], sh["local_share"]["share"]) == (100000, 100000, "1.0000")

    # The API's figures are the pure engine's on the same lines.
    scope = await resolve_scope(session, anchor_id=bcc.id)
    lines = await lines_frame(session, scope.anchor_ids)
    await session.commit()  # supplier_tiers may bring classifications up to date: release SQLite's write lock
    assert lines.height == 4  # A, B x 2, C
    for b in ("awarded", "spread"):
        engine = compute_metrics(lines, basis=b, scopes={scope.key: scope.anchor_ids})  # type: ignore[arg-type]
        row = engine.summary.filter(pl.col("period") == "2025Q1").row(0, named=True)
        api = (await _metrics(app_client, token, anchor_id=bcc.id, period="2025Q1", basis=b))["bases"][0]
        assert api["periods"][0]["headline"]["total_pence"] == row["total_pence"]
        assert api["periods"][0]["headline"]["local_pence"] == row["local_pence"]
        assert api["periods"][0]["headline"]["sme_pence"] == row["sme_pence"]

    # Both bases when basis is omitted; the financial year is the sum of its quarters.
    both = await _metrics(app_client, token, anchor_id=bcc.id, period="2025/26")
    assert [x["basis"] for x in both["bases"]] == ["awarded", "spread"]
    assert both["period_kind"] == "year"
    every_quarter = await _metrics(app_client, token, anchor_id=bcc.id, basis="spread")
    fy = [p for p in every_quarter["bases"][0]["periods"] if p["period"].startswith("2025Q")]
    year_total = both["bases"][1]["periods"][0]["headline"]["total_pence"]
    assert year_total == sum(p["headline"]["total_pence"] for p in fy)
    # B's £3,000 runs 1 Jul 2025 - 30 Jun 2026: 274 of its 365 days fall in 2025/26 (its Birmingham share is
    # £1,000 -> floor(100000 x 274 / 365) = 75068 (+1p largest remainder), London £2,000 -> 150137).
    assert year_total == 100000 + 75068 + 150137 or year_total == 100000 + 75069 + 150137


@pytest.mark.parametrize("caller", ["metrics", "workspace"])
async def test_the_engine_leaves_the_event_loop_free(
    app_client: Any, session: AsyncSession, monkeypatch: pytest.MonkeyPatch, caller: str
) -> None:
    """The engine runs in worker threads (both bases side by side), so a cold answer (hundreds of milliseconds for
    a large scope) holds up no other request on the server's event loop: for /metrics and the CLI
    (``compute_bases``) as for the reviewers' figures page (``dashboard``). The engine is held mid-computation
    here; run on the loop, it would hold the loop until it ends."""
    w = await _world(session, app_client)
    started, release = threading.Event(), threading.Event()
    engine = lines_module.compute_metrics

    def held(*args: Any, **kwargs: Any) -> Any:
        started.set()
        release.wait(5)
        return engine(*args, **kwargs)

    monkeypatch.setattr(lines_module, "compute_metrics", held)
    # The same lines on the other backend were computed already: their figures would come from the engine's memo.
    monkeypatch.setattr(lines_module, "_results", type(lines_module._results)(32))
    scope = await resolve_scope(session, anchor_id=w["bcc"].id)
    if caller == "metrics":
        asked: asyncio.Task[Any] = asyncio.create_task(compute_bases(session, scope, "quarter", "2025Q1", None))
    else:
        asked = asyncio.create_task(dashboard(session, Selection(w["bcc"].id, None, "2025Q1", "awarded")))
    for _ in range(500):
        if started.is_set():
            break
        await asyncio.sleep(0.01)
    assert started.is_set(), "the engine was not reached"
    await asyncio.sleep(0.05)  # the loop goes on meanwhile
    assert not asked.done(), "the loop waited for the engine"
    release.set()
    if caller == "metrics":
        awarded, spread = await asked
        assert (awarded.result.basis, spread.result.basis) == ("awarded", "spread")
        summary = awarded.result.summary.filter(pl.col("period") == "2025Q1")
        assert summary["total_pence"].to_list() == [400000]
    else:
        assert (await asked).metrics.headline.total_pence == 400000


async def test_group_is_the_sum_of_its_members(app_client: Any, session: AsyncSession) -> None:
    w = await _world(session, app_client)
    token = w["reviewer"]
    group = await _metrics(app_client, token, group="birmingham-and-solihull", period="2025Q1", basis="awarded")
    assert group["scope"]["kind"] == "group"
    assert w["bcc"].id in group["scope"]["anchor_ids"]
    assert w["uhb"].id in group["scope"]["anchor_ids"]
    h = group["bases"][0]["periods"][0]["headline"]
    # BCC's £4,000 (local £2,000) + UHB's £600 with a Walsall supplier, regional for a BSOL trust.
    assert (h["total_pence"], h["local_pence"], h["regional_pence"]) == (460000, 200000, 60000)
    assert h["local_share"]["share"] == "0.4348"  # 2000 / 4600 = 0.43478...
    everyone = await _metrics(app_client, token, period="2025Q1", basis="awarded")
    assert everyone["scope"]["key"] == "all"
    assert everyone["bases"][0]["periods"][0]["headline"]["total_pence"] == 460000

    missing = await app_client.get("/metrics", params={"group": "nowhere"}, headers=bearer(token))
    assert missing.status_code == 404
    both = await app_client.get("/metrics", params={"group": "x", "anchor_id": 1}, headers=bearer(token))
    assert both.status_code == 422
    bad = await app_client.get("/metrics", params={"period": "2025Q5"}, headers=bearer(token))
    assert bad.status_code == 400
    anonymous = await app_client.get("/metrics")
    assert anonymous.status_code == 401


async def test_csv_and_xlsx_rows_sum_to_the_headline(app_client: Any, session: AsyncSession) -> None:
    w = await _world(session, app_client)
    bcc, token = w["bcc"], w["reviewer"]
    params = {"anchor_id": bcc.id, "period": "2025Q1"}
    body = await _metrics(app_client, token, **params)
    totals = {b["basis"]: b["periods"][0]["headline"]["total_pence"] for b in body["bases"]}

    response = await app_client.get("/metrics.csv", params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = pl.read_csv(io.BytesIO(response.content), infer_schema_length=0)
    for basis, total in totals.items():
        mine = rows.filter(pl.col("basis") == basis)
        included = mine.filter(pl.col("excluded_reason").is_null())
        assert included["allocated_pence"].cast(pl.Int64).sum() == total
    names = {
        b: set(rows.filter((pl.col("basis") == b) & pl.col("excluded_reason").is_null())["supplier_name"])
        for b in totals
    }
    # In 2025Q1 B is awarded (both its suppliers) but not yet running (nothing of it spread there).
    assert names == {
        "awarded": {"Edgbaston Catering Ltd", "Westminster Consulting Ltd"},
        "spread": {"Edgbaston Catering Ltd"},
    }
    awarded = rows.filter((pl.col("basis") == "awarded") & pl.col("excluded_reason").is_null())
    local_row = awarded.filter(pl.col("contract_id").cast(pl.Int64) == w["a"]["id"]).row(0, named=True)
    assert local_row["tier"] == "local"
    assert local_row["buyer_name"] == bcc.name
    assert local_row["contract_title"] == "School meals pilot"
    assert local_row["cpv_code"] == "55524000"
    assert local_row["allocated"] == "1000.00"
    assert "Birmingham" in local_row["evidence_summary"]
    excluded = rows.filter(pl.col("excluded_reason").is_not_null())
    assert set(excluded["excluded_reason"].to_list()) == {"withdrawn"}

    xlsx = await app_client.get("/metrics.xlsx", params={**params, "basis": "awarded"}, headers=bearer(token))
    assert xlsx.status_code == 200, xlsx.text
    book = openpyxl.load_workbook(io.BytesIO(xlsx.content), read_only=True)
    assert set(book.sheetnames) == {"summary", "lines"}
    sheet = list(book["lines"].iter_rows(values_only=True))
    header, data = sheet[0], sheet[1:]
    pence = [r[header.index("allocated_pence")] for r in data if r[header.index("excluded_reason")] is None]
    assert sum(int(p) for p in pence) == totals["awarded"] == 400000
    summary = list(book["summary"].iter_rows(values_only=True))
    head = summary[0]
    by_figure = {r[head.index("figure")]: r for r in summary[1:]}
    assert int(by_figure["total"][head.index("value_pence")]) == 400000
    sme = by_figure["SME"]
    assert (sme[head.index("share")], sme[head.index("coverage")], sme[head.index("status")]) == (
        "not known",
        "0.0000",
        "not_known",
    )
    local = by_figure["local"]
    assert (local[head.index("share")], local[head.index("status")]) == ("0.5000", "known")

    summary_csv = await app_client.get(
        "/metrics.csv", params={**params, "basis": "awarded", "table": "summary"}, headers=bearer(token)
    )
    assert summary_csv.status_code == 200, summary_csv.text
    frame = pl.read_csv(io.BytesIO(summary_csv.content), infer_schema=False)
    row = frame.filter(pl.col("figure") == "SME").row(0, named=True)
    assert (row["share"], row["coverage"], row["status"]) == ("not known", "0.0000", "not_known")
    assert "0.0000" not in frame.filter(pl.col("status") == "not_known")["share"].to_list()


@pytest.mark.slow
async def test_cli_prints_the_same_headline(app_client: Any, session: AsyncSession, db: Any) -> None:
    w = await _world(session, app_client)
    await session.commit()
    # The anchor by its GSS code, as a procurement lead would type it; figures by hand as in the API test above.
    out = localvalue("metrics", "--anchor", "E08000025", "--period", "2025Q1", database_url=db.url).stdout
    assert out.splitlines()[0] == f"Birmingham City Council (org:{w['bcc'].id}), 2025Q1"
    # column padding aside
    awarded, spread = " ".join(out.split()).split(" awarded: ")[1].split(" spread: ")
    assert awarded.startswith(
        "total £4,000.00, lines 3, contracts 2, suppliers 2 (local 1, new local 1): Edgbaston Catering Ltd, "
        "Westminster Consulting Ltd"
    )
    assert "local £2,000.00 share 50.0%, of known 50.0%, judged on 100.0% of value" in awarded
    assert "SME £0.00 share not known (judged on 0.0% of value)" in awarded
    # The threshold is a setting: at 0 every share is given, whatever it rests on.
    lenient = localvalue(
        "metrics",
        "--anchor",
        "E08000025",
        "--period",
        "2025Q1",
        "--basis",
        "awarded",
        database_url=db.url,
        LOCALVALUE_COVERAGE_THRESHOLD="0",
    ).stdout
    assert "SME £0.00 share 0.0%, of known -, judged on 0.0% of value" in " ".join(lenient.split())
    bad = localvalue(
        "metrics",
        "--anchor",
        "E08000025",
        "--period",
        "2025Q1",
        database_url=db.url,
        LOCALVALUE_COVERAGE_THRESHOLD="half",
        check=False,
    )
    assert bad.returncode != 0
    assert "LOCALVALUE_COVERAGE_THRESHOLD must be a fraction from 0 to 1 such as 0.50" in " ".join(bad.stderr.split())
    assert "excluded lines 1: withdrawn 1, not GBP 0, no value 0" in awarded
    # Spread: only A (£1,000, local) falls in Q1.
    assert spread.startswith("total £1,000.00, lines 1, contracts 1, suppliers 1")
    assert "lines on their award date (no contract period): 0" in spread

    group = localvalue(
        "metrics", "--group", "birmingham-and-solihull", "--period", "2025Q1", "--basis", "awarded", database_url=db.url
    ).stdout
    assert "total £4,600.00" in group
    assert "share 43.5%" in group  # £2,000 local of £4,600
    missing = localvalue("metrics", "--anchor", "ZZZ", "--period", "2025Q1", database_url=db.url, check=False)
    assert missing.returncode != 0
    assert "no organisation matches 'ZZZ'" in missing.stderr


async def test_a_scope_is_an_anchor_a_group_of_its_members_or_all_anchors(session: Any) -> None:
    """The scope of /metrics, with the errors for an anchor or group that is not there and a group with no
    members."""
    a = m.Organisation(name="Council A", name_key="council a", kind="local_authority", is_anchor=True)
    b = m.Organisation(name="Council B", name_key="council b", kind="local_authority", is_anchor=True)
    other = m.Organisation(name="Not an anchor", name_key="not an anchor", kind="local_authority")
    session.add_all([a, b, other])
    await session.flush()
    group = m.AnchorGroup(slug="a-and-b", name="A and B")
    empty = m.AnchorGroup(slug="empty", name="No one")
    session.add_all([group, empty])
    await session.flush()
    session.add_all([m.AnchorGroupMember(group_id=group.id, organisation_id=i) for i in (b.id, a.id)])
    await session.commit()
    assert await resolve_scope(session, anchor_id=a.id) == Scope(
        f"org:{a.id}", "anchor", "Council A", (a.id,), a.id, None
    )
    assert await resolve_scope(session, group="a-and-b") == Scope(
        "group:a-and-b", "group", "A and B", tuple(sorted((a.id, b.id))), None, group.id
    )
    every = await resolve_scope(session)
    assert (every.key, every.kind, every.name) == ("all", "all", "All anchors")
    assert set(every.anchor_ids) >= {a.id, b.id}
    assert other.id not in every.anchor_ids
    assert list(every.anchor_ids) == sorted(every.anchor_ids)
    with pytest.raises(NotFound, match=r"No organisation with id 999999\."):
        await resolve_scope(session, anchor_id=999999)
    with pytest.raises(NotFound, match="No anchor group 'nope'"):
        await resolve_scope(session, group="nope")
    with pytest.raises(DomainError, match="Anchor group 'empty' has no members"):
        await resolve_scope(session, group="empty")
    with pytest.raises(DomainError, match="not both"):
        await resolve_scope(session, anchor_id=a.id, group="a-and-b")
