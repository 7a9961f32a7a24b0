"""Quarterly statements end to end: preview, publish, read the PDF back, correct, withdraw, verify, tamper."""

from __future__ import annotations

import io
import json
import re
from decimal import Decimal
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import select, update

from procurement import models as m
from procurement.auth import Principal, Role
from procurement.organisations.seed import seed_anchors
from procurement.statements.service import verify_all, withdraw
from procurement.suppliers.classification import classify
from socialvalue.snapshot import format_pence, format_share
from socialvalue.statement_pdf import render_statement_pdf
from tests.conftest import Database
from tests.support.api import bearer, make_supplier, make_token
from tests.support.cli import localvalue

PERIOD = "2025Q1"


async def _birmingham_quarter(session: Any, app_client: Any) -> dict[str, Any]:
    """Birmingham City Council with five real-postcode suppliers and contracts across three quarters."""
    await seed_anchors(session)
    await session.commit()
    bcc = (await session.scalars(select(m.Organisation).where(m.Organisation.gss_code == "E08000025"))).one()
    suppliers = {
        "brum": await make_supplier(session, "Digbeth Catering CIC", postcode="B5 5RS", postcode_source="manual"),
        "solihull": await make_supplier(session, "Solihull Care Ltd", postcode="B91 3QB", postcode_source="manual"),
        "london": await make_supplier(
            session, "Whitehall Consulting plc", postcode="SW1A 2AA", postcode_source="manual"
        ),
        "nowhere": await make_supplier(session, "Mystery Supplies Ltd"),
        "brum2": await make_supplier(session, "Aston Youth Charity", postcode="B6 4BN", postcode_source="manual"),
    }
    session.add(m.SupplierIdentifier(supplier_id=suppliers["brum2"].id, scheme="GB-CHC", value="1090095"))
    await session.commit()
    admin = bearer(await make_token(session, "admin"))
    contracts = [
        ("brum", "60000.00", "2025-04-10"),
        ("brum2", "15000.00", "2025-05-02"),
        ("solihull", "25000.00", "2025-06-30"),
        ("london", "80000.00", "2025-05-15"),
        ("nowhere", "20000.00", "2025-04-01"),
        ("brum", "10000.00", "2025-01-15"),  # previous quarter (2024Q4)
        ("london", "50000.00", "2024-10-01"),
    ]
    for key, value, award in contracts:
        r = await app_client.post(
            "/contracts",
            json={
                "buyer_id": bcc.id,
                "title": f"{key} {award}",
                "value": value,
                "award_date": award,
                "cpv_codes": ["55520000"],
                "suppliers": [{"supplier_id": suppliers[key].id}],
            },
            headers=admin,
        )
        assert r.status_code == 201, r.text
    await classify(session, full=True)
    await session.commit()
    return {"bcc": bcc, "suppliers": suppliers, "admin": admin}


def _text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return re.sub(r"\s+", " ", " ".join(page.extract_text() or "" for page in reader.pages))


