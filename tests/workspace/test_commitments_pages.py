"""The commitments page through the real app (in process) on both databases: committed vs delivered vs verified
per contract and measure; a return entered on the procurement pages (with an evidence file) waits for review with
its evidence; a reviewer verifies one and rejects another, each with a reason (plain forms, CSRF, redirect after
POST, audit); a missing reason is a plain-English error; editors and reviewers of other organisations cannot."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.metrics.measures import seed_measures
from tests.support.api import bearer, make_org, make_supplier, make_token
from tests.support.people import csrf_of, make_person, sign_in
from tests.workspace.test_pages import _text


@pytest.fixture
async def client(app_client: Any) -> AsyncIterator[Any]:
    app_client.cookies.clear()
    app_client.follow_redirects = False
    yield app_client
    app_client.follow_redirects = True
    app_client.cookies.clear()


async def _world(session: AsyncSession, client: Any) -> dict[str, Any]:
    """Walsall's patient-meals contract commits 10 local jobs in Q1 2025/26 and 12 in Q2."""
    await seed_measures(session)
    walsall = await make_org(session, "Walsall Healthcare NHS Trust", ods_code="RBK", is_anchor=True)
    dudley = await make_org(session, "The Dudley Group NHS Foundation Trust", ods_code="RNA", is_anchor=True)
    supplier = await make_supplier(session, "Brum Community Meals CIC", postcode="B15 2GW")
    editor = await make_token(session, "editor", walsall.id, name="jo@walsall")
    contract = await client.post(
        "/contracts",
        json={
            "buyer_id": walsall.id,
            "title": "Patient meals",
            "value": "125000.00",
            "award_date": "2025-04-14",
            "start_date": "2025-04-14",
            "end_date": "2027-04-30",
            "suppliers": [{"supplier_id": supplier.id}],
        },
        headers=bearer(editor),
    )
    assert contract.status_code == 201, contract.text
    jobs = (await session.scalars(select(m.Measure).where(m.Measure.code == "LV-LOCAL-JOBS"))).one()
    commitment = await client.post(
        f"/contracts/{contract.json()['id']}/commitments",
        json={
            "measure_id": jobs.id,
            "unit": "jobs",
            "targets": [{"period": "2025Q1", "quantity": 10}, {"period": "2025Q2", "quantity": 12}],
        },
        headers=bearer(editor),
    )
    assert commitment.status_code == 201, commitment.text
    return {"walsall": walsall, "dudley": dudley, "commitment": commitment.json(), "editor": editor}


async def _enter_return_on_the_page(client: Any, commitment_id: int, period: str, quantity: str) -> None:
    form = await client.get(f"/workspace/commitments/{commitment_id}/return")
    assert form.status_code == 200, form.text
    posted = await client.post(
        f"/workspace/commitments/{commitment_id}/return",
        data={
            "_csrf_token": csrf_of(form.text),
            "period": period,
            "quantity": quantity,
            "evidence_note": "Payroll extract from the supplier",
            "evidence_url": "https://example.org/payroll",
        },
        files={"evidence_file": ("payroll.csv", b"name,postcode\nA N Other,B15 2GW\n", "text/csv")},
    )
    assert posted.status_code == 303, posted.text


def _row(text: str, quarter: str) -> str:
    found = re.search(rf"\(FTE\) {re.escape(quarter)} (\S+ jobs) (\S+ jobs) (\S+ jobs) (\S+ jobs)", text)
    assert found, text
    return " ".join(found.groups())


