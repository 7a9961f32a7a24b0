"""LM3 through the real app: survey answers per supplier, the multiplier labelled as a survey-based estimate."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from tests.support.api import bearer, make_org, make_supplier, make_token


async def test_lm3_from_survey_answers(app_client: Any, session: AsyncSession) -> None:
    trust = await make_org(session, "Walsall Healthcare NHS Trust", ods_code="RBK")
    other = await make_org(session, "The Dudley Group NHS Foundation Trust", ods_code="RNA")
    meals = await make_supplier(session, "Brum Community Meals CIC", postcode="B15 2GW")
    laundry = await make_supplier(session, "Walsall Laundry Ltd", postcode="WS1 1TP")
    editor = await make_token(session, "editor", trust.id)
    stranger = await make_token(session, "editor", other.id)
    reviewer = await make_token(session, "reviewer")

    # The worked example in the research notes, split over two suppliers: R1 = £1,000,000; R2 = £160,000 to
    # local suppliers + £240,000 local wages = £400,000; R3 = £144,000. LM3 = 1,544,000 / 1,000,000 = 1.544.
    answers = [
        {"supplier_id": meals.id, "round1": "600000.00", "local_suppliers": "100000.00", "local_wages": "140000.00",
         "local_respend": "90000.00"},
        {"supplier_id": laundry.id, "round1": "400000.00", "local_suppliers": "60000.00", "local_wages": "100000.00",
         "local_respend": "54000.00"},
    ]  # fmt: skip
    for answer in answers:
        body = {"anchor_id": trust.id, "financial_year": "2025/26", **answer}
        refused = await app_client.post("/lm3/responses", json=body, headers=bearer(stranger))
        assert refused.status_code == 403
        created = await app_client.post("/lm3/responses", json=body, headers=bearer(editor))
        assert created.status_code == 201, created.text
    result = await app_client.get("/lm3", params={"anchor_id": trust.id, "year": "2025/26"}, headers=bearer(reviewer))
    assert result.status_code == 200, result.text
    body = result.json()
    assert body["label"] == "survey-based estimate"
    assert body["respondents"] == 2
    assert (body["round1_pence"], body["round2_pence"], body["round3_pence"]) == (100000000, 40000000, 14400000)
    assert body["multiplier"] == "1.5440"
    assert body["round3"] == "144000.00"

    # Answering again replaces that supplier's answers (one per anchor, year and supplier) and is audited.
    fixed = {**answers[1], "local_respend": "14000.00"}
    again = await app_client.post(
        "/lm3/responses", json={"anchor_id": trust.id, "financial_year": "2025/26", **fixed}, headers=bearer(editor)
    )
    assert again.status_code == 201
    after = (
        await app_client.get("/lm3", params={"anchor_id": trust.id, "year": "2025/26"}, headers=bearer(reviewer))
    ).json()
    assert after["respondents"] == 2
    assert after["multiplier"] == "1.5040"  # (1,000,000 + 400,000 + 104,000) / 1,000,000
    listed = await app_client.get(
        "/lm3/responses", params={"anchor_id": trust.id, "year": "2025/26"}, headers=bearer(reviewer)
    )
    assert [r["supplier_name"] for r in listed.json()] == ["Brum Community Meals CIC", "Walsall Laundry Ltd"]
    audit = (await session.scalars(select(m.AuditEvent).where(m.AuditEvent.entity_type == "lm3_response"))).all()
    assert [a.action for a in audit] == ["lm3.create", "lm3.create", "lm3.update"]
    assert audit[-1].changes == {"local_respend_pence": [5400000, 1400000]}


async def test_lm3_refuses_impossible_answers(app_client: Any, session: AsyncSession) -> None:
    trust = await make_org(session, "Walsall Healthcare NHS Trust", ods_code="RBK")
    supplier = await make_supplier(session, "Brum Community Meals CIC", postcode="B15 2GW")
    editor = await make_token(session, "editor", trust.id)
    base = {"anchor_id": trust.id, "supplier_id": supplier.id, "financial_year": "2025/26", "round1": "1000.00",
            "local_suppliers": "300.00", "local_wages": "200.00", "local_respend": "100.00"}  # fmt: skip
    for change, status in (
        ({"local_respend": "600.00"}, 422),  # R3 > R2
        ({"local_wages": "900.00"}, 422),  # R2 > R1
        ({"round1": "0"}, 422),
        ({"financial_year": "2025/27"}, 400),
        ({"round1": "10.001"}, 400),
    ):
        response = await app_client.post("/lm3/responses", json={**base, **change}, headers=bearer(editor))
        assert response.status_code == status, (change, response.text)
    none = await app_client.get("/lm3", params={"anchor_id": trust.id, "year": "2025/26"}, headers=bearer(editor))
    assert none.status_code == 404
