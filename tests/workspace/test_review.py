"""The review queue through the real app on both databases: unknown locations ranked by value with their
evidence; a postcode set in the queue (a plain form with its CSRF token) raises the coverage at once, and one
that reaches another organisation waits as a change request, shown as such; another organisation's editor
cannot open this anchor's queue."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.organisations.seed import seed_anchors
from tests.support.api import bearer, make_supplier, make_token
from tests.support.people import csrf_of, make_person, sign_in


@pytest.fixture
async def client(app_client: Any) -> AsyncIterator[Any]:
    app_client.cookies.clear()
    app_client.follow_redirects = False
    yield app_client
    app_client.follow_redirects = True
    app_client.cookies.clear()


def _section(html: str, heading_id: str) -> str:
    """The part of the page from one queue's heading to the next heading of the same level."""
    part = html.split(f'id="{heading_id}"', 1)[1]
    return part.split("<h2", 1)[0]


def _coverage(html: str) -> str:
    found = re.search(r"Judged on ([\d.]+%) of the value", html)
    assert found, "no coverage figure on the page"
    return found.group(1)


async def test_queue_ranks_unknowns_and_a_postcode_raises_coverage(client: Any, session: AsyncSession) -> None:
    await seed_anchors(session)
    await session.commit()
    bcc = (await session.scalars(select(m.Organisation).where(m.Organisation.gss_code == "E08000025"))).one()
    uhb = (await session.scalars(select(m.Organisation).where(m.Organisation.ods_code == "RRK"))).one()
    bcc_id, uhb_id = bcc.id, uhb.id
    known = await make_supplier(session, "Edgbaston Catering Ltd", postcode="B15 2GW")
    mystery = await make_supplier(session, "Mystery Cleaning Ltd")
    shared = await make_supplier(session, "Shared Linen Ltd")
    ids = {"known": known.id, "mystery": mystery.id, "shared": shared.id}
    tokens = {
        bcc_id: bearer(await make_token(session, "editor", bcc_id)),
        uhb_id: bearer(await make_token(session, "editor", uhb_id)),
    }
    await session.commit()
    for buyer, supplier, value in (
        (bcc_id, "known", "1000.00"),
        (bcc_id, "mystery", "3000.00"),
        (bcc_id, "shared", "2000.00"),
        (uhb_id, "shared", "500.00"),
    ):
        made = await client.post(
            "/contracts",
            json={
                "buyer_id": buyer,
                "title": f"{supplier} work",
                "value": value,
                "award_date": "2025-05-01",
                "cpv_codes": ["55524000"],
                "suppliers": [{"supplier_id": ids[supplier]}],
            },
            headers=tokens[buyer],
        )
        assert made.status_code == 201, made.text
    await make_person(session, "ed@bcc.example", "editor", org="E08000025")
    await make_person(session, "ed@uhb.example", "editor", org="RRK")

    assert (await sign_in(client, "ed@bcc.example")).status_code == 303
    queue_url = f"/workspace/review?scope=anchor:{bcc_id}&period=2025Q1"
    page = await client.get(queue_url)
    assert page.status_code == 200, page.text
    # Largest value first; the supplier with a known postcode is not in the queue.
    assert page.text.index("Mystery Cleaning Ltd") < page.text.index("Shared Linen Ltd")
    assert "Edgbaston Catering Ltd" not in _section(page.text, "queue")
    assert "£3,000" in page.text
    assert "Evidence:" in page.text
    before = _coverage(page.text)
    assert before == "16.7%"  # £1,000 of £6,000 has a known location

    # A postcode without its CSRF token is refused.
    refused = await client.post(
        f"/workspace/review/suppliers/{ids['mystery']}/postcode", data={"postcode": "B5 5RS", "reason": "invoice"}
    )
    assert refused.status_code == 403
    # With it: applied at once (only Birmingham buys from this supplier), and the coverage rises.
    done = await client.post(
        f"/workspace/review/suppliers/{ids['mystery']}/postcode",
        data={
            "_csrf_token": csrf_of(page.text),
            "postcode": "b5 5rs",
            "reason": "invoice address checked",
            "back": f"scope=anchor:{bcc_id}&period=2025Q1&basis=awarded",
            "next": f"location-{ids['shared']}",
        },
    )
    assert done.status_code == 303, done.text
    # Post/redirect/get, back to the queue at the next row.
    assert done.headers["location"] == (
        f"/workspace/review?scope=anchor%3A{bcc_id}&period=2025Q1&basis=awarded&done=applied#location-{ids['shared']}"
    )
    page = await client.get(done.headers["location"].split("#")[0])
    assert "Postcode saved" in page.text
    assert _coverage(page.text) == "66.7%"
    assert "Mystery Cleaning Ltd" not in _section(page.text, "queue")

    # A supplier University Hospitals Birmingham also uses: the editor's postcode waits as a change request.
    waiting = await client.post(
        f"/workspace/review/suppliers/{ids['shared']}/postcode",
        data={"_csrf_token": csrf_of(page.text), "postcode": "B6 4BN", "reason": "delivery note checked"},
    )
    assert waiting.status_code == 303
    assert waiting.headers["location"].endswith("done=requested#queue")
    page = await client.get(f"{queue_url}&done=requested")
    assert "change request waiting for a reviewer" in page.text
    assert "Change request waiting" in page.text
    assert _coverage(page.text) == "66.7%"
    request = (await session.scalars(select(m.SupplierChangeRequest))).one()
    assert (request.status, request.payload["value"]) == ("pending", "B6 4BN")

    # A bad postcode is refused in words, not a 500.
    bad = await client.post(
        f"/workspace/review/suppliers/{ids['shared']}/postcode",
        data={"_csrf_token": csrf_of(page.text), "postcode": "not a postcode", "reason": "delivery note checked"},
    )
    assert bad.status_code == 422
    assert "is not a valid UK postcode" in bad.text

    # Another organisation's editor cannot open Birmingham's queue, nor see its pending request.
    client.cookies.clear()
    assert (await sign_in(client, "ed@uhb.example")).status_code == 303
    other = await client.get(queue_url)
    assert other.status_code == 403
    own = await client.get("/workspace/review?period=2025Q1")
    assert own.status_code == 200
    assert "Mystery Cleaning Ltd" not in own.text
    assert "Change request waiting" not in own.text
