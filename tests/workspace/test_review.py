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

from procurement import clock
from procurement import models as m
from procurement.organisations.seed import seed_anchors
from socialvalue.identifiers import normalise_org_name
from tests.conftest import Database
from tests.support.api import bearer, make_supplier, make_token
from tests.support.cli import localvalue
from tests.support.paths import FIXTURES_DIR
from tests.support.people import csrf_of, make_person, sign_in

ROYAL_FREE = FIXTURES_DIR / "spend" / "nhs_royal-free-ft_2020-Q1_over25k_with_VATreg.csv"


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


async def _birmingham_world(client: Any, session: AsyncSession) -> dict[str, Any]:
    """Birmingham buys from a supplier of unknown status and from two records of one organisation; University
    Hospitals Birmingham also buys from one of them. People: both editors, a reviewer of nothing, an admin."""
    await seed_anchors(session)
    await session.commit()
    bcc = (await session.scalars(select(m.Organisation).where(m.Organisation.gss_code == "E08000025"))).one()
    uhb = (await session.scalars(select(m.Organisation).where(m.Organisation.ods_code == "RRK"))).one()
    world: dict[str, Any] = {"bcc": bcc.id, "uhb": uhb.id}
    for key, name in (("plain", "Plain Print Ltd"), ("dup_a", "Twin Meals Ltd"), ("dup_b", "Twin Meals Limited")):
        supplier = await make_supplier(session, name, postcode="B15 2GW")
        supplier.name_key = normalise_org_name(name)  # as the suppliers service keys it
        world[key] = supplier.id
    tokens = {
        bcc.id: bearer(await make_token(session, "editor", bcc.id)),
        uhb.id: bearer(await make_token(session, "editor", uhb.id)),
    }
    await session.commit()
    for buyer, supplier, value in (
        (bcc.id, "plain", "3000.00"),
        (bcc.id, "dup_a", "2000.00"),
        (bcc.id, "dup_b", "1000.00"),
        (uhb.id, "dup_b", "500.00"),
    ):
        made = await client.post(
            "/contracts",
            json={"buyer_id": buyer, "title": f"{supplier} work", "value": value, "award_date": "2025-05-01",
                  "cpv_codes": ["55524000"], "suppliers": [{"supplier_id": world[supplier]}]},
            headers=tokens[buyer],
        )  # fmt: skip
        assert made.status_code == 201, made.text
    await make_person(session, "ed@bcc.example", "editor", org="E08000025")
    await make_person(session, "ed@uhb.example", "editor", org="RRK")
    await make_person(session, "admin@example.org", "admin")
    world["queue"] = f"/workspace/review?scope=anchor:{bcc.id}&period=2025Q1"
    world["back"] = f"scope=anchor:{bcc.id}&period=2025Q1&basis=awarded"
    return world


async def _open_queue(client: Any, email: str, url: str) -> str:
    client.cookies.clear()
    assert (await sign_in(client, email)).status_code == 303
    page = await client.get(url)
    assert page.status_code == 200, page.text
    return str(page.text)


async def _count(session: AsyncSession, model: Any) -> int:
    return len((await session.scalars(select(model))).all())


async def test_attest_a_status_in_place(client: Any, session: AsyncSession) -> None:
    w = await _birmingham_world(client, session)
    page = await _open_queue(client, "ed@bcc.example", w["queue"])
    status = _section(page, "status-queue")
    # Largest value first, each with its evidence and the status choices.
    assert status.index("Plain Print Ltd") < status.index("Twin Meals Ltd")
    assert 'value="sme"' in status
    assert 'value="not_vcse"' in status
    url = f"/workspace/review/suppliers/{w['plain']}/attest"
    form = {"_csrf_token": csrf_of(page), "kind": "sme", "reference": "https://find-and-update.company-information"
            ".service.gov.uk/company/01234567", "reason": "accounts show 12 staff", "back": w["back"]}  # fmt: skip

    # Bad input: no evidence, a kind that is not offered. Refused in words, nothing recorded.
    bad_forms = ((dict(form, reference=""), "reference is too short"), (dict(form, kind="bogus"), "Choose a status"))
    for bad, words in bad_forms:
        refused = await client.post(url, data=bad)
        assert refused.status_code in (400, 422), refused.text
        assert words in refused.text
    assert await _count(session, m.SupplierAttestation) == 0
    # Without the CSRF token: refused, nothing recorded.
    assert (await client.post(url, data={k: v for k, v in form.items() if k != "_csrf_token"})).status_code == 403
    assert await _count(session, m.SupplierAttestation) == 0

    # No JavaScript: post, then back to the queue with what was done.
    done = await client.post(url, data=dict(form, next=f"status-{w['dup_a']}"))
    assert done.status_code == 303, done.text
    assert done.headers["location"].endswith(f"done=attested#status-{w['dup_a']}")
    after = await client.get(done.headers["location"].split("#")[0])
    assert "Status recorded with its evidence" in after.text
    # SME alone does not settle the category (VCSE or not is still open): the row stays, with the new evidence.
    assert "sme=true (manual_attestation" in _section(after.text, "status-queue")
    (row,) = (await session.scalars(select(m.SupplierAttestation))).all()
    assert (row.supplier_id, row.kind) == (w["plain"], "sme")

    # With htmx: the answer is the row, done, and the coverage out of band; a refusal is a message in the row.
    htmx = {"HX-Request": "true"}
    swapped = await client.post(url, data=dict(form, kind="not_vcse"), headers=htmx)
    assert swapped.status_code == 200, swapped.text
    assert f'id="status-{w["plain"]}"' in swapped.text
    assert "app-review-item--done" in swapped.text
    assert 'id="review-coverage" hx-swap-oob="true"' in swapped.text
    assert "Judged on" in swapped.text
    after = await client.get(w["queue"])
    assert "Plain Print Ltd" not in _section(after.text, "status-queue")
    refused = await client.post(
        f"/workspace/review/suppliers/{w['dup_a']}/attest", data=dict(form, reference="x"), headers=htmx
    )
    assert refused.status_code == 200
    assert refused.headers["hx-retarget"] == f"#error-status-{w['dup_a']}"
    assert "too short" in refused.text
    assert await _count(session, m.SupplierAttestation) == 2


