"""Social-value commitments through the real app: an editor records, a return is entered, a reviewer verifies or
rejects with a reason; another organisation's editor cannot; committed vs delivered vs verified move as expected."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.metrics.measures import seed_measures
from tests.conftest import Database
from tests.support.api import bearer, fingerprint, make_org, make_supplier, make_token


async def _measure(session: AsyncSession, code: str) -> m.Measure:
    return (await session.scalars(select(m.Measure).where(m.Measure.code == code))).one()


async def _setup(session: AsyncSession, client: Any) -> dict[str, Any]:
    await seed_measures(session)
    walsall = await make_org(session, "Walsall Healthcare NHS Trust", ods_code="RBK")
    dudley = await make_org(session, "The Dudley Group NHS Foundation Trust", ods_code="RNA")
    supplier = await make_supplier(session, "Brum Community Meals CIC", postcode="B15 2GW")
    editor = await make_token(session, "editor", walsall.id, name="jo@walsall")
    other = await make_token(session, "editor", dudley.id, name="sam@dudley")
    reviewer = await make_token(session, "reviewer", name="rev@icb", reviews=[walsall.id])
    created = await client.post(
        "/contracts",
        json={
            "buyer_id": walsall.id,
            "title": "Patient meals",
            "value": "125000.00",
            "award_date": "2025-04-14",
            "start_date": "2025-05-01",
            "end_date": "2027-04-30",
            "suppliers": [{"supplier_id": supplier.id}],
        },
        headers=bearer(editor),
    )
    assert created.status_code == 201, created.text
    return {
        "walsall": walsall,
        "supplier": supplier,
        "editor": editor,
        "other": other,
        "reviewer": reviewer,
        "contract": created.json(),
        "jobs": await _measure(session, "LV-LOCAL-JOBS"),
        "carbon": await _measure(session, "LV-CARBON"),
        "vcse_spend": await _measure(session, "LV-SPEND-LOCAL-VCSE"),
        "mac": await _measure(session, "MAC 2.2"),
    }


async def _figures(client: Any, token: str, **params: Any) -> dict[str, Any]:
    response = await client.get("/commitments", params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _state(db: Database) -> dict[str, Any]:
    """Every row of every table except api_token (each worker writes its tokens' last uses in the background)."""
    rows = await fingerprint(db.engine)
    rows.pop("api_token")
    return rows


def _one(body: dict[str, Any], period: str, commitment_id: int) -> dict[str, Any]:
    (row,) = [f for f in body["figures"] if f["period"] == period and f["commitment_id"] == commitment_id]
    return row


async def test_record_return_verify_and_figures_move(app_client: Any, session: AsyncSession, db: Database) -> None:
    w = await _setup(session, app_client)
    contract_id, walsall = w["contract"]["id"], w["walsall"]

    # Another organisation's editor can neither record a commitment nor enter a return; nothing is written.
    before = await _state(db)
    refused = await app_client.post(
        f"/contracts/{contract_id}/commitments",
        json={"measure_id": w["jobs"].id, "targets": [{"period": "2025Q1", "quantity": 2}]},
        headers=bearer(w["other"]),
    )
    assert refused.status_code == 403
    assert await _state(db) == before

    created = await app_client.post(
        f"/contracts/{contract_id}/commitments",
        json={
            "measure_id": w["jobs"].id,
            "supplier_id": w["supplier"].id,
            "targets": [{"period": "2025Q1", "quantity": 2}, {"period": "2025Q2", "quantity": "3.5"}],
            "note": "From the tender response, section 4",
        },
        headers=bearer(w["editor"]),
    )
    assert created.status_code == 201, created.text
    commitment = created.json()
    assert commitment["unit"] == "FTE"
    assert commitment["targets"] == [{"period": "2025Q1", "quantity": "2"}, {"period": "2025Q2", "quantity": "3.5"}]
    cid = commitment["id"]

    before = await _state(db)
    foreign_return = await app_client.post(
        f"/commitments/{cid}/returns",
        json={"period": "2025Q1", "quantity": 1, "evidence_note": "payroll"},
        headers=bearer(w["other"]),
    )
    assert foreign_return.status_code == 403
    foreign_patch = await app_client.patch(
        f"/commitments/{cid}", json={"targets": [{"period": "2025Q1", "quantity": 0}]}, headers=bearer(w["other"])
    )
    assert foreign_patch.status_code == 403
    assert await _state(db) == before

    no_evidence = await app_client.post(
        f"/commitments/{cid}/returns", json={"period": "2025Q1", "quantity": 1}, headers=bearer(w["editor"])
    )
    assert no_evidence.status_code == 400
    entered = await app_client.post(
        f"/commitments/{cid}/returns",
        json={"period": "2025Q1", "quantity": "1.5", "evidence_url": "https://example.org/q1-payroll.pdf"},
        headers=bearer(w["editor"]),
    )
    assert entered.status_code == 201, entered.text
    q1_return = entered.json()
    assert q1_return["status"] == "submitted"
    again = await app_client.post(
        f"/commitments/{cid}/returns",
        json={"period": "2025Q1", "quantity": "9", "evidence_note": "second try"},
        headers=bearer(w["editor"]),
    )
    assert again.status_code == 409

    figures = await _figures(app_client, w["reviewer"], anchor_id=walsall.id, period="2025Q1")
    row = _one(figures, "2025Q1", cid)
    assert (row["committed"], row["delivered"], row["verified"], row["pending"]) == ("2", "1.5", "0", "1.5")

    # An editor cannot verify; a reviewer can.
    assert (await app_client.post(f"/returns/{q1_return['id']}/verify", headers=bearer(w["editor"]))).status_code == 403
    verified = await app_client.post(f"/returns/{q1_return['id']}/verify", headers=bearer(w["reviewer"]))
    assert verified.status_code == 200, verified.text
    assert verified.json()["status"] == "verified"
    assert verified.json()["reviewed_by"] == "rev@icb"
    twice = await app_client.post(f"/returns/{q1_return['id']}/verify", headers=bearer(w["reviewer"]))
    assert twice.status_code == 409
    row = _one(await _figures(app_client, w["reviewer"], anchor_id=walsall.id, period="2025Q1"), "2025Q1", cid)
    assert (row["committed"], row["delivered"], row["verified"], row["pending"]) == ("2", "1.5", "1.5", "0")

    # Q2: a return rejected with a reason counts as neither delivered nor verified, and can be replaced.
    q2 = await app_client.post(
        f"/commitments/{cid}/returns",
        json={"period": "2025Q2", "quantity": 4, "evidence_note": "timesheets"},
        headers=bearer(w["editor"]),
    )
    assert q2.status_code == 201
    q2_id = q2.json()["id"]
    no_reason = await app_client.post(f"/returns/{q2_id}/reject", json={}, headers=bearer(w["reviewer"]))
    assert no_reason.status_code == 400
    blank = await app_client.post(f"/returns/{q2_id}/reject", json={"reason": "   "}, headers=bearer(w["reviewer"]))
    assert blank.status_code == 400  # a reason of spaces is no reason: refused with the body's shape
    rejected = await app_client.post(
        f"/returns/{q2_id}/reject",
        json={"reason": "timesheets cover a different contract"},
        headers=bearer(w["reviewer"]),
    )
    assert rejected.status_code == 200
    assert rejected.json()["review_reason"] == "timesheets cover a different contract"
    row = _one(await _figures(app_client, w["reviewer"], anchor_id=walsall.id, period="2025Q2"), "2025Q2", cid)
    assert (row["committed"], row["delivered"], row["verified"], row["rejected"]) == ("3.5", "0", "0", "4")
    replaced = await app_client.post(
        f"/commitments/{cid}/returns",
        json={"period": "2025Q2", "quantity": 3, "evidence_note": "corrected timesheets"},
        headers=bearer(w["editor"]),
    )
    assert replaced.status_code == 201

    # The financial year adds its quarters per measure and unit.
    year = await _figures(app_client, w["reviewer"], anchor_id=walsall.id, period="2025/26")
    (total,) = year["totals"]
    assert (total["committed"], total["delivered"], total["verified"]) == ("5.5", "4.5", "1.5")

    events = (await session.scalars(select(m.AuditEvent).order_by(m.AuditEvent.id))).all()
    actions = [e.action for e in events if e.entity_type in {"commitment", "delivery_return"}]
    assert actions == [
        "commitment.create",
        "return.enter",
        "return.verify",
        "return.enter",
        "return.reject",
        "return.enter",
    ]
    reject = next(e for e in events if e.action == "return.reject")
    assert reject.reason == "timesheets cover a different contract"
    assert reject.actor_role == "reviewer"


async def test_cash_is_reported_apart_from_monetised_proxies(app_client: Any, session: AsyncSession) -> None:
    w = await _setup(session, app_client)
    contract_id, editor, reviewer = w["contract"]["id"], w["editor"], w["reviewer"]

    async def commit_and_deliver(measure: m.Measure, target: str, delivered: str, unit: str | None = None) -> int:
        body: dict[str, Any] = {"measure_id": measure.id, "targets": [{"period": "2025Q3", "quantity": target}]}
        if unit:
            body["unit"] = unit
        created = await app_client.post(f"/contracts/{contract_id}/commitments", json=body, headers=bearer(editor))
        assert created.status_code == 201, created.text
        cid: int = created.json()["id"]
        entered = await app_client.post(
            f"/commitments/{cid}/returns",
            json={"period": "2025Q3", "quantity": delivered, "evidence_note": "supplier return"},
            headers=bearer(editor),
        )
        assert entered.status_code == 201, entered.text
        verified = await app_client.post(f"/returns/{entered.json()['id']}/verify", headers=bearer(reviewer))
        assert verified.status_code == 200
        return cid

    # Carbon carries the BEIS 2021 central value, £245.00 per tCO2e (2020 prices): 2.5 t -> £612.50.
    carbon = await commit_and_deliver(w["carbon"], "3", "2.5")
    # Cash: £12,500.00 spent with local VCSEs, entered and shown in pounds.
    cash = await commit_and_deliver(w["vcse_spend"], "15000.00", "12500.00")
    shown = (await app_client.get(f"/commitments/{cash}", headers=bearer(editor))).json()
    assert (shown["unit"], shown["targets"], shown["returns"][0]["quantity"]) == (
        "pounds",
        [{"period": "2025Q3", "quantity": "15000.00"}],
        "12500.00",
    )
    fractional = await app_client.patch(
        f"/commitments/{cash}", json={"targets": [{"period": "2025Q3", "quantity": "10.505"}]}, headers=bearer(editor)
    )
    assert fractional.status_code == 422
    assert "like 5000.00" in fractional.json()["detail"]
    # A model award criterion has no unit of its own: the commitment must say what it counts.
    no_unit = await app_client.post(
        f"/contracts/{contract_id}/commitments",
        json={"measure_id": w["mac"].id, "targets": [{"period": "2025Q3", "quantity": 1}]},
        headers=bearer(editor),
    )
    assert no_unit.status_code == 422
    mac = await commit_and_deliver(w["mac"], "20", "12", unit="training places")

    body = await _figures(app_client, reviewer, anchor_id=w["walsall"].id, period="2025Q3")
    carbon_row, cash_row, mac_row = (_one(body, "2025Q3", c) for c in (carbon, cash, mac))
    assert (carbon_row["verified_proxy_pence"], carbon_row["verified_proxy"]) == (61250, "612.50")
    assert carbon_row["proxy_year"] == 2021
    assert carbon_row["proxy_price_base"] == "2020 prices"
    assert carbon_row["verified_cash_pence"] is None
    assert (cash_row["verified_cash_pence"], cash_row["verified_cash"]) == (1250000, "12500.00")
    assert cash_row["verified_proxy_pence"] is None
    assert mac_row["unit"] == "training places"
    assert mac_row["verified_proxy_pence"] is None
    assert (body["verified_cash_pence"], body["verified_proxy_pence"]) == (1250000, 61250)

    # An admin edits the carbon proxy (with its source, year and price base); the monetised figure follows.
    admin = await make_token(session, "admin")
    proxy = await app_client.put(
        f"/measures/{w['carbon'].id}/proxy",
        json={"value": "250.00", "source": "DESNZ carbon values, central series", "year": 2024, "price_base": "2024"},
        headers=bearer(admin),
    )
    assert proxy.status_code == 200, proxy.text
    row = _one(await _figures(app_client, reviewer, anchor_id=w["walsall"].id, period="2025Q3"), "2025Q3", carbon)
    assert (row["verified_proxy_pence"], row["proxy_year"]) == (62500, 2024)


async def test_commitment_edit_and_delete_rules(app_client: Any, session: AsyncSession) -> None:
    w = await _setup(session, app_client)
    contract_id, editor = w["contract"]["id"], w["editor"]
    created = await app_client.post(
        f"/contracts/{contract_id}/commitments",
        json={"measure_id": w["jobs"].id, "targets": [{"period": "2025Q1", "quantity": 1}]},
        headers=bearer(editor),
    )
    cid = created.json()["id"]
    changed = await app_client.patch(
        f"/commitments/{cid}",
        json={"targets": [{"period": "2025Q1", "quantity": 2}, {"period": "2025Q4", "quantity": 1}]},
        headers=bearer(editor),
    )
    assert changed.status_code == 200, changed.text
    assert [t["quantity"] for t in changed.json()["targets"]] == ["2", "1"]
    listed = await app_client.get(f"/contracts/{contract_id}/commitments", headers=bearer(w["reviewer"]))
    assert [c["id"] for c in listed.json()] == [cid]
    twice = await app_client.post(
        f"/contracts/{contract_id}/commitments",
        json={
            "measure_id": w["jobs"].id,
            "targets": [{"period": "2025Q1", "quantity": 1}, {"period": "2025Q1", "quantity": 2}],
        },
        headers=bearer(editor),
    )
    assert twice.status_code == 400
    foreign_supplier = await app_client.post(
        f"/contracts/{contract_id}/commitments",
        json={"measure_id": w["jobs"].id, "supplier_id": 999999, "targets": [{"period": "2025Q1", "quantity": 1}]},
        headers=bearer(editor),
    )
    assert foreign_supplier.status_code == 422

    entered = await app_client.post(
        f"/commitments/{cid}/returns",
        json={"period": "2025Q1", "quantity": 2, "evidence_note": "payroll"},
        headers=bearer(editor),
    )
    await app_client.post(f"/returns/{entered.json()['id']}/verify", headers=bearer(w["reviewer"]))
    refused = await app_client.delete(f"/commitments/{cid}", params={"reason": "mistake"}, headers=bearer(editor))
    assert refused.status_code == 422
    assert (await app_client.get(f"/commitments/{cid}", headers=bearer(editor))).status_code == 200