async def test_publish_read_back_and_public_access(db: Database, session: Any, app_client: Any) -> None:
    data = await _birmingham_quarter(session, app_client)
    bcc = data["bcc"]
    reviewer = bearer(await make_token(session, "reviewer", reviews=[bcc.id]))
    editor = bearer(await make_token(session, "editor", bcc.id))

    # Drafts are for reviewers only; nothing is stored by a preview.
    assert (await app_client.get(f"/statements/preview?anchor_id={bcc.id}&period={PERIOD}")).status_code == 401
    assert (
        await app_client.get(f"/statements/preview?anchor_id={bcc.id}&period={PERIOD}", headers=editor)
    ).status_code == 403
    draft = await app_client.get(f"/statements/preview?anchor_id={bcc.id}&period={PERIOD}", headers=reviewer)
    assert draft.status_code == 200
    assert "DRAFT" in _text(draft.content)
    assert (await app_client.get("/public/statements")).json()["total"] == 0

    # Only reviewers and admins publish.
    body = {"anchor_id": bcc.id, "period": PERIOD}
    assert (await app_client.post("/statements", json=body)).status_code == 401
    assert (await app_client.post("/statements", json=body, headers=editor)).status_code == 403
    published = await app_client.post("/statements", json=body, headers=reviewer)
    assert published.status_code == 201, published.text
    statement = published.json()
    assert statement["status"] == "published"
    assert statement["version"] == 1

    # The public sees it without a token; the frozen JSON, PDF and the live /metrics agree.
    listing = await app_client.get("/public/statements")
    assert listing.status_code == 200
    assert [s["id"] for s in listing.json()["items"]] == [statement["id"]]
    frozen = (await app_client.get(f"/public/statements/{statement['id']}.json")).json()
    pdf = await app_client.get(f"/public/statements/{statement['id']}.pdf")
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    live = (await app_client.get(f"/metrics?anchor_id={bcc.id}&period={PERIOD}&basis=awarded", headers=reviewer)).json()
    text = _text(pdf.content)

    # Hand-worked: Q1 2025/26 has 60,000 + 15,000 (Birmingham) + 25,000 (Solihull) + 80,000 (London)
    # + 20,000 (unknown) = £200,000; local to Birmingham (own LAD) = 75,000 -> 37.5%; unknown 10%.
    head = frozen["headline"]
    assert head["total_value_pence"] == 20_000_000
    assert head["local_share"] == "0.3750"
    assert head["unknown_locality_share"] == "0.1000"
    assert head["regional_share"] == "0.1250"
    assert format_pence(head["total_value_pence"]) in text
    for key in ("local_share", "local_share_known", "regional_share"):
        assert format_share(head[key]) in text, key
    # Status is known only for the CIC and the charity (£75,000 of £200,000): below half, so not known.
    assert head["coverage"]["status"] == "0.3750"
    assert head["sme_share"] is None
    sme_coverage = head["coverage"]["sme"]
    assert sme_coverage is not None
    assert Decimal(sme_coverage) < Decimal("0.5")
    assert "SME share not known" in text
    assert f"Coverage: SME status known {format_share(sme_coverage)}" in text
    assert "Local means Birmingham (the council's own area)" in text
    assert "(preset:" not in text
    assert "Words used in this statement" in text
    assert f"/public/statements/{statement['id']}.html" in text
    assert (
        "It rests on 5 contracts with 5 suppliers: Aston Youth Charity, Digbeth Catering CIC, Mystery Supplies Ltd, "
        "Solihull Care Ltd, Whitehall Consulting plc." in text
    )
    assert "Birmingham City Council" in text
    assert frozen["figures_sha256"] in text.replace(" ", "") or frozen["figures_sha256"][:16] in text

    awarded = next(b for b in live["bases"] if b["basis"] == "awarded")
    live_head = next(p for p in awarded["periods"] if p["period"] == PERIOD)["headline"]
    assert live_head["total_pence"] == head["total_value_pence"]
    assert Decimal(live_head["local_share"]["share"]) == Decimal(head["local_share"])
    assert Decimal(live_head["local_share"]["share_known"]) == Decimal(head["local_share_known"])
    assert Decimal(live_head["regional_share"]["share"]) == Decimal(head["regional_share"])
    assert live_head["sme_share"] == {
        "share": None,
        "share_known": None,
        "coverage": sme_coverage,
        "status": "not_known",
    }

    # Cacheable but revalidated on every use (so a withdrawal reaches readers), with ETags; 304 on a match.
    etag = pdf.headers["etag"]
    assert etag.strip('"') == statement["pdf_sha256"]
    assert pdf.headers["cache-control"] == "public, no-cache"
    again = await app_client.get(f"/public/statements/{statement['id']}.pdf", headers={"If-None-Match": etag})
    assert again.status_code == 304
    csv_text = (await app_client.get(f"/public/statements/{statement['id']}.csv")).text
    assert f"headline,awarded,local_share,{head['local_share']}" in csv_text
    assert "headline,awarded,sme_share,not known" in csv_text
    assert f"headline,awarded,coverage_sme,{sme_coverage}" in csv_text

    # The public pages list it with working links, without JavaScript: the home page names the anchor and its
    # page offers the files.
    assert f'href="/anchors/{statement["organisation_id"]}"' in (await app_client.get("/")).text
    home = await app_client.get(f"/anchors/{statement['organisation_id']}")
    assert home.status_code == 200
    assert "Birmingham City Council" in home.text
    assert f"/public/statements/{statement['id']}.pdf" in home.text
    assert f"/public/statements/{statement['id']}.html" in home.text
    assert "nhsuk-header" in home.text

    # The accessible version: the same frozen figures as an NHS.UK page.
    page = await app_client.get(f"/public/statements/{statement['id']}.html")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "Birmingham City Council: Q1 2025/26" in page.text
    assert "37.5%" in page.text
    assert f"not known (judged on {format_share(sme_coverage)} of the value)" in page.text
    assert frozen["figures_sha256"] in page.text
    assert "Words used in this statement" in page.text


