"""The workspace through the real app (in process) on both databases: sign-in and its CSRF protection, the same
Principal from a cookie as from a token, what editors may see, the dashboard's figures and the lines (and their
download) behind them, and the data-quality page."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import AsyncIterator
from typing import Any

import openpyxl
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import clock
from procurement import models as m
from procurement.organisations.seed import seed_anchors
from tests.support.api import bearer, make_supplier, make_token
from tests.support.people import PASSWORD, csrf_of, form_token, make_person, sign_in


@pytest.fixture
async def client(app_client: Any) -> AsyncIterator[Any]:
    """The shared in-process client with no cookies before or after (it is shared by the whole session)."""
    app_client.cookies.clear()
    app_client.follow_redirects = False
    yield app_client
    app_client.follow_redirects = True
    app_client.cookies.clear()


async def _org(session: AsyncSession, **where: str) -> m.Organisation:
    column, value = next(iter(where.items()))
    return (await session.scalars(select(m.Organisation).where(getattr(m.Organisation, column) == value))).one()


async def _world(session: AsyncSession, client: Any) -> dict[str, Any]:
    """Birmingham City Council buys £1,000 locally and £2,000 from London in Q1 2025/26, and £500 locally in
    Q4 2024/25; University Hospitals Birmingham buys £600 from Walsall."""
    await seed_anchors(session)
    await session.commit()
    bcc = await _org(session, gss_code="E08000025")
    uhb = await _org(session, ods_code="RRK")
    brum = await make_supplier(session, "Edgbaston Catering Ltd", postcode="B15 2GW")
    london = await make_supplier(session, "Westminster Consulting Ltd", postcode="SW1A 1AA")
    walsall = await make_supplier(session, "Walsall Laundry Ltd", postcode="WS1 1TP")
    bcc_token = await make_token(session, "editor", bcc.id)
    uhb_token = await make_token(session, "editor", uhb.id)
    for token, buyer, title, value, day, supplier, cpv in (
        (bcc_token, bcc, "School meals", "1000.00", "2025-05-01", brum, "55524000"),
        (bcc_token, bcc, "Consultancy", "2000.00", "2025-04-10", london, "79411000"),
        (bcc_token, bcc, "Winter meals", "500.00", "2025-02-01", brum, "55524000"),
        (uhb_token, uhb, "Linen service", "600.00", "2025-06-15", walsall, "98311000"),
    ):
        response = await client.post(
            "/contracts",
            json={
                "buyer_id": buyer.id,
                "title": title,
                "value": value,
                "currency": "GBP",
                "cpv_codes": [cpv],
                "award_date": day,
                "start_date": day,
                "end_date": day,
                "suppliers": [{"supplier_id": supplier.id}],
            },
            headers=bearer(token),
        )
        assert response.status_code == 201, response.text
    return {"bcc": bcc, "uhb": uhb, "brum": brum, "london": london, "bcc_token": bcc_token}


def _text(html: str) -> str:
    html = re.sub(r"<svg.*?</svg>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#39;", "'").replace("&amp;", "&")


async def test_pages_need_sign_in_and_come_back_after(client: Any, session: AsyncSession) -> None:
    await make_person(session, "rev@nhs.net", "reviewer")
    for path in ("/workspace", "/workspace/lines?period=2025Q1", "/workspace/imports", "/workspace/users"):
        response = await client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/sign-in?next=/workspace")
    response = await sign_in(client, "rev@nhs.net", next_path="/workspace/imports")
    assert response.status_code == 303
    assert response.headers["location"] == "/workspace/imports"
    cookie = response.headers["set-cookie"]
    assert "lv_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    # The demo serves http://127.0.0.1, so Secure is off unless the base URL is https:// (a setting).
    assert "Secure" not in cookie
    assert (await client.get("/workspace/imports")).status_code == 200
    # Only paths on this site are followed after sign-in.
    await client.post("/sign-out", data={"_csrf_token": client.cookies["lv_csrf"]})
    response = await sign_in(client, "rev@nhs.net", next_path="//evil.example/phish")
    assert response.headers["location"] == "/workspace"


async def test_forms_without_the_csrf_token_are_refused(client: Any, session: AsyncSession) -> None:
    await make_person(session, "rev@nhs.net", "reviewer")
    await form_token(client, "/sign-in")
    refused = await client.post("/sign-in", data={"email": "rev@nhs.net", "password": PASSWORD})
    assert refused.status_code == 403
    assert "security token was missing or out of date" in _text(refused.text)
    assert "lv_session" not in client.cookies
    forged = await client.post(
        "/sign-in", data={"_csrf_token": "0" * 128, "email": "rev@nhs.net", "password": PASSWORD}
    )
    assert forged.status_code == 403

    assert (await sign_in(client, "rev@nhs.net")).status_code == 303
    # Signed in, a form post without the token is refused and the session goes on.
    assert (await client.post("/sign-out")).status_code == 403
    assert (await client.get("/workspace/imports")).status_code == 200
    signed_out = await client.post("/sign-out", data={"_csrf_token": client.cookies["lv_csrf"]})
    assert signed_out.status_code == 303
    assert signed_out.headers["location"] == "/sign-in?signed_out=true"
    response = await client.get("/workspace")
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in?next=/workspace"


async def test_a_session_is_the_same_principal_as_a_token(client: Any, session: AsyncSession) -> None:
    """API calls accept the session cookie (with CSRF for writes) and bearer tokens need no CSRF token."""
    w = await _world(session, client)
    await make_person(session, "ed@nhs.net", "editor", org="E08000025")
    body = {"name": "Digbeth Bakers CIC", "postcode": "B5 6DY"}
    # A machine: bearer token, no cookies, no CSRF token.
    assert (await client.post("/suppliers", json=body, headers=bearer(w["bcc_token"]))).status_code == 201

    await sign_in(client, "ed@nhs.net")
    assert (await client.get("/metrics", params={"anchor_id": w["bcc"].id, "period": "2025Q1"})).status_code == 200
    without = await client.post("/suppliers", json={"name": "Cookie Only Ltd"})
    assert without.status_code == 403
    with_token = await client.post(
        "/suppliers", json={"name": "Cookie And Token Ltd"}, headers={"X-CSRFToken": client.cookies["lv_csrf"]}
    )
    assert with_token.status_code == 201, with_token.text
    # The editor rules apply unchanged: not another organisation's contract.
    other = await client.post(
        "/contracts",
        json={
            "buyer_id": w["uhb"].id,
            "title": "Not mine",
            "value": "1.00",
            "currency": "GBP",
            "suppliers": [{"supplier_id": w["brum"].id}],
        },
        headers={"X-CSRFToken": client.cookies["lv_csrf"]},
    )
    assert other.status_code == 403
    audit = (
        await session.scalars(
            select(m.AuditEvent).where(m.AuditEvent.action == "supplier.create").order_by(m.AuditEvent.id)
        )
    ).all()
    assert [a.actor_name for a in audit][-1] == "ed@nhs.net"


async def test_wrong_password_five_times_is_rate_limited(client: Any, session: AsyncSession) -> None:
    await make_person(session, "rev@nhs.net", "reviewer")
    for _ in range(5):
        response = await sign_in(client, "rev@nhs.net", password="not my password")
        assert response.status_code == 400
        assert "Enter a correct email address and password" in _text(response.text)
    limited = await sign_in(client, "rev@nhs.net")
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) > 0
    assert "There have been 5 wrong passwords for this email address" in _text(limited.text)
    assert "lv_session" not in client.cookies
    failures = await session.scalars(
        select(m.AuditEvent.action).where(m.AuditEvent.entity_type == "sign_in").order_by(m.AuditEvent.id)
    )
    assert list(failures) == ["session.sign_in_failed"] * 5 + ["session.sign_in_rate_limited"]


async def test_dashboard_figures_link_to_their_lines(client: Any, session: AsyncSession) -> None:
    w = await _world(session, client)
    await make_person(session, "rev@nhs.net", "reviewer")
    await sign_in(client, "rev@nhs.net")
    scope = f"anchor:{w['bcc'].id}"
    response = await client.get("/workspace", params={"scope": scope, "period": "2025Q1", "basis": "awarded"})
    assert response.status_code == 200, response.text
    text = _text(response.text)
    # £1,000 of £3,000 local, all locations known: 33.3% judged on 100%.
    assert "Local share of value where the supplier's location is known 33.3% Judged on 100.0% of the value" in text
    assert "Total value £3,000.00" in text
    # On the previous quarter (£500, all local): +£2,500 in total, +£500 local.
    assert "Previous period (Q4 2024/25) +£2,500.00 +£500.00" in text
    # SME status is not known for these suppliers: "not known", never 0%.
    assert "SME share where status is known not known Judged on 0.0% of the value" in text
    # The headline's link opens the lines behind it, and their sum is the figure.
    link = re.search(r'href="(/workspace/lines\?[^"]*tier=local[^"]*)"', response.text)
    assert link
    lines = await client.get(link.group(1).replace("&amp;", "&"))
    assert lines.status_code == 200
    lines_text = _text(lines.text)
    assert "1 line, counted value £1,000.00" in lines_text
    assert "School meals" in lines_text
    assert "Consultancy" not in lines_text
    # Each row of the breakdowns by location and by type opens its own lines.
    for table, key in (("table-tiers", "tier"), ("table-categories", "category")):
        body = response.text.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
        assert re.search(rf'<th scope="row" class="nhsuk-table__header"><a href="/workspace/lines\?[^"]*{key}=', body)
    tiers = _text(response.text.split('id="table-tiers"', 1)[1].split("</table>")[0])
    assert "Local (the anchor's own area) lines £1,000 33.3% 1" in tiers
    assert "Rest of the UK lines £2,000 66.7% 1" in tiers

    # A year, and the trend table over eight quarters.
    year = await client.get("/workspace", params={"scope": scope, "period": "2025/26"})
    assert "Total value £3,000.00" in _text(year.text)
    assert "Q4 2024/25 100.0% 100.0%" in _text(response.text)


async def test_lines_download_is_exactly_the_selection(client: Any, session: AsyncSession) -> None:
    w = await _world(session, client)
    reviewer = await make_token(session, "reviewer")
    await make_person(session, "rev@nhs.net", "reviewer")
    await sign_in(client, "rev@nhs.net")
    query = {"scope": f"anchor:{w['bcc'].id}", "period": "2025Q1", "basis": "awarded", "tier": "local"}
    response = await client.get("/workspace/lines.csv", params=query)
    assert response.status_code == 200
    assert response.headers["content-disposition"].endswith('-2025Q1-awarded-tier-local.csv"')
    rows = list(csv.DictReader(io.StringIO(response.text)))

    everything = await client.get(
        "/metrics.csv",
        params={"anchor_id": w["bcc"].id, "period": "2025Q1", "basis": "awarded"},
        headers=bearer(reviewer),
    )
    expected = [
        r for r in csv.DictReader(io.StringIO(everything.text)) if r["tier"] == "local" and not r["excluded_reason"]
    ]
    assert rows == expected
    assert [r["contract_title"] for r in rows] == ["School meals"]
    assert sum(int(r["allocated_pence"]) for r in rows) == 100000

    xlsx = await client.get("/workspace/lines.xlsx", params={**query, "tier": ""})
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content))["lines"]
    values = list(sheet.iter_rows(values_only=True))
    assert len(values) == 3  # header and the two lines of Q1 (School meals, Consultancy)
    # Sorted by value, largest first, in the page and the download alike.
    page = _text((await client.get("/workspace/lines", params={**query, "tier": ""})).text)
    assert page.index("Consultancy") < page.index("School meals")
    assert values[1][values[0].index("contract_title")] == "Consultancy"


async def test_bad_filters_are_pages_with_the_apis_status(client: Any, session: AsyncSession) -> None:
    await make_person(session, "rev@nhs.net", "reviewer")
    await sign_in(client, "rev@nhs.net")
    bad = await client.get("/workspace/lines", params={"period": "2025Q5"})
    assert bad.status_code == 400
    assert "bad quarter label '2025Q5'" in _text(bad.text)
    assert bad.headers["content-type"].startswith("text/html")
    assert (await client.get("/workspace/lines", params={"tier": "nearby"})).status_code == 400
    assert (await client.get("/workspace", params={"scope": "anchor:99999"})).status_code == 404


async def test_editors_see_their_own_organisation_only(client: Any, session: AsyncSession) -> None:
    w = await _world(session, client)
    await make_person(session, "ed@nhs.net", "editor", org="E08000025")
    await sign_in(client, "ed@nhs.net")
    dashboard = await client.get("/workspace", params={"period": "2025Q1"})
    assert dashboard.status_code == 200
    assert "Birmingham City Council" in _text(dashboard.text)
    assert "University Hospitals Birmingham" not in _text(dashboard.text)
    assert 'href="/workspace/users"' not in dashboard.text
    other = await client.get("/workspace", params={"scope": f"anchor:{w['uhb'].id}"})
    assert other.status_code == 403
    assert "Editors see their own organisation's figures only." in _text(other.text)
    assert (await client.get("/workspace/lines.csv", params={"scope": ""})).status_code == 200
    assert (
        await client.get("/workspace/lines.csv", params={"scope": "group:birmingham-and-solihull"})
    ).status_code == 403
    users = await client.get("/workspace/users")
    assert users.status_code == 403
    assert "You cannot see this page" in _text(users.text)


async def test_admins_invite_people_from_the_users_page(client: Any, session: AsyncSession) -> None:
    await seed_anchors(session)
    await session.commit()
    await make_person(session, "admin@nhs.net", "admin")
    await sign_in(client, "admin@nhs.net")
    page = await client.get("/workspace/users")
    assert page.status_code == 200
    token = csrf_of(page.text)
    missing = await client.post("/workspace/users", data={"_csrf_token": token, "email": "", "role": "editor"})
    assert missing.status_code == 400
    assert "Enter the person's email address" in _text(missing.text)
    invited = await client.post(
        "/workspace/users", data={"_csrf_token": token, "email": "New.Editor@nhs.net", "role": "editor", "org": "RRK"}
    )
    assert invited.status_code == 200, invited.text
    link = re.search(r'<code id="invite-link">([^<]+)</code>', invited.text)
    assert link
    assert link.group(1).startswith("http://127.0.0.1:8000/set-password?token=")
    path = link.group(1).removeprefix("http://127.0.0.1:8000")
    client.cookies.clear()
    form = await client.get(path)
    assert form.status_code == 200
    assert form.headers["referrer-policy"] == "no-referrer"
    token_value = path.split("token=")[1]
    done = await client.post(
        "/set-password",
        data={"_csrf_token": csrf_of(form.text), "token": token_value, "password": PASSWORD, "confirm": PASSWORD},
    )
    assert done.status_code == 200
    assert "Your password is set" in _text(done.text)
    again = await client.get(path)
    assert again.status_code == 400
    assert "expired or has already been used" in _text(again.text)
    assert (await sign_in(client, "new.editor@nhs.net")).status_code == 303
    user = (await session.scalars(select(m.User).where(m.User.email == "new.editor@nhs.net"))).one()
    assert user.role == "editor"


async def test_data_quality_warns_when_a_feed_goes_quiet(client: Any, session: AsyncSession) -> None:
    now = clock.now()
    for days_ago, new in ((40, 10), (33, 5), (26, 7), (19, 0), (12, 0), (5, 0)):
        started = now - dt.timedelta(days=days_ago)
        run = m.ImportRun(
            source="contracts_finder",
            kind="feed",
            parameters={},
            status="completed",
            started_at=started,
            finished_at=started + dt.timedelta(minutes=3),
            fetched=new,
            new=new,
        )
        session.add(run)
    session.add(
        m.ImportRun(
            source="find_a_tender", kind="file", parameters={}, status="completed", started_at=now, finished_at=now
        )
    )
    await session.flush()
    session.add(m.ImportNote(run_id=run.id, level="warning", ocid="ocds-b5fd17-1", message="no value", created_at=now))
    await make_person(session, "rev@nhs.net", "reviewer")
    await session.commit()
    await sign_in(client, "rev@nhs.net")
    page = _text((await client.get("/workspace/imports")).text)
    assert "1 feed may have stopped" in page
    assert "Contracts finder: Nothing new for 26 days; new releases usually come every 7 days." in page
    assert "Find a tender" in page
    notes = await client.get(f"/workspace/imports/{run.id}", params={"level": "warning"})
    assert "no value" in _text(notes.text)
    assert f'href="/imports/{run.id}/notes.csv?level=warning"' in notes.text
    csv_notes = await client.get(f"/imports/{run.id}/notes.csv", params={"level": "warning"})
    assert csv_notes.status_code == 200
    assert "no value" in csv_notes.text