async def test_merge_duplicates_waits_when_it_reaches_another_organisation(client: Any, session: AsyncSession) -> None:
    w = await _birmingham_world(client, session)
    page = await _open_queue(client, "ed@bcc.example", w["queue"])
    row = _section(page, "status-queue").split(f'id="status-{w["dup_a"]}"')[1]
    assert "Merge a duplicate of Twin Meals Ltd" in row
    assert f'value="{w["dup_b"]}:{w["dup_a"]}"' in row
    url = f"/workspace/review/suppliers/{w['dup_a']}/merge"
    form = {"_csrf_token": csrf_of(page), "survivor": f"{w['dup_b']}:{w['dup_a']}", "reason": "same company number",
            "back": w["back"], "row": f"status-{w['dup_a']}"}  # fmt: skip

    # A pair that does not include this row's supplier, or no reason: refused, nothing merged.
    for bad in (dict(form, survivor=f"{w['plain']}:{w['dup_b']}"), dict(form, reason="")):
        refused = await client.post(url, data=bad)
        assert refused.status_code in (400, 422), refused.text
    assert await _count(session, m.SupplierMerge) == 0

    # Twin Meals Limited also sells to University Hospitals Birmingham: Birmingham's editor's merge waits.
    waiting = await client.post(url, data=form)
    assert waiting.status_code == 303
    assert "done=requested" in waiting.headers["location"]
    assert await _count(session, m.SupplierMerge) == 0
    request = (await session.scalars(select(m.SupplierChangeRequest))).one()
    assert (request.kind, request.status) == ("merge", "pending")

    # An admin merges at once; the duplicate now points at the supplier that stays.
    page = await _open_queue(client, "admin@example.org", w["queue"])
    done = await client.post(url, data=dict(form, _csrf_token=csrf_of(page)))
    assert done.status_code == 303
    assert "done=merged" in done.headers["location"]
    merge = (await session.scalars(select(m.SupplierMerge))).one()
    assert (merge.source_supplier_id, merge.target_supplier_id) == (w["dup_b"], w["dup_a"])


async def test_register_match_decisions_are_reviewers(client: Any, session: AsyncSession) -> None:
    w = await _birmingham_world(client, session)
    candidate = {"register": "companies_house", "number": "01234567", "name": "PLAIN PRINT LIMITED",
                 "postcode": "B15 2GW", "current": True, "score": 0.93, "via": "name"}  # fmt: skip
    session.add(
        m.SupplierRegisterMatch(
            supplier_id=w["plain"],
            status="review",
            method="name",
            reason="a close name, not sure enough",
            candidates=[candidate],
            entries=[],
            input_key="test",
            matched_at=clock.now(),
        )
    )
    await session.commit()
    # An editor does not decide register matches: no section, and a post is refused.
    page = await _open_queue(client, "ed@bcc.example", w["queue"])
    assert 'id="match-queue"' not in page
    url = f"/workspace/review/suppliers/{w['plain']}/register-match"
    form = {"_csrf_token": csrf_of(page), "candidate": "companies-house:01234567", "decision": "reject",
            "reason": "different trading address", "back": w["back"]}  # fmt: skip
    assert (await client.post(url, data=form)).status_code == 403
    assert await _count(session, m.RegisterMatchDecision) == 0

    page = await _open_queue(client, "admin@example.org", w["queue"])
    # The section is there for an admin, the candidate with its evidence (reading never re-matches).
    assert 'id="match-queue"' in page
    section = page.split('id="match-queue"')[1].split("<h2")[0]
    assert "PLAIN PRINT LIMITED" in section
    assert "01234567" in section
    bad = await client.post(url, data=dict(form, _csrf_token=csrf_of(page), decision="maybe"))
    assert bad.status_code in (400, 422)
    assert await _count(session, m.RegisterMatchDecision) == 0
    done = await client.post(url, data=dict(form, _csrf_token=csrf_of(page)))
    assert done.status_code == 303, done.text
    assert "done=rejected" in done.headers["location"]
    decision = (await session.scalars(select(m.RegisterMatchDecision))).one()
    assert (decision.decision, decision.number) == ("rejected", "01234567")