async def test_reviewer_verifies_and_rejects_returns_with_reasons(client: Any, session: AsyncSession) -> None:
    w = await _world(session, client)
    cid = w["commitment"]["id"]
    await make_person(session, "jo.page@walsall.example", "editor", org="RBK")
    await sign_in(client, "jo.page@walsall.example")
    await _enter_return_on_the_page(client, cid, "Q1 2025/26", "8")
    await _enter_return_on_the_page(client, cid, "Q2 2025/26", "12")
    # The editor sees the figures and the returns waiting, but no verdict form.
    page = await client.get("/workspace/commitments")
    assert page.status_code == 200, page.text
    assert "Waiting for a reviewer of this organisation" in _text(page.text)
    assert "/workspace/commitments/returns/" not in page.text
    assert "Statements" not in _text(page.text.split("</nav>")[0])
    await client.post("/sign-out", data={"_csrf_token": client.cookies["lv_csrf"]})

    await make_person(session, "rev@walsall.example", "reviewer", org="RBK")
    await sign_in(client, "rev@walsall.example")
    scope = f"anchor:{w['walsall'].id}"
    page = await client.get("/workspace/commitments", params={"scope": scope})
    assert page.status_code == 200, page.text
    text = _text(page.text)
    # Committed, delivered (entered, not rejected), verified, waiting.
    assert _row(text, "Q1 2025/26") == "10 jobs 8 jobs 0 jobs 8 jobs"
    assert _row(text, "Q2 2025/26") == "12 jobs 12 jobs 0 jobs 12 jobs"
    assert "Payroll extract from the supplier" in text
    assert 'href="https://example.org/payroll" rel="noopener noreferrer"' in page.text
    files = re.findall(r'href="(/workspace/evidence/\d+)" download>payroll\.csv<', page.text)
    assert len(files) == 2
    download = await client.get(files[0])
    assert download.status_code == 200
    assert download.headers["content-disposition"] == 'attachment; filename="payroll.csv"'
    assert download.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert download.content == b"name,postcode\nA N Other,B15 2GW\n"

    returns = (await session.scalars(select(m.DeliveryReturn).order_by(m.DeliveryReturn.period))).all()
    q1, q2 = returns
    back = f"scope={scope}"
    token = csrf_of(page.text)
    # Without its CSRF token the form is refused; without a reason it is a plain-English error, nothing changes.
    refused = await client.post(f"/workspace/commitments/returns/{q1.id}/review", data={"decision": "verify"})
    assert refused.status_code == 403
    missing = await client.post(
        f"/workspace/commitments/returns/{q1.id}/review",
        data={"_csrf_token": token, "decision": "verify", "reason": " ", "back": back},
    )
    assert missing.status_code == 400
    assert "Enter why you verify this return" in _text(missing.text)
    assert f'href="#reason-{q1.id}"' in missing.text
    await session.refresh(q1)
    assert q1.status == "submitted"

    verified = await client.post(
        f"/workspace/commitments/returns/{q1.id}/review",
        data={"_csrf_token": token, "decision": "verify", "reason": "Matches the payroll report", "back": back},
    )
    assert verified.status_code == 303
    assert (
        verified.headers["location"] == f"/workspace/commitments?scope=anchor%3A{w['walsall'].id}&done=verified#returns"
    )
    rejected = await client.post(
        f"/workspace/commitments/returns/{q2.id}/review",
        data={"_csrf_token": token, "decision": "reject", "reason": "The payroll covers Q1 only", "back": back},
    )
    assert rejected.status_code == 303
    page = await client.get(verified.headers["location"].split("#")[0])
    text = _text(page.text)
    assert "Return verified" in text
    assert _row(text, "Q1 2025/26") == "10 jobs 8 jobs 8 jobs 0 jobs"
    assert _row(text, "Q2 2025/26") == "12 jobs 0 jobs 0 jobs 0 jobs"
    assert "Verified" in text
    assert "by rev@walsall.example Matches the payroll report" in text
    assert "The payroll covers Q1 only" in text
    assert "No return is waiting for review" in text
    audit = (
        await session.execute(
            select(m.AuditEvent.action, m.AuditEvent.actor_name, m.AuditEvent.reason)
            .where(m.AuditEvent.entity_type == "delivery_return", m.AuditEvent.action != "return.enter")
            .order_by(m.AuditEvent.id)
        )
    ).all()
    assert [tuple(a) for a in audit] == [
        ("return.verify", "rev@walsall.example", "Matches the payroll report"),
        ("return.reject", "rev@walsall.example", "The payroll covers Q1 only"),
    ]
    # A verdict is given once.
    again = await client.post(
        f"/workspace/commitments/returns/{q1.id}/review",
        data={"_csrf_token": token, "decision": "reject", "reason": "Changed my mind", "back": back},
    )
    assert again.status_code == 409
    assert f"Return {q1.id} is already verified" in _text(again.text)


async def test_editors_and_other_reviewers_cannot_give_verdicts(client: Any, session: AsyncSession) -> None:
    w = await _world(session, client)
    cid = w["commitment"]["id"]
    entered = await client.post(
        f"/commitments/{cid}/returns",
        json={"period": "2025Q1", "quantity": 3, "evidence_note": "Timesheets"},
        headers=bearer(w["editor"]),
    )
    assert entered.status_code == 201, entered.text
    return_id = entered.json()["id"]

    await make_person(session, "ed@walsall.example", "editor", org="RBK")
    await sign_in(client, "ed@walsall.example")
    page = await client.get("/workspace/commitments")
    refused = await client.post(
        f"/workspace/commitments/returns/{return_id}/review",
        data={"_csrf_token": csrf_of(page.text), "decision": "verify", "reason": "Looks right to me"},
    )
    assert refused.status_code == 403
    # Editors see their own organisation only.
    other = await client.get("/workspace/commitments", params={"scope": f"anchor:{w['dudley'].id}"})
    assert other.status_code == 403
    await client.post("/sign-out", data={"_csrf_token": client.cookies["lv_csrf"]})

    await make_person(session, "rev@dudley.example", "reviewer", org="RNA")
    await sign_in(client, "rev@dudley.example")
    page = await client.get("/workspace/commitments", params={"scope": f"anchor:{w['walsall'].id}"})
    assert page.status_code == 200
    assert "Waiting for a reviewer of this organisation" in _text(page.text)
    refused = await client.post(
        f"/workspace/commitments/returns/{return_id}/review",
        data={"_csrf_token": csrf_of(page.text), "decision": "verify", "reason": "Looks right to me"},
    )
    assert refused.status_code == 403
    assert "outside the organisations this reviewer reviews" in _text(refused.text)
    stored = await session.get(m.DeliveryReturn, return_id)
    assert stored is not None
    await session.refresh(stored)
    assert stored.status == "submitted"
