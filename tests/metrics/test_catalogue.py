"""The measure catalogue: the Social Value Model as shipped, the project's local measures, no National TOMs
content, idempotent seeding, and admin-only proxy edits that survive a re-seed."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.metrics.measures import seed_measures
from socialvalue import catalogue
from tests.support.api import bearer, make_org, make_token
from tests.support.paths import REPO_DIR, SOCIAL_VALUE_DIR

SHIPPED = REPO_DIR / "socialvalue" / "data" / "social-value"


def test_shipped_model_is_the_research_file_with_its_sources() -> None:
    shipped = json.loads((SHIPPED / "ppn-social-value-model.json").read_text("utf-8"))
    assert shipped == json.loads((SOCIAL_VALUE_DIR / "ppn-social-value-model.json").read_text("utf-8"))
    sources = (SHIPPED / "SOURCES.md").read_text("utf-8")
    assert "Open Government Licence v3.0" in sources
    assert "CC BY-NC-ND" in sources
    assert sorted(p.name for p in SHIPPED.iterdir()) == ["SOURCES.md", "ppn-social-value-model.json"]


def test_model_measures_keep_codes_wording_and_status() -> None:
    measures = {(x["framework"], x["code"]): x for x in catalogue.model_measures(catalogue.shipped_model())}
    mac21 = measures[("ppn-06-20", "MAC 2.1")]
    assert mac21["name"].startswith("Create opportunities for entrepreneurship")
    assert mac21["verification_status"] == "verified"
    assert mac21["theme"] == "T2 Tackling economic inequality"
    assert mac21["outcome"] == "2 Create new businesses, new jobs and new skills"
    assert "Open Government Licence" in mac21["source"]
    assert measures[("ppn-06-20", "MAC 1.3")]["verification_status"] == "unverified"
    assert "Not re-seen" in measures[("ppn-06-20", "MAC 1.3")]["source"]
    assert measures[("ppn-002", "MAC 1a")]["theme"] == "M1 Kick start economic growth"
    assert measures[("ppn-002", "Outcome 2")]["name"] == "Skills for growth"
    # 23 PPN 06/20 criteria; PPN 002: five outcome-1 criteria and six outcomes without captured criteria
    # (outcome 5's title was not captured, so it is left out).
    assert sum(1 for f, _ in measures if f == "ppn-06-20") == 23
    assert sum(1 for f, _ in measures if f == "ppn-002") == 11
    assert ("ppn-002", "Outcome 5") not in measures
    assert all(x["unit"] == catalogue.CONTRACT_UNIT and x["kind"] == "output" for x in measures.values())


def test_local_measures_and_no_national_toms_content() -> None:
    local = {x["code"]: x for x in catalogue.local_measures()}
    assert local["LV-SPEND-LOCAL-VCSE"]["kind"] == "cash"
    assert local["LV-SPEND-LOCAL-VCSE"]["unit"] == "pounds"
    assert local["LV-APPRENTICESHIPS"]["unit"] == "starts"
    carbon = local["LV-CARBON"]
    assert (carbon["proxy_value_pence"], carbon["proxy_year"], carbon["proxy_price_base"]) == (
        24500,
        2021,
        "2020 prices",
    )
    assert "BEIS" in (carbon["proxy_source"] or "")
    assert "Open Government Licence" in (carbon["proxy_source"] or "")
    assert [x["code"] for x in local.values() if x["proxy_value_pence"] is not None] == ["LV-CARBON"]
    toms = json.loads((SOCIAL_VALUE_DIR / "toms-measure-names.json").read_text("utf-8"))
    toms_names = {x["short_name"].lower() for x in toms["measures_evidenced"]}
    everything = catalogue.shipped_catalogue()
    assert not [x for x in everything if x["code"].upper().startswith(("NT", "RE", "FM"))]
    assert not [x for x in everything if x["name"].lower() in toms_names]
    # The only TOMs proxy figure in the research (NT31, £244.63) is not shipped.
    assert all(x["proxy_value_pence"] != 24463 for x in everything)


async def test_seed_is_idempotent_and_keeps_admin_proxy_edits(app_client: Any, session: AsyncSession) -> None:
    total = len(catalogue.shipped_catalogue())
    assert await seed_measures(session) == (total, 0)
    assert await seed_measures(session) == (0, 0)
    await session.commit()
    rows = (await session.scalars(select(m.Measure))).all()
    assert len(rows) == total
    jobs = next(x for x in rows if x.code == "LV-LOCAL-JOBS")
    mac = next(x for x in rows if x.code == "MAC 2.1")
    cash = next(x for x in rows if x.code == "LV-SPEND-LOCAL-VCSE")

    admin = await make_token(session, "admin")
    org = await make_org(session, "Walsall Council", kind="local_authority", gss_code="E08000030")
    editor = await make_token(session, "editor", org.id)
    reviewer = await make_token(session, "reviewer")
    body = {"value": "12.34", "source": "Tenant's own licensed valuation", "year": 2025, "price_base": "2025 prices"}
    for token, status in ((editor, 403), (reviewer, 403), (None, 401)):
        assert (
            await app_client.put(f"/measures/{jobs.id}/proxy", json=body, headers=bearer(token))
        ).status_code == status
    half = await app_client.put(f"/measures/{jobs.id}/proxy", json={"value": "12.34"}, headers=bearer(admin))
    assert half.status_code == 400
    on_cash = await app_client.put(f"/measures/{cash.id}/proxy", json=body, headers=bearer(admin))
    assert on_cash.status_code == 422
    ok = await app_client.put(f"/measures/{jobs.id}/proxy", json=body, headers=bearer(admin))
    assert ok.status_code == 200, ok.text
    assert ok.json()["proxy"] == {
        "value_pence": 1234,
        "value": "12.34",
        "source": "Tenant's own licensed valuation",
        "year": 2025,
        "price_base": "2025 prices",
    }
    assert await seed_measures(session) == (0, 0)
    await session.commit()
    again = await app_client.get(f"/measures/{jobs.id}", headers=bearer(reviewer))
    assert again.json()["proxy"]["value_pence"] == 1234
    audit = (await session.scalars(select(m.AuditEvent).where(m.AuditEvent.action == "measure.proxy"))).all()
    assert [a.changes["proxy_value_pence"] for a in audit] == [[None, 1234]]

    listed = await app_client.get(
        "/measures", params={"framework": "ppn-06-20", "limit": 200}, headers=bearer(reviewer)
    )
    assert listed.json()["total"] == 23
    assert any(x["id"] == mac.id and x["verification_status"] == "verified" for x in listed.json()["items"])


async def test_an_anchor_adds_its_own_local_measure(app_client: Any, session: AsyncSession) -> None:
    await seed_measures(session)
    walsall = await make_org(session, "Walsall Council", kind="local_authority", gss_code="E08000030")
    dudley = await make_org(session, "Dudley Council", kind="local_authority", gss_code="E08000027")
    editor = await make_token(session, "editor", walsall.id)
    body = {"organisation_id": walsall.id, "code": "care-leavers", "name": "Care leavers employed", "unit": "FTE"}
    created = await app_client.post("/measures/local", json=body, headers=bearer(editor))
    assert created.status_code == 201, created.text
    assert created.json()["code"] == f"ORG{walsall.id}-CARE-LEAVERS"
    assert created.json()["owner_organisation_id"] == walsall.id
    assert (await app_client.post("/measures/local", json=body, headers=bearer(editor))).status_code == 409
    foreign = await app_client.post(
        "/measures/local", json={**body, "organisation_id": dudley.id}, headers=bearer(editor)
    )
    assert foreign.status_code == 403
    mine = await app_client.get(
        "/measures", params={"organisation_id": walsall.id, "limit": 200}, headers=bearer(editor)
    )
    theirs = await app_client.get(
        "/measures", params={"organisation_id": dudley.id, "limit": 200}, headers=bearer(editor)
    )
    assert mine.json()["total"] == theirs.json()["total"] + 1
