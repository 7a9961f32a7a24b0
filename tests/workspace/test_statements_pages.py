"""The statements page through the real app (in process) on both databases: a reviewer previews a quarter (PDF and
HTML, nothing stored), publishes it through a confirmation that shows the headline, its coverage and what is left
out, sees it flagged when the live figures move, corrects it with a reason (an identical correction is refused),
and withdraws it with a reason; editors and reviewers of other organisations cannot."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from tests.statements.test_statements import PERIOD, _birmingham_quarter
from tests.support.people import csrf_of, make_person, sign_in
from tests.workspace.test_pages import _text


@pytest.fixture
async def client(app_client: Any) -> AsyncIterator[Any]:
    app_client.cookies.clear()
    app_client.follow_redirects = False
    yield app_client
    app_client.follow_redirects = True
    app_client.cookies.clear()


def _digest(html: str) -> str:
    found = re.search(r'name="digest" value="([0-9a-f]{64})"', html)
    assert found, html
    return found.group(1)


async def _statements(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(m.Statement)) or 0)


async def test_preview_publish_stale_correct_withdraw(client: Any, session: AsyncSession) -> None:
    data = await _birmingham_quarter(session, client)
    bcc = data["bcc"]
    await make_person(session, "rev@bcc.example", "reviewer", org="E08000025")
    await sign_in(client, "rev@bcc.example")
    # A reviewer of one organisation starts on it, on its latest quarter that is over.
    page = await client.get("/workspace/statements")
    assert page.status_code == 200, page.text
    text = _text(page.text)
    assert "Statements - Birmingham City Council" in text
    assert "Q1 2025/26" in text
    assert "State Never published" in text
    query = {"scope": f"anchor:{bcc.id}", "period": PERIOD, "basis": "awarded"}

    # Drafts from live figures, as PDF and as the public web page; nothing is stored.
    pdf = await client.get("/workspace/statements/preview.pdf", params=query)
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["cache-control"] == "no-store"
    assert "DRAFT" in " ".join(p.extract_text() or "" for p in PdfReader(io.BytesIO(pdf.content)).pages)
    html = await client.get("/workspace/statements/preview.html", params=query)
    assert html.status_code == 200
    html_text = _text(html.text)
    assert "Birmingham City Council: Q1 2025/26" in html_text
    assert "Draft: not published" in html_text
    assert "37.5%" in html_text
    assert await _statements(session) == 0

    # The confirmation: the headline, its coverage, what is left out; the form carries a hash of those figures.
    confirm = await client.get("/workspace/statements/confirm", params=query)
    assert confirm.status_code == 200
    text = _text(confirm.text)
    assert "Local share of value 37.5%" in text
    assert "Total value counted £200,000" in text
    assert "Coverage: value whose supplier location is known 90.0%" in text
    assert "Value whose supplier location is not known 10.0% (counted as not local)" in text
    assert "Not in pounds sterling: not converted, to avoid exchange-rate assumptions 0" in text
    assert "No award date: the quarter cannot be known 0" in text
    token, digest = csrf_of(confirm.text), _digest(confirm.text)
    form = {**query, "_csrf_token": token, "digest": digest}

    # Without the CSRF token, or after the figures moved (another digest), nothing is published.
    assert (await client.post("/workspace/statements/publish", data={**query, "digest": digest})).status_code == 403
    moved = await client.post("/workspace/statements/publish", data={**form, "digest": "0" * 64})
    assert moved.status_code == 409
    assert "The figures changed after you opened this confirmation" in _text(moved.text)
    assert await _statements(session) == 0

    published = await client.post("/workspace/statements/publish", data=form)
    assert published.status_code == 303, published.text
    assert published.headers["location"].endswith("&done=published")
    page = await client.get(published.headers["location"])
    text = _text(page.text)
    assert "The statement is published" in text
    assert "State Published, version 1" in text
    assert "by rev@bcc.example" in text
    assert "The live figures still match version 1 as published" in text
    first = (await session.scalars(select(m.Statement))).one()
    assert first.published_by == "rev@bcc.example"
    assert f'href="/public/statements/{first.id}.pdf"' in page.text

    # A correction with the same figures is refused, plainly; a correction needs a reason.
    confirm = await client.get("/workspace/statements/confirm", params=query)
    assert "Why are you correcting version 1?" in _text(confirm.text)
    form = {**query, "_csrf_token": token, "digest": _digest(confirm.text)}
    no_reason = await client.post("/workspace/statements/publish", data=form)
    assert no_reason.status_code == 400
    assert "Enter why you are correcting this statement" in _text(no_reason.text)
    same = await client.post("/workspace/statements/publish", data={**form, "reason": "Checked again"})
    assert same.status_code == 409
    assert "Nothing changed since version 1" in _text(same.text)
    assert await _statements(session) == 1

    # A supplier's location becomes known: the published statement is flagged with its differences.
    nowhere = data["suppliers"]["nowhere"]
    moved_supplier = await client.post(
        f"/suppliers/{nowhere.id}/overrides",
        json={"flag": "delivery_postcode", "value": "B1 1BB", "reason": "Invoice address"},
        headers=data["admin"],
    )
    assert moved_supplier.status_code == 201, moved_supplier.text
    page = await client.get("/workspace/statements", params=query)
    text = _text(page.text)
    assert "The live figures have changed since publication" in text
    assert re.search(r"headline: local share 0\.3750 0\.4750", text), text

    confirm = await client.get("/workspace/statements/confirm", params=query)
    assert "Local share of value 47.5%" in _text(confirm.text)
    corrected = await client.post(
        "/workspace/statements/publish",
        data={**query, "_csrf_token": token, "digest": _digest(confirm.text), "reason": "Supplier address found"},
    )
    assert corrected.status_code == 303, corrected.text
    page = await client.get(corrected.headers["location"])
    text = _text(page.text)
    assert "State Published, version 2" in text
    assert "Why it was corrected Supplier address found" in text
    assert re.search(
        r"1 Superseded \S+ \S+ \S+ by rev@bcc\.example Replaced by a correction: Supplier address found", text
    )
    assert "The live figures still match version 2" in text

    # Withdrawal: a reason is needed; then the record stays and its files go.
    second = (await session.scalars(select(m.Statement).where(m.Statement.version == 2))).one()
    url = f"/workspace/statements/{second.id}/withdraw"
    back = f"scope=anchor:{bcc.id}&period={PERIOD}&basis=awarded"
    empty = await client.post(url, data={"_csrf_token": token, "reason": "", "back": back})
    assert empty.status_code == 400
    assert "Enter why you are withdrawing this statement" in _text(empty.text)
    withdrawn = await client.post(url, data={"_csrf_token": token, "reason": "Wrong organisation", "back": back})
    assert withdrawn.status_code == 303
    page = await client.get(withdrawn.headers["location"])
    text = _text(page.text)
    assert "State Withdrawn (version 2)" in text
    assert "by rev@bcc.example: Wrong organisation" in text
    assert (await client.get(f"/public/statements/{second.id}.pdf")).status_code == 410
    actions = (
        await session.scalars(
            select(m.AuditEvent.action).where(m.AuditEvent.entity_type == "statement").order_by(m.AuditEvent.id)
        )
    ).all()
    assert list(actions) == ["statement.publish", "statement.publish", "statement.withdraw"]


async def test_editors_and_other_reviewers_cannot_publish(client: Any, session: AsyncSession) -> None:
    data = await _birmingham_quarter(session, client)
    bcc = data["bcc"]
    query = {"scope": f"anchor:{bcc.id}", "period": PERIOD, "basis": "awarded"}
    await make_person(session, "ed@bcc.example", "editor", org="E08000025")
    await sign_in(client, "ed@bcc.example")
    dashboard = await client.get("/workspace")
    assert "Statements" not in _text(dashboard.text.split("</nav>")[0])
    for path in ("/workspace/statements", "/workspace/statements/confirm", "/workspace/statements/preview.pdf"):
        assert (await client.get(path, params=query)).status_code == 403, path
    refused = await client.post(
        "/workspace/statements/publish", data={**query, "_csrf_token": csrf_of(dashboard.text), "digest": "0" * 64}
    )
    assert refused.status_code == 403
    await client.post("/sign-out", data={"_csrf_token": client.cookies["lv_csrf"]})

    # A reviewer of University Hospitals Birmingham sees Birmingham City Council's statement but cannot publish it.
    await make_person(session, "rev@uhb.example", "reviewer", org="RRK")
    await sign_in(client, "rev@uhb.example")
    page = await client.get("/workspace/statements", params=query)
    assert page.status_code == 200
    assert "publishing, correcting or withdrawing it is for reviewers of every organisation" in _text(page.text)
    assert "/workspace/statements/confirm" not in page.text
    confirm = await client.get("/workspace/statements/confirm", params=query)
    assert "Publish the statement" not in _text(confirm.text)
    forced = await client.post(
        "/workspace/statements/publish",
        data={**query, "_csrf_token": csrf_of(page.text), "digest": _digest_or_zero(confirm.text)},
    )
    assert forced.status_code == 403
    assert "outside the organisations this reviewer reviews" in _text(forced.text)
    assert await _statements(session) == 0
    # A quarter that is not over cannot be published yet: the confirmation says so instead of offering the button.
    future = await client.get("/workspace/statements/confirm", params={**query, "period": "2030Q1"})
    assert "2030Q1 has not ended" in _text(future.text)


def _digest_or_zero(html: str) -> str:
    found = re.search(r'name="digest" value="([0-9a-f]{64})"', html)
    return found.group(1) if found else "0" * 64
