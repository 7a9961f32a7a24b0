"""The procurement teams' pages through the real app (in process) on both databases: a contract recorded from
what people type, checked before saving, changed and withdrawn with reasons kept in its history; errors inline
in plain English; an editor's own organisation at a glance; the supplier search (full page and htmx)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import clock
from procurement import models as m
from procurement.organisations.seed import seed_anchors
from socialvalue.identifiers import normalise_org_name
from tests.support.people import form_token, make_person, sign_in


@pytest.fixture
async def client(app_client: Any) -> AsyncIterator[Any]:
    app_client.cookies.clear()
    app_client.follow_redirects = False
    yield app_client
    app_client.follow_redirects = True
    app_client.cookies.clear()


def _text(html: str) -> str:
    html = re.sub(r"<svg.*?</svg>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#39;", "'").replace("&amp;", "&")


async def _supplier(session: AsyncSession, name: str, postcode: str | None = None, coh: str | None = None) -> int:
    supplier = m.Supplier(name=name, name_key=normalise_org_name(name), postcode=postcode)
    if coh:
        supplier.identifiers.append(m.SupplierIdentifier(scheme="GB-COH", value=coh))
    session.add(supplier)
    await session.commit()
    return supplier.id


async def _org(session: AsyncSession, gss: str) -> m.Organisation:
    return (await session.scalars(select(m.Organisation).where(m.Organisation.gss_code == gss))).one()


async def test_contract_from_typed_values_to_withdrawal(session: AsyncSession, client: Any) -> None:
    await seed_anchors(session)
    await session.commit()
    bcc = await _org(session, "E08000025")
    meals = await _supplier(session, "Edgbaston Catering Ltd", "B15 2GW", "01234567")
    laundry = await _supplier(session, "Walsall Laundry Ltd")
    await make_person(session, "editor@bcc.example", "editor", "E08000025")
    await make_person(session, "editor@sol.example", "editor", "E08000029")
    assert (await sign_in(client, "editor@bcc.example")).status_code == 303

    token = await form_token(client, "/workspace/contracts/new")
    typed = {
        "_csrf_token": token,
        "title": "Community meals",
        "reference": "BCC-0001",
        "value": "£80k",
        "award_date": "05/13/2025",
        "start_date": "",
        "end_date": "",
        "cpv": "55520000-1, 123",
        "suppliers": "#999999",
    }
    refused = await client.post("/workspace/contracts/new", data=typed)
    assert refused.status_code == 400
    page = _text(refused.text)
    assert page.startswith("Error: Record a contract") or "Error: Record a contract" in refused.text
    assert "Write the contract value in full: '£80k' uses shorthand" in page
    assert "looks like month first: write the day first, as in 13/05/2025" in page
    assert "The CPV code '123' is not a CPV code" in page
    assert "No single supplier matches '#999999'" in page
    assert 'aria-describedby="value-hint value-error"' in refused.text
    assert await session.scalar(select(m.Contract.id)) is None

    today = clock.uk_today()
    typed |= {
        "value": "£80,000.00",
        "award_date": today.strftime("%d %B %Y"),
        "start_date": "12/05/2025",
        "end_date": "2026-05-11",
        "cpv": "55520000-1",
        "suppliers": f"#{meals}\nWalsall Laundry Limited",
    }
    confirm = await client.post("/workspace/contracts/new", data=typed)
    assert confirm.status_code == 200, confirm.text
    shown = _text(confirm.text)
    assert "Check the contract before saving" in shown
    assert "£80,000.00" in shown
    assert "12 May 2025" in shown
    assert "11 May 2026" in shown
    assert "Edgbaston Catering Ltd" in shown
    assert "Walsall Laundry Ltd" in shown
    assert "split evenly" in shown
    assert await session.scalar(select(m.Contract.id)) is None, "nothing is saved before it is confirmed"

    saved = await client.post("/workspace/contracts/new", data=typed | {"confirm": "yes"})
    assert saved.status_code == 303, saved.text
    contract_id = int(saved.headers["location"].split("/")[-1].split("?")[0])
    session.expire_all()
    contract = await session.get(m.Contract, contract_id)
    assert contract is not None
    assert contract.value_pence == 8_000_000
    assert contract.buyer_id == bcc.id
    assert contract.source_id == "BCC-0001"
    assert sorted((s.supplier_id, s.share_pence) for s in contract.suppliers) == sorted(
        [(meals, 4_000_000), (laundry, 4_000_000)]
    )

    overview = _text((await client.get("/workspace/organisation")).text)
    assert "Community meals" in overview
    assert "Walsall Laundry Ltd (#" in overview  # never classified: location and status not known
    listing = _text((await client.get("/workspace/contracts?status=active&cpv=555")).text)
    assert "1 contract." in listing
    assert "BCC-0001" in listing

    edit_path = f"/workspace/contracts/{contract_id}/edit"
    form = await client.get(edit_path)
    assert 'value="80,000.00"' in form.text
    token = await form_token(client, edit_path)
    change = typed | {"_csrf_token": token, "value": "90000", "reason": ""}
    no_reason = await client.post(edit_path, data=change)
    assert no_reason.status_code == 400
    assert "Enter why you are changing this contract" in _text(no_reason.text)
    change["reason"] = "Value corrected from the award letter"
    assert (await client.post(edit_path, data=change)).status_code == 200
    assert (await client.post(edit_path, data=change | {"confirm": "yes"})).status_code == 303
    session.expire_all()
    audit = (
        await session.scalars(
            select(m.AuditEvent).where(
                m.AuditEvent.entity_id == str(contract_id), m.AuditEvent.action == "contract.update"
            )
        )
    ).one()
    assert audit.reason == "Value corrected from the award letter"
    assert audit.changes["value_pence"] == [8_000_000, 9_000_000]

    detail_path = f"/workspace/contracts/{contract_id}"
    token = await form_token(client, detail_path)
    blank = await client.post(f"{detail_path}/withdraw", data={"_csrf_token": token, "reason": " "})
    assert blank.status_code == 400
    assert "Enter why the contract is withdrawn" in _text(blank.text)
    withdrawn = await client.post(f"{detail_path}/withdraw", data={"_csrf_token": token, "reason": "Awarded in error"})
    assert withdrawn.status_code == 303
    history = _text((await client.get(detail_path)).text)
    assert "Withdrawn: Awarded in error" in history
    assert "because: Value corrected from the award letter" in history

    # Another organisation's editor cannot see or change it.
    client.cookies.clear()
    assert (await sign_in(client, "editor@sol.example")).status_code == 303
    assert (await client.get(detail_path)).status_code == 403
    assert (await client.get(edit_path)).status_code == 403


async def test_supplier_search_by_name_number_and_postcode(session: AsyncSession, client: Any) -> None:
    await seed_anchors(session)
    await session.commit()
    meals = await _supplier(session, "Edgbaston Catering Ltd", "B15 2GW", "01234567")
    await _supplier(session, "Walsall Laundry Ltd", "WS1 1TP")
    await make_person(session, "editor@bcc.example", "editor", "E08000025")
    await sign_in(client, "editor@bcc.example")
    for query in ("edgbaston catering limited", "01234567", "b152gw", "B15 2"):
        page = _text((await client.get("/workspace/suppliers", params={"q": query})).text)
        assert f"# {meals} Edgbaston Catering Ltd" in page, query
        assert "Walsall" not in page, query
    partial = await client.get("/workspace/suppliers", params={"q": "laundry"}, headers={"HX-Request": "true"})
    assert partial.status_code == 200
    assert "<html" not in partial.text
    assert "Walsall Laundry Ltd" in partial.text
    assert "No supplier matches" in _text((await client.get("/workspace/suppliers?q=zzzz")).text)


async def test_reviewers_do_not_get_the_editors_pages(session: AsyncSession, client: Any) -> None:
    await seed_anchors(session)
    await session.commit()
    await make_person(session, "reviewer@bcc.example", "reviewer")
    await sign_in(client, "reviewer@bcc.example")
    response = await client.get("/workspace/contracts")
    assert response.status_code in (400, 403)
    menu = (await client.get("/workspace")).text
    assert "/workspace/contracts" not in menu


async def test_new_supplier_warns_of_likely_duplicates(session: AsyncSession, client: Any) -> None:
    await seed_anchors(session)
    await session.commit()
    meals = await _supplier(session, "Edgbaston Catering Ltd", "B15 2GW")
    await make_person(session, "editor@bcc.example", "editor", "E08000025")
    await sign_in(client, "editor@bcc.example")
    token = await form_token(client, "/workspace/suppliers/new")
    typed = {"_csrf_token": token, "name": "", "postcode": "nowhere", "coh": "12", "charity": ""}
    refused = await client.post("/workspace/suppliers/new", data=typed)
    assert refused.status_code == 400
    page = _text(refused.text)
    assert "Enter the supplier's name" in page
    assert "'nowhere' is not one; for example B15 2GW" in page

    typed |= {"name": "EDGBASTON CATERING LIMITED", "postcode": "b15 2gw", "coh": ""}
    warned = await client.post("/workspace/suppliers/new", data=typed)
    assert warned.status_code == 200
    page = _text(warned.text)
    assert "Is this supplier already recorded?" in page
    assert f"#{meals} Edgbaston Catering Ltd, B15 2GW (name 100% alike, same postcode)" in page
    assert (await session.scalar(select(func.count()).select_from(m.Supplier))) == 1

    created = await client.post("/workspace/suppliers/new", data=typed | {"not_a_duplicate": "yes"})
    assert created.status_code == 303
    new_id = int(created.headers["location"].split("created=")[1])
    session.expire_all()
    supplier = await session.get(m.Supplier, new_id)
    assert supplier is not None
    assert supplier.postcode == "B15 2GW"
    assert supplier.name_key == normalise_org_name("Edgbaston Catering Ltd")
    audit = (await session.scalars(select(m.AuditEvent).where(m.AuditEvent.action == "supplier.create"))).one()
    assert audit.entity_id == str(new_id)

    # A name nothing like any other is added at once.
    fresh = await client.post(
        "/workspace/suppliers/new", data=typed | {"name": "Walsall Laundry Ltd", "postcode": "WS1 1TP"}
    )
    assert fresh.status_code == 303
    found = _text((await client.get("/workspace/suppliers?q=walsall")).text)
    # Classified as it is saved: the picker shows where it is and why, not "not yet classified".
    assert "Not yet classified" not in found
    assert "location E08000030" in found, found  # WS1 1TP is in Walsall