@pytest.mark.slow
async def test_correction_withdrawal_reproducibility_and_tamper(db: Database, session: Any, app_client: Any) -> None:
    data = await _birmingham_quarter(session, app_client)
    bcc = data["bcc"]
    reviewer = bearer(await make_token(session, "reviewer", reviews=[bcc.id]))
    first = (
        await app_client.post("/statements", json={"anchor_id": bcc.id, "period": PERIOD}, headers=reviewer)
    ).json()

    # A second publication is a correction and needs a reason.
    refused = await app_client.post("/statements", json={"anchor_id": bcc.id, "period": PERIOD}, headers=reviewer)
    assert refused.status_code == 422
    assert "reason" in refused.json()["detail"]
    # A correction that changes no figure is refused, and the statement is not stale.
    same = await app_client.post(
        "/statements", json={"anchor_id": bcc.id, "period": PERIOD, "reason": "no change really"}, headers=reviewer
    )
    assert same.status_code == 409
    assert "nothing changed since version 1" in same.json()["detail"].lower()
    fresh = (await app_client.get(f"/statements/{first['id']}/staleness", headers=reviewer)).json()
    assert (fresh["stale"], fresh["differences"]) == (False, [])
    assert (await app_client.get(f"/statements/{first['id']}/staleness")).status_code == 401

    # A late award changes the live figures: the reviewer's API and CLI say so, figure by figure.
    late = await app_client.post(
        "/contracts",
        json={
            "buyer_id": bcc.id,
            "title": "late award",
            "value": "100000.00",
            "award_date": "2025-06-02",
            "cpv_codes": ["55520000"],
            "suppliers": [{"supplier_id": data["suppliers"]["brum"].id}],
        },
        headers=data["admin"],
    )
    assert late.status_code == 201, late.text
    stale = (await app_client.get(f"/statements/{first['id']}/staleness", headers=reviewer)).json()
    assert stale["stale"] is True
    changed = {d["figure"]: (d["published"], d["live"]) for d in stale["differences"]}
    assert changed["headline.total_value_pence"] == (20_000_000, 30_000_000)
    assert changed["headline.local_share"] == ("0.3750", "0.5833")
    await session.commit()
    listed = localvalue("statements", "list", database_url=db.url).stdout
    assert "STALE" in listed
    checked = localvalue("statements", "check", str(first["id"]), database_url=db.url, check=False)
    assert checked.returncode == 1
    assert "STALE" in checked.stdout
    assert re.search(r"headline\.total_value_pence\s+20000000\s+30000000", checked.stdout)

    second = await app_client.post(
        "/statements", json={"anchor_id": bcc.id, "period": PERIOD, "reason": "late contract added"}, headers=reviewer
    )
    assert second.status_code == 201
    assert second.json()["version"] == 2
    old = (await app_client.get(f"/public/statements/{first['id']}")).json()
    assert old["status"] == "superseded"
    assert old["superseded_reason"] == "late contract added"
    assert (await app_client.get(f"/public/statements/{first['id']}.pdf")).status_code == 200
    frozen2 = (await app_client.get(f"/public/statements/{second.json()['id']}.json")).json()
    assert frozen2["statement"]["supersedes"] == {"id": str(first["id"]), "version": 1, "reason": "late contract added"}

    # Byte-identical re-render from the stored snapshot.
    stored = (await session.scalars(select(m.Statement).order_by(m.Statement.id))).all()
    for statement in stored:
        assert render_statement_pdf(json.loads(statement.snapshot_json)) == statement.pdf
    assert all(v.ok for v in await verify_all(session))

    # Tampering with a stored PDF or snapshot is found.
    await session.execute(update(m.Statement).where(m.Statement.id == first["id"]).values(pdf=stored[0].pdf + b"%"))
    tampered = stored[1].snapshot_json.replace('"version":2', '"version":3')
    await session.execute(update(m.Statement).where(m.Statement.id == stored[1].id).values(snapshot_json=tampered))
    await session.commit()
    session.expire_all()
    results = {v.statement_id: v for v in await verify_all(session)}
    assert not results[first["id"]].ok
    assert any("PDF" in p for p in results[first["id"]].problems)
    assert not results[stored[1].id].ok

    # Withdrawal keeps the record and says why; its files are gone for the public.
    withdrawn = await app_client.post(
        f"/statements/{second.json()['id']}/withdraw", json={"reason": "wrong anchor"}, headers=reviewer
    )
    assert withdrawn.status_code == 200
    record = (await app_client.get(f"/public/statements/{second.json()['id']}")).json()
    assert (record["status"], record["withdrawn_reason"]) == ("withdrawn", "wrong anchor")
    gone = await app_client.get(f"/public/statements/{second.json()['id']}.pdf")
    assert gone.status_code == 410
    assert "wrong anchor" in gone.json()["detail"]
    anchor_page = (await app_client.get(f"/anchors/{record['organisation_id']}")).text
    assert "wrong anchor" in anchor_page
    # The tampered snapshot (version 2) does not take the public pages down: its figures are simply not shown.
    assert "not shown: its stored figures fail their integrity check" in anchor_page


