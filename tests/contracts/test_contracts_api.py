"""Procurement teams' contract workflow through the real app: record, read, filter, page, update, withdraw."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from procurement import models as m
from tests.conftest import Database
from tests.support.api import bearer, make_org, make_supplier, make_token


async def test_contract_lifecycle_is_exact_and_audited(db: Database, session: Any, app_client: Any) -> None:
    walsall = await make_org(session, "Walsall Council", kind="local_authority", gss_code="E08000030")
    a = await make_supplier(session, "Able Care Ltd")
    b = await make_supplier(session, "Bright Meals CIC")
    c = await make_supplier(session, "Care Co-op")
    editor = await make_token(session, "editor", walsall.id, name="jo@walsall")
    headers = bearer(editor)

    created = await app_client.post(
        "/contracts",
        json={
            "buyer_id": walsall.id,
            "title": "Day opportunities",
            "value": 1000.01,  # a JSON number, decoded exactly
            "cpv_codes": ["85311000-2", "85312000"],
            "award_date": "2025-03-31",
            "start_date": "2025-04-01",
            "end_date": "2026-03-31",
            "suppliers": [{"supplier_id": a.id}, {"supplier_id": b.id}, {"supplier_id": c.id}],
        },
        headers=headers,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["value"] == "1000.01"
    assert body["value_pence"] == 100001
    assert body["cpv_codes"] == ["85311000", "85312000"]
    # 100001 pence in three: 33334 + 33334 + 33333 (leftover pence to the first shares), marked as a split.
    assert [x["share_pence"] for x in body["suppliers"]] == [33334, 33334, 33333]
    assert {x["share_basis"] for x in body["suppliers"]} == {"equal_split"}
    contract_id = body["id"]

    stated = await app_client.patch(
        f"/contracts/{contract_id}",
        json={
            "value": "900.00",
            "suppliers": [{"supplier_id": a.id, "share": "600.00"}, {"supplier_id": b.id, "share": "300.00"}],
        },
        headers=headers,
    )
    assert stated.status_code == 200, stated.text
    assert [(x["supplier_id"], x["share"], x["share_basis"]) for x in stated.json()["suppliers"]] == [
        (a.id, "600.00", "stated"),
        (b.id, "300.00", "stated"),
    ]

    withdrawn = await app_client.post(
        f"/contracts/{contract_id}/withdraw", json={"reason": "duplicate of the council's own record"}, headers=headers
    )
    assert withdrawn.status_code == 200
    assert withdrawn.json()["status"] == "withdrawn"
    again = await app_client.patch(f"/contracts/{contract_id}", json={"title": "x"}, headers=headers)
    assert again.status_code == 422

    events = (await session.scalars(select(m.AuditEvent).order_by(m.AuditEvent.id))).all()
    actions = [e.action for e in events if e.entity_type == "contract"]
    assert actions == ["contract.create", "contract.update", "contract.withdraw"]
    update = next(e for e in events if e.action == "contract.update")
    assert update.actor_name == "jo@walsall"
    assert update.actor_role == "editor"
    assert update.changes["value_pence"] == [100001, 90000]
    withdraw = next(e for e in events if e.action == "contract.withdraw")
    assert withdraw.reason == "duplicate of the council's own record"


async def test_list_filters_and_paging(db: Database, session: Any, app_client: Any) -> None:
    bcc = await make_org(session, "Birmingham City Council", gss_code="E08000025")
    uhb = await make_org(session, "University Hospitals Birmingham", ods_code="RRK")
    s1 = await make_supplier(session, "One Ltd")
    s2 = await make_supplier(session, "Two Ltd")
    admin = bearer(await make_token(session, "admin"))
    rows = [
        (bcc.id, s1.id, "2025-04-10", ["85311000"]),
        (bcc.id, s2.id, "2025-07-01", ["45000000"]),
        (uhb.id, s1.id, "2025-05-20", ["85111000"]),
        (uhb.id, s2.id, "2024-12-31", ["33100000"]),
        (bcc.id, s1.id, "2025-06-30", ["85312000"]),
    ]
    for buyer, supplier, award, cpv in rows:
        r = await app_client.post(
            "/contracts",
            json={
                "buyer_id": buyer,
                "title": f"c {award}",
                "value": "1.00",
                "award_date": award,
                "cpv_codes": cpv,
                "suppliers": [{"supplier_id": supplier}],
            },
            headers=admin,
        )
        assert r.status_code == 201, r.text

    async def awards(query: str) -> tuple[list[str], int]:
        r = await app_client.get(f"/contracts?{query}", headers=admin)
        assert r.status_code == 200, r.text
        page = r.json()
        return [x["award_date"] for x in page["items"]], page["total"]

    assert await awards(f"buyer_id={bcc.id}") == (["2025-07-01", "2025-06-30", "2025-04-10"], 3)
    assert await awards(f"supplier_id={s1.id}") == (["2025-06-30", "2025-05-20", "2025-04-10"], 3)
    assert await awards("from=2025-04-01&to=2025-06-30") == (["2025-06-30", "2025-05-20", "2025-04-10"], 3)
    assert await awards("cpv=853") == (["2025-06-30", "2025-04-10"], 2)
    assert await awards("cpv=85") == (["2025-06-30", "2025-05-20", "2025-04-10"], 3)
    page = await app_client.get("/contracts?limit=2&offset=2", headers=admin)
    assert page.json()["total"] == 5
    assert page.json()["limit"] == 2
    assert page.json()["offset"] == 2
    assert [x["award_date"] for x in page.json()["items"]] == ["2025-05-20", "2025-04-10"]


async def test_reads_need_a_token_but_anchors_are_public(db: Database, session: Any, app_client: Any) -> None:
    await make_org(session, "Solihull MBC", gss_code="E08000029", is_anchor=True)
    assert (await app_client.get("/contracts")).status_code == 401
    assert (await app_client.get("/suppliers")).status_code == 401
    anchors = await app_client.get("/organisations?anchor=true")
    assert anchors.status_code == 200
    assert [o["name"] for o in anchors.json()["items"]] == ["Solihull MBC"]
    reviewer = bearer(await make_token(session, "reviewer"))
    assert (await app_client.get("/contracts", headers=reviewer)).status_code == 200


async def test_non_gbp_is_kept_and_flagged(db: Database, session: Any, app_client: Any) -> None:
    org = await make_org(session, "NHS Trust", ods_code="RXK")
    sup = await make_supplier(session, "Danish Kit A/S")
    admin = bearer(await make_token(session, "admin"))
    r = await app_client.post(
        "/contracts",
        json={
            "buyer_id": org.id,
            "title": "Kit",
            "value": "5000",
            "currency": "eur",
            "suppliers": [{"supplier_id": sup.id}],
        },
        headers=admin,
    )
    assert r.status_code == 201
    assert (r.json()["currency"], r.json()["non_gbp"], r.json()["value"]) == ("EUR", True, "5000.00")


async def test_health_and_openapi(db: Database, app_client: Any) -> None:
    health = await app_client.get("/health")
    assert health.status_code == 200
    assert health.json()["database"]["status"] == "ok"
    assert health.json()["database"]["dialect"] == db.backend
    assert health.json()["database"]["revision"]
    spec = await app_client.get("/schema/openapi.json")
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    assert {"/contracts", "/contracts/{contract_id}", "/suppliers", "/organisations", "/health"} <= set(paths)
    docs = await app_client.get("/schema/swagger")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


async def test_the_documented_contract_examples_are_what_the_api_takes_and_gives(
    db: Database, session: Any, app_client: Any
) -> None:
    """POST /contracts's example body, with ids of this database, is accepted; the answer has exactly the fields and
    value types of the documented response example (served in /schema/openapi.json)."""
    spec = (await app_client.get("/schema/openapi.json")).json()
    create = spec["paths"]["/contracts"]["post"]
    body = create["requestBody"]["content"]["application/json"]["example"]
    documented = create["responses"]["201"]["content"]["application/json"]["example"]
    walsall = await make_org(session, "Walsall Healthcare NHS Trust", kind="nhs_trust", ods_code="RBK")
    meals = await make_supplier(session, "Brum Community Meals CIC")
    editor = await make_token(session, "editor", walsall.id)

    sent = {**body, "buyer_id": walsall.id, "suppliers": [{**s, "supplier_id": meals.id} for s in body["suppliers"]]}
    created = await app_client.post("/contracts", json=sent, headers=bearer(editor))
    assert created.status_code == 201, created.text
    real = created.json()
    assert set(real) == set(documented)
    assert {k: type(v) for k, v in real.items() if v is not None} == {
        k: type(v) for k, v in documented.items() if v is not None and real[k] is not None
    }
    assert (real["title"], real["value"], real["value_pence"], real["cpv_codes"]) == (
        documented["title"],
        documented["value"],
        documented["value_pence"],
        documented["cpv_codes"],
    )
    assert set(real["suppliers"][0]) == set(documented["suppliers"][0])