async def test_payee_decisions_are_the_anchors_editors(client: Any, session: AsyncSession) -> None:
    w = await _birmingham_world(client, session)
    session.add(
        m.PayeeMatch(
            anchor_id=w["bcc"],
            payee_key="plain print",
            payee_name="PLAIN PRINT",
            status="review",
            method="name",
            score=0.9,
            candidates=[{"supplier_id": w["plain"], "name": "Plain Print Ltd", "score": 0.9}],
        )
    )
    await session.commit()
    payee = (await session.scalars(select(m.PayeeMatch))).one()
    url = f"/workspace/review/payees/{payee.id}/decision"
    # University Hospitals Birmingham's editor: refused, nothing changed.
    page = await _open_queue(client, "ed@uhb.example", "/workspace/review?period=2025Q1")
    assert 'id="payee-queue"' not in page
    form = {"_csrf_token": csrf_of(page), "decision": f"confirm:{w['plain']}", "reason": "same VAT number",
            "back": w["back"]}  # fmt: skip
    assert (await client.post(url, data=form)).status_code == 403
    await session.refresh(payee)
    assert payee.status == "review"

    page = await _open_queue(client, "ed@bcc.example", w["queue"])
    payees = _section(page, "payee-queue")
    assert "PLAIN PRINT" in payees
    assert "90% similar" in payees
    bad = await client.post(url, data=dict(form, _csrf_token=csrf_of(page), reason=""))
    assert bad.status_code in (400, 422)
    await session.refresh(payee)
    assert payee.status == "review"
    done = await client.post(url, data=dict(form, _csrf_token=csrf_of(page)), headers={"HX-Request": "true"})
    assert done.status_code == 200, done.text
    assert f'id="payee-{payee.id}"' in done.text
    assert "Payee decided" in done.text
    await session.refresh(payee)
    assert (payee.status, payee.supplier_id) == ("confirmed", w["plain"])


@pytest.mark.slow
async def test_dashboard_on_the_paid_basis_where_the_anchor_has_payments(
    client: Any, session: AsyncSession, db: Database
) -> None:
    localvalue("seed", "anchors", "--list", "spend-demo", database_url=db.url)
    localvalue("seed", "anchors", database_url=db.url)
    localvalue("import", "spend", str(ROYAL_FREE), "--anchor", "RAL", database_url=db.url)
    rf = (await session.scalars(select(m.Organisation.id).where(m.Organisation.ods_code == "RAL"))).one()
    bcc = (await session.scalars(select(m.Organisation.id).where(m.Organisation.gss_code == "E08000025"))).one()
    await make_person(session, "admin@example.org", "admin")
    client.cookies.clear()
    assert (await sign_in(client, "admin@example.org")).status_code == 303

    # No basis asked for: Royal Free has payments and no contract lines, so it opens on the paid basis.
    page = await client.get(f"/workspace?scope=anchor:{rf}")
    assert page.status_code == 200, page.text
    assert '<option value="paid" selected>Paid (payments the anchor published)</option>' in page.text
    assert re.search(r"Q[12] 2020/21, paid basis\.", page.text)
    assert "Payment lines" in page.text
    # Its payees have no known location: the local share is not known, never 0%.
    figure = page.text.split('id="figure-local-share"', 1)[1].split("</div>\n</div>", 1)[0]
    assert 'data-known="false">not known<' in figure
    # The review queue on the same basis lists its payees' suppliers.
    queue = await client.get(f"/workspace/review?scope=anchor:{rf}&basis=paid")
    assert queue.status_code == 200
    assert "app-review-item" in _section(queue.text, "queue")
    # An anchor without payments is not offered the paid basis.
    other = await client.get(f"/workspace?scope=anchor:{bcc}")
    assert 'value="paid"' not in other.text