@pytest.mark.parametrize(
    "path", ["/public/statements/abc.pdf", "/public/statements/1.exe", "/public/statements/999.pdf"]
)
async def test_unknown_statement_files_are_404(db: Database, app_client: Any, path: str) -> None:
    response = await app_client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_published_files_revalidate_so_a_withdrawal_propagates(
    db: Database, session: Any, app_client: Any
) -> None:
    """Files are cacheable but never `immutable`: a cache revalidates each use, and after a withdrawal the same
    revalidation (with the old ETag) gets 410, not 304."""
    data = await _birmingham_quarter(session, app_client)
    reviewer = bearer(await make_token(session, "cross_reviewer"))
    statement = (
        await app_client.post("/statements", json={"anchor_id": data["bcc"].id, "period": PERIOD}, headers=reviewer)
    ).json()
    etags = {}
    for ext in ("pdf", "json", "csv"):
        first = await app_client.get(f"/public/statements/{statement['id']}.{ext}")
        assert first.status_code == 200
        assert first.headers["cache-control"] == "public, no-cache"
        assert "immutable" not in first.headers["cache-control"]
        etags[ext] = first.headers["etag"]
        again = await app_client.get(
            f"/public/statements/{statement['id']}.{ext}", headers={"If-None-Match": etags[ext]}
        )
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["etag"] == etags[ext]

    withdrawn = await app_client.post(
        f"/statements/{statement['id']}/withdraw", json={"reason": "wrong quarter"}, headers=reviewer
    )
    assert withdrawn.status_code == 200
    for ext, etag in etags.items():
        gone = await app_client.get(f"/public/statements/{statement['id']}.{ext}", headers={"If-None-Match": etag})
        assert gone.status_code == 410, ext
        assert gone.headers["content-type"].startswith("application/problem+json")
        assert "wrong quarter" in gone.json()["detail"]
        assert "immutable" not in gone.headers.get("cache-control", "")


async def test_cached_public_listing_follows_every_publication_correction_and_withdrawal(
    db: Database, session: Any, app_client: Any
) -> None:
    """The listing is cached per worker process; a change made anywhere (this app, another worker, the CLI) shows
    on the next request, and a withdrawn statement is never listed as current."""
    data = await _birmingham_quarter(session, app_client)
    reviewer = bearer(await make_token(session, "cross_reviewer"))

    async def listed() -> dict[int, dict[str, Any]]:
        page = (await app_client.get("/public/statements")).json()
        assert page["total"] == len(page["items"])
        return {s["id"]: s for s in page["items"]}

    assert await listed() == {}
    first = (
        await app_client.post("/statements", json={"anchor_id": data["bcc"].id, "period": PERIOD}, headers=reviewer)
    ).json()
    assert {i: s["status"] for i, s in (await listed()).items()} == {first["id"]: "published"}
    assert (await listed())[first["id"]]["links"]["pdf"].endswith(".pdf")  # served again, from the cache

    # Another quarter, then a correction of it: the listing gains the new version and marks the old superseded.
    late = await app_client.post(
        "/contracts",
        json={
            "buyer_id": data["bcc"].id,
            "title": "late award",
            "value": "100000.00",
            "award_date": "2025-06-02",
            "cpv_codes": ["55520000"],
            "suppliers": [{"supplier_id": data["suppliers"]["brum"].id}],
        },
        headers=data["admin"],
    )
    assert late.status_code == 201
    second = (
        await app_client.post(
            "/statements",
            json={"anchor_id": data["bcc"].id, "period": PERIOD, "reason": "late contract added"},
            headers=reviewer,
        )
    ).json()
    now = await listed()
    assert (now[first["id"]]["status"], now[first["id"]]["superseded_by_id"]) == ("superseded", second["id"])
    assert now[second["id"]]["status"] == "published"
    assert [s["id"] for s in (await app_client.get(f"/public/statements?period={PERIOD}")).json()["items"]] == [
        second["id"],
        first["id"],
    ]

    # Withdrawn outside this app (as another worker process or the CLI would): the next listing says so at once.
    user = (await session.scalars(select(m.User).where(m.User.role == "cross_reviewer"))).one()
    principal = Principal(user_id=user.id, name=user.name, role=Role.CROSS_REVIEWER, organisation_id=None)
    await withdraw(session, second["id"], actor=principal, reason="wrong anchor")
    await session.commit()
    after = (await listed())[second["id"]]
    assert (after["status"], after["withdrawn_reason"]) == ("withdrawn", "wrong anchor")
    assert set(after["links"]) == {"self"}  # no files offered for a withdrawn statement
    assert (await app_client.get(f"/public/statements?anchor_id={data['bcc'].id}")).json()["total"] == 2
    assert (await app_client.get("/public/statements?anchor_id=999999")).json()["total"] == 0
