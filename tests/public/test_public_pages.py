"""The public pages over HTTP: every anchor with its latest published local share and coverage (not known below
the threshold, never 0%), and a page per anchor with every version, its reasons, a trend from published
snapshots only, and working file links."""

from __future__ import annotations

import re
from typing import Any

from procurement import models as m
from procurement.suppliers.classification import classify
from socialvalue.snapshot import format_judged, format_share
from tests.statements.test_statements import _birmingham_quarter
from tests.support.api import bearer, make_supplier, make_token


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


async def test_home_and_anchor_pages_show_published_figures_only(session: Any, app_client: Any) -> None:
    data = await _birmingham_quarter(session, app_client)
    bcc, admin = data["bcc"], data["admin"]
    reviewer = bearer(await make_token(session, "reviewer", reviews=[bcc.id]))

    # Nothing published yet: Birmingham is listed, with no figure at all.
    home = await app_client.get("/")
    assert home.status_code == 200
    assert "public" in home.headers["cache-control"]
    text = _text(home.text)
    assert "No institution has published a statement yet." in text
    assert "Institutions with no published statement" in text
    assert f'href="/anchors/{bcc.id}"' in home.text
    assert "%" not in text.split("Institutions with no published statement")[1].split("About the data")[0]

    # Q1 published; then a late award and a supplier of unknown location arrive.
    first = await app_client.post("/statements", json={"anchor_id": bcc.id, "period": "2025Q1"}, headers=reviewer)
    assert first.status_code == 201, first.text
    nowhere = await make_supplier(session, "Nowhere Known Ltd")
    await session.commit()
    for title, value, award, supplier in (
        ("late award", "100000.00", "2025-06-02", data["suppliers"]["brum"].id),
        # A quarter that went wholly to a supplier of unknown location: its share is not known, never 0%.
        ("unknown location", "30000.00", "2025-08-01", nowhere.id),
    ):
        made = await app_client.post(
            "/contracts",
            json={
                "buyer_id": bcc.id,
                "title": title,
                "value": value,
                "award_date": award,
                "cpv_codes": ["55520000"],
                "suppliers": [{"supplier_id": supplier}],
            },
            headers=admin,
        )
        assert made.status_code == 201, made.text
    await classify(session, full=True)
    await session.commit()
    # Q1 corrected: a new version; the first stays, superseded with the reason.
    corrected = await app_client.post(
        "/statements",
        json={"anchor_id": bcc.id, "period": "2025Q1", "reason": "late award added"},
        headers=reviewer,
    )
    assert corrected.status_code == 201, corrected.text
    q1 = corrected.json()
    q2 = await app_client.post("/statements", json={"anchor_id": bcc.id, "period": "2025Q2"}, headers=reviewer)
    assert q2.status_code == 201, q2.text
    q2_head = (await app_client.get(f"/public/statements/{q2.json()['id']}.json")).json()["headline"]
    assert q2_head["local_share"] is None
    # The quarter before, published and then withdrawn: it stays listed with its reason, with no files.
    q4 = await app_client.post("/statements", json={"anchor_id": bcc.id, "period": "2024Q4"}, headers=reviewer)
    assert q4.status_code == 201, q4.text
    withdrawn = await app_client.post(
        f"/statements/{q4.json()['id']}/withdraw", json={"reason": "wrong quarter boundaries"}, headers=reviewer
    )
    assert withdrawn.status_code == 200, withdrawn.text

    q1_head = (await app_client.get(f"/public/statements/{q1['id']}.json")).json()["headline"]
    q1_share = format_judged(q1_head["local_share"], q1_head["coverage"]["locality"])
    assert q1_share.endswith("%")

    # The home page: Birmingham's latest published quarter (Q2) is "not known" with its coverage.
    text = _text((await app_client.get("/")).text)
    row = text.split("Birmingham City Council", 1)[1][:200]
    assert row.startswith(" Q2 2025/26"), row
    assert "not known (judged on 0.0% of the value) 0.0%" in row
    assert "0.0% 0.0%" not in row

    # The anchor's page, by id and by code: every version, newest first, with statuses and reasons.
    for key in (str(bcc.id), "E08000025", "e08000025"):
        page = await app_client.get(f"/anchors/{key}")
        assert page.status_code == 200, page.text
    html = page.text
    text = _text(html)
    assert "<h1>Birmingham City Council</h1>" in html
    assert (
        "Local share of value, Q2 2025/26 (1 July to 30 September 2025) not known (judged on 0.0% of the value) "
        "Location known for 0.0% of the value"
    ) in text
    assert "Replaced by version 2: late award added" in text
    assert "Corrects version 1: late award added" in text
    assert "Withdrawn: wrong quarter boundaries" in text
    for link in ("html", "pdf?download=true", "json", "csv"):
        assert f"/public/statements/{q1['id']}.{link}" in html
    assert f"/public/statements/{q4.json()['id']}.pdf" not in html  # withdrawn: no files offered
    # The trend: published versions only (not the withdrawn Q4, not the superseded Q1 v1), with its table.
    assert "<svg" in html
    table = text.split("Local share of value in each published statement, by quarter", 2)[2].split("Every statement")[0]
    assert f"Q1 25/26 {q1_share}" in table
    assert "Q2 25/26 not known 0.0%" in table
    assert "Q4 24/25" not in table
    assert format_share(q1_head["coverage"]["locality"]) in table

    # The files the page links to are served.
    pdf = await app_client.get(f"/public/statements/{q1['id']}.pdf?download=true")
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF")
    assert (await app_client.get(f"/public/statements/{q1['id']}.html")).status_code == 200


async def test_an_address_nothing_answers_is_a_page_for_browsers_and_a_problem_for_the_api(app_client: Any) -> None:
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    page = await app_client.get("/public", headers={"Accept": browser})
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "<title>Page not found - Local Value</title>" in page.text
    assert "check you copied the whole address" in page.text
    assert 'href="/">Go to the published figures</a>' in page.text
    for accept in ("*/*", "application/json"):
        answer = await app_client.get("/public", headers={"Accept": accept})
        assert answer.status_code == 404
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["status"] == 404
    # An API route's own 404 stays a problem document, whoever asks.
    api = await app_client.get("/public/statements/424242.pdf", headers={"Accept": browser})
    assert api.status_code == 404
    assert api.headers["content-type"] == "application/problem+json"


async def test_unknown_anchor_is_a_404_page(session: Any, app_client: Any) -> None:
    for key in ("999999", "NOPE"):
        page = await app_client.get(f"/anchors/{key}")
        assert page.status_code == 404
        assert page.headers["content-type"].startswith("text/html")
        assert "No anchor institution" in page.text
    # A supplier or buyer that is not an anchor has no public page.
    other = m.Organisation(name="Not An Anchor Ltd", is_anchor=False)
    session.add(other)
    await session.commit()
    assert (await app_client.get(f"/anchors/{other.id}")).status_code == 404
