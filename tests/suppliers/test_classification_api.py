"""Supplier classification through the real app: tiers per anchor, overrides, attestations, local areas, CSV."""

from __future__ import annotations

import csv
import io
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.organisations.seed import seed_anchors
from socialvalue.geography import DATA_VERSION
from tests.support.api import bearer, count_rows, make_supplier, make_token


async def _anchor(session: AsyncSession, name: str) -> m.Organisation:
    return (await session.scalars(select(m.Organisation).where(m.Organisation.name == name))).one()


async def _seeded(session: AsyncSession) -> tuple[m.Organisation, m.Organisation]:
    await seed_anchors(session)
    await session.commit()
    return await _anchor(session, "Birmingham City Council"), await _anchor(session, "Walsall Council")


async def _classification(client: Any, token: str, supplier_id: int, anchor_id: int | None = None) -> dict[str, Any]:
    params = {"anchor_id": anchor_id} if anchor_id else {}
    response = await client.get(f"/suppliers/{supplier_id}/classification", params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _why(body: dict[str, Any], flag: str) -> list[dict[str, Any]]:
    return [w for w in body["why"] if w["flag"] == flag]


async def test_same_supplier_local_for_birmingham_not_for_walsall(app_client: Any, session: AsyncSession) -> None:
    bcc, walsall = await _seeded(session)
    token = await make_token(session, "reviewer")
    # Edgbaston is in Birmingham; Solihull is next door but its own LAD.
    brum = await make_supplier(session, "Edgbaston Catering Ltd", postcode="B15 2GW")
    solihull = await make_supplier(session, "Solihull Cleaning Ltd", postcode="B91 3QB")

    for_bcc = await _classification(app_client, token, brum.id, bcc.id)
    assert for_bcc["place"]["lad_code"] == "E08000025"
    assert for_bcc["place"]["lad_name"] == "Birmingham"
    assert for_bcc["place"]["method"] == "unit"
    assert for_bcc["tier"]["tier"] == "local"
    assert for_bcc["tier"]["area"] == "Birmingham (own LAD)"
    for_walsall = await _classification(app_client, token, brum.id, walsall.id)
    assert for_walsall["tier"]["tier"] == "regional"
    assert "outside Walsall (own LAD)" in for_walsall["tier"]["reason"]

    # Without anchor_id the tiers list covers every anchor (45 seeded).
    everyone = await _classification(app_client, token, brum.id)
    assert everyone["tier"] is None
    by_anchor = {t["anchor_id"]: t["tier"] for t in everyone["tiers"]}
    assert len(by_anchor) == 45
    assert by_anchor[bcc.id] == "local"
    assert by_anchor[walsall.id] == "regional"

    neighbour = await _classification(app_client, token, solihull.id, bcc.id)
    assert neighbour["place"]["lad_name"] == "Solihull"
    assert neighbour["tier"]["tier"] == "regional"

    # Walsall widens "local" to the 7 WMCA councils: now Birmingham suppliers are local for Walsall too.
    admin = await make_token(session, "admin")
    put = await app_client.put(
        f"/organisations/{walsall.id}/local-area", json={"preset": "wmca_7"}, headers=bearer(admin)
    )
    assert put.status_code == 200, put.text
    assert put.json()["preset"] == "wmca_7"
    assert len(put.json()["lad_codes"]) == 7
    assert (await _classification(app_client, token, brum.id, walsall.id))["tier"]["tier"] == "local"
    assert (await _classification(app_client, token, brum.id, bcc.id))["tier"]["tier"] == "local"


async def test_default_local_areas_per_kind(app_client: Any, session: AsyncSession) -> None:
    bcc, _ = await _seeded(session)
    trust = await _anchor(session, "Walsall Healthcare NHS Trust")
    wmca = await _anchor(session, "West Midlands Combined Authority")
    own = (await app_client.get(f"/organisations/{bcc.id}/local-area")).json()
    assert (own["preset"], own["is_default"], own["lad_codes"]) == ("own_lad", True, ["E08000025"])
    icb = (await app_client.get(f"/organisations/{trust.id}/local-area")).json()
    # Walsall Healthcare's ICB (QUA, Black Country) covers Dudley, Sandwell, Walsall and Wolverhampton.
    assert icb["preset"] == "icb"
    assert icb["lad_codes"] == ["E08000027", "E08000028", "E08000030", "E08000031"]
    combined = (await app_client.get(f"/organisations/{wmca.id}/local-area")).json()
    assert combined["preset"] == "wmca_7"
    assert {lad["name"] for lad in combined["lads"]} == {
        "Birmingham",
        "Coventry",
        "Dudley",
        "Sandwell",
        "Solihull",
        "Walsall",
        "Wolverhampton",
    }


async def test_local_area_custom_lads_and_permissions(app_client: Any, session: AsyncSession) -> None:
    bcc, walsall = await _seeded(session)
    walsall_editor = await make_token(session, "editor", walsall.id)
    refused = await app_client.put(
        f"/organisations/{bcc.id}/local-area", json={"preset": "wm_region"}, headers=bearer(walsall_editor)
    )
    assert refused.status_code == 403
    unknown = await app_client.put(
        f"/organisations/{walsall.id}/local-area", json={"lad_codes": ["E08000099"]}, headers=bearer(walsall_editor)
    )
    assert unknown.status_code == 422
    assert "E08000099" in unknown.json()["detail"]
    both = await app_client.put(
        f"/organisations/{walsall.id}/local-area",
        json={"preset": "own_lad", "lad_codes": ["E08000030"]},
        headers=bearer(walsall_editor),
    )
    assert both.status_code == 422
    ok = await app_client.put(
        f"/organisations/{walsall.id}/local-area",
        json={"lad_codes": ["e08000030", "E08000029"], "label": "Walsall and Solihull"},
        headers=bearer(walsall_editor),
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["lad_codes"] == ["E08000029", "E08000030"]
    assert ok.json()["is_default"] is False
    token = await make_token(session, "reviewer")
    solihull = await make_supplier(session, "Solihull Cleaning Ltd", postcode="B91 3QB")
    assert (await _classification(app_client, token, solihull.id, walsall.id))["tier"]["tier"] == "local"
    audit = (await session.scalars(select(m.AuditEvent).where(m.AuditEvent.action == "organisation.local_area"))).all()
    assert len(audit) == 1
    assert audit[0].changes["local_lad_codes"] == [None, ["E08000029", "E08000030"]]


async def test_override_needs_a_reason_and_is_explained(app_client: Any, session: AsyncSession, db: Any) -> None:
    await _seeded(session)
    editor_org = (await session.scalars(select(m.Organisation).where(m.Organisation.ods_code == "RBK"))).one()
    editor = await make_token(session, "editor", editor_org.id, name="jo@walsall")
    supplier = await make_supplier(session, "Acme Widgets Ltd", postcode="B15 2GW", declared_scale="large")

    before = await _classification(app_client, editor, supplier.id)
    assert before["sme"] is False
    assert _why(before, "sme")[0]["method"] == "feed_declared"
    assert _why(before, "sme")[0]["rule_id"] == "SZ1"

    for body in ({"flag": "sme", "value": "true"}, {"flag": "sme", "value": "true", "reason": "too short"}):
        refused = await app_client.post(f"/suppliers/{supplier.id}/overrides", json=body, headers=bearer(editor))
        assert refused.status_code == 400, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
    bad_value = await app_client.post(
        f"/suppliers/{supplier.id}/overrides",
        json={"flag": "sme", "value": "maybe", "reason": "Checked the latest filed accounts"},
        headers=bearer(editor),
    )
    assert bad_value.status_code == 422
    assert await count_rows(db.engine, "classification_override") == 0

    made = await app_client.post(
        f"/suppliers/{supplier.id}/overrides",
        json={"flag": "sme", "value": "true", "reason": "Filed accounts 2025: 38 staff, turnover GBP 4m"},
        headers=bearer(editor),
    )
    assert made.status_code == 201, made.text
    after = await _classification(app_client, editor, supplier.id)
    assert after["sme"] is True
    deciding = _why(after, "sme")[0]
    assert deciding["method"] == "override"
    assert deciding["by"] == "jo@walsall"
    assert deciding["evidence"] == "Filed accounts 2025: 38 staff, turnover GBP 4m"
    assert deciding["source"].startswith(f"override #{made.json()['id']} (sme=true) by jo@walsall")
    automatic = _why(after, "sme")[1]
    assert (automatic["method"], automatic["overruled"]) == ("feed_declared", True)
    assert [o["id"] for o in after["overrides"]] == [made.json()["id"]]
    audit = (await session.scalars(select(m.AuditEvent).where(m.AuditEvent.action == "supplier.override"))).one()
    assert audit.reason == "Filed accounts 2025: 38 staff, turnover GBP 4m"
    assert audit.actor_name == "jo@walsall"

    revoked = await app_client.post(
        f"/overrides/{made.json()['id']}/revoke", json={"reason": "accounts were the group's"}, headers=bearer(editor)
    )
    assert revoked.status_code == 200
    assert (await _classification(app_client, editor, supplier.id))["sme"] is False
    again = await app_client.post(
        f"/overrides/{made.json()['id']}/revoke", json={"reason": "accounts were the group's"}, headers=bearer(editor)
    )
    assert again.status_code == 409


async def test_delivery_postcode_override_changes_the_tier(app_client: Any, session: AsyncSession) -> None:
    bcc, walsall = await _seeded(session)
    token = await make_token(session, "reviewer")
    # Registered in London, trading from a Walsall branch.
    supplier = await make_supplier(session, "Big Facilities Ltd", postcode="SW1A 1AA")
    assert (await _classification(app_client, token, supplier.id, walsall.id))["tier"]["tier"] == "rest_of_uk"
    made = await app_client.post(
        f"/suppliers/{supplier.id}/overrides",
        json={"flag": "delivery_postcode", "value": "ws1 1tp", "reason": "Contract delivered from the Walsall depot"},
        headers=bearer(token),
    )
    assert made.status_code == 201, made.text
    assert made.json()["value"] == "WS1 1TP"
    body = await _classification(app_client, token, supplier.id, walsall.id)
    assert body["place"]["postcode_basis"] == "delivery"
    assert body["place"]["postcode_used"] == "WS1 1TP"
    assert body["tier"]["tier"] == "local"
    assert {t["anchor_id"]: t["tier"] for t in body["tiers"]}[bcc.id] == "regional"
    assert _why(body, "place")[0]["method"] == "override"


async def test_attestation_needs_a_reason_and_is_evidence(app_client: Any, session: AsyncSession) -> None:
    _, walsall = await _seeded(session)
    reviewer = await make_token(session, "reviewer", name="sam@reviews", reviews=[walsall.id])
    supplier = await make_supplier(session, "Brum Community Meals", postcode="B15 2GW")
    body = {"kind": "social_enterprise_mark", "reference": "SEM certificate 2025-0412"}
    refused = await app_client.post(f"/suppliers/{supplier.id}/attestations", json=body, headers=bearer(reviewer))
    assert refused.status_code == 400
    assert "reason" in refused.json()["detail"]
    body["reason"] = "certificate seen on the SEM register"
    made = await app_client.post(f"/suppliers/{supplier.id}/attestations", json=body, headers=bearer(reviewer))
    assert made.status_code == 201, made.text
    out = await _classification(app_client, reviewer, supplier.id)
    assert out["social_enterprise"] is True
    assert out["vcse"] is True
    se = _why(out, "social_enterprise")[0]
    assert (se["method"], se["rule_id"], se["evidence"]) == ("manual_attestation", "SE7", "SEM certificate 2025-0412")
    assert "sam@reviews" in se["source"]
    bad = await app_client.post(
        f"/suppliers/{supplier.id}/attestations",
        json={"kind": "hunch", "reference": "looks nice", "reason": "a feeling"},
        headers=bearer(reviewer),
    )
    assert bad.status_code == 422


async def test_tender_suitability_is_never_an_input(app_client: Any, session: AsyncSession) -> None:
    """A plain company with no declared scale stays unknown: nothing is inferred from what a tender suited."""
    await _seeded(session)
    token = await make_token(session, "reviewer")
    supplier = await make_supplier(session, "Midland Widgets Ltd", postcode="B15 2GW")
    out = await _classification(app_client, token, supplier.id)
    assert (out["category"], out["sme"], out["vcse"], out["social_enterprise"]) == ("unknown", None, None, None)
    for flag in ("category", "sme", "vcse", "social_enterprise", "place"):
        records = _why(out, flag)
        assert records, flag
        assert all(r["rule_version"] and r["at"] for r in records)


async def test_suppliers_csv_and_attribution(app_client: Any, session: AsyncSession) -> None:
    bcc, _ = await _seeded(session)
    token = await make_token(session, "reviewer")
    brum = await make_supplier(session, "Hope Kitchen CIC", postcode="B15 2GW")
    away = await make_supplier(session, "Jersey Shipping Ltd", postcode="JE2 3AB")
    nowhere = await make_supplier(session, "No Address Ltd")
    assert (await app_client.get("/suppliers.csv")).status_code == 401
    response = await app_client.get("/suppliers.csv", params={"anchor_id": bcc.id}, headers=bearer(token))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = {int(r["supplier_id"]): r for r in csv.DictReader(io.StringIO(response.text))}
    assert set(rows) == {brum.id, away.id, nowhere.id}
    assert rows[brum.id]["lad_name"] == "Birmingham"
    assert rows[brum.id]["region_name"] == "West Midlands"
    assert rows[brum.id]["category"] == "cic"
    assert rows[brum.id]["social_enterprise"] == "true"
    assert rows[brum.id]["tier"] == "local"
    assert "category=cic (legal_name_pattern, SE2)" in rows[brum.id]["evidence_summary"]
    assert "enterprise=enterprise-" in rows[brum.id]["rule_versions"]
    assert rows[away.id]["tier"] == "outside_uk"
    assert (rows[nowhere.id]["place_method"], rows[nowhere.id]["tier"]) == ("no_postcode", "unknown")

    attribution = await app_client.get("/geography/attribution")
    assert attribution.status_code == 200
    assert "Open Government Licence" in attribution.json()["attribution"]
    assert attribution.json()["data_version"] == DATA_VERSION
    out = await _classification(app_client, token, brum.id)
    assert "Office for National Statistics" in out["attribution"]


async def test_unknown_supplier_and_anchor_are_404(app_client: Any, session: AsyncSession) -> None:
    await _seeded(session)
    token = await make_token(session, "reviewer")
    assert (await app_client.get("/suppliers/999999/classification", headers=bearer(token))).status_code == 404
    supplier = await make_supplier(session, "Acme Ltd", postcode="B15 2GW")
    missing = await app_client.get(
        f"/suppliers/{supplier.id}/classification", params={"anchor_id": 999999}, headers=bearer(token)
    )
    assert missing.status_code == 404
    assert (await app_client.get(f"/suppliers/{supplier.id}/classification")).status_code == 401
