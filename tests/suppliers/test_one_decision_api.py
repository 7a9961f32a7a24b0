"""One decision per supplier status, through the real app: an override of the category or of a flag moves both.

Before: overriding the category to `sme` left the SME flag unknown (and the reverse), so one statement said
"SME share 0.0%" on page 1 and "SME 50.0%" on page 2."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from socialvalue.enterprise import inconsistencies
from tests.support.api import bearer, make_supplier, make_token

REASON = "Checked the filed accounts and constitution"


async def _why(client: Any, token: str, supplier_id: int) -> dict[str, Any]:
    response = await client.get(f"/suppliers/{supplier_id}/classification", headers=bearer(token))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert inconsistencies(body["category"], body["sme"], body["vcse"], body["social_enterprise"]) == []
    return body


async def _override(client: Any, token: str, supplier_id: int, flag: str, value: str) -> Any:
    return await client.post(
        f"/suppliers/{supplier_id}/overrides",
        json={"flag": flag, "value": value, "reason": REASON},
        headers=bearer(token),
    )


def _flags(body: dict[str, Any]) -> tuple[Any, ...]:
    return body["category"], body["sme"], body["vcse"], body["social_enterprise"]


async def test_override_category_to_sme_sets_the_sme_flag(app_client: Any, session: AsyncSession) -> None:
    token = await make_token(session, "reviewer")
    supplier = await make_supplier(session, "Midland Widgets Ltd", postcode="B15 2GW")
    assert _flags(await _why(app_client, token, supplier.id)) == ("unknown", None, None, None)

    made = await _override(app_client, token, supplier.id, "category", "sme")
    assert made.status_code == 201, made.text
    body = await _why(app_client, token, supplier.id)
    assert _flags(body) == ("sme", True, False, False)  # before the fix: ("sme", None, None, None)
    assert body["decision"].startswith("category sme: an SME that is not a VCSE; vcse false (implied)")
    for flag in ("category", "sme", "vcse"):
        first = next(w for w in body["why"] if w["flag"] == flag)
        assert (first["method"], first["override_id"]) == ("override", made.json()["id"])

    # A flag that would overturn a person's category is refused, saying which category to send.
    refused = await _override(app_client, token, supplier.id, "sme", "false")
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"] == (
        f"Override #{made.json()['id']} by {body['overrides'][0]['created_by']} sets the category to sme, which "
        'sme=false contradicts. Send the category instead, e.g. {"flag": "category", "value": "large", '
        '"reason": "checked the register entry"}.'
    )
    to_large = await _override(app_client, token, supplier.id, "category", "large")
    assert to_large.status_code == 201, to_large.text
    body = await _why(app_client, token, supplier.id)
    assert _flags(body) == ("large", False, False, False)
    assert [o["id"] for o in body["overrides"]] == [to_large.json()["id"]]


async def test_override_sme_flag_on_a_declared_large_company(app_client: Any, session: AsyncSession) -> None:
    """The reverse: a flag override moves the category with it, and a later category override replaces it."""
    token = await make_token(session, "reviewer")
    supplier = await make_supplier(
        session, "Big Facilities Ltd", postcode="B15 2GW", declared_scale="large", declared_vcse=False
    )
    assert _flags(await _why(app_client, token, supplier.id)) == ("large", False, False, False)
    made = await _override(app_client, token, supplier.id, "sme", "true")
    assert made.status_code == 201, made.text
    # Before the fix the category stayed "large" beside sme=true.
    assert _flags(await _why(app_client, token, supplier.id)) == ("sme", True, False, False)
    back = await _override(app_client, token, supplier.id, "category", "large")
    assert back.status_code == 201, back.text
    body = await _why(app_client, token, supplier.id)
    assert _flags(body) == ("large", False, False, False)
    # The sme override it contradicts gave way, recorded and audited.
    assert [o["id"] for o in body["overrides"]] == [back.json()["id"]]
    old = await session.get(m.ClassificationOverride, made.json()["id"])
    assert old is not None
    await session.refresh(old)
    assert old.revoke_reason == f"superseded by override #{back.json()['id']} (category=large)"
    audit = (
        await session.scalars(
            select(m.AuditEvent).where(m.AuditEvent.action == "supplier.override").order_by(m.AuditEvent.id)
        )
    ).all()
    assert audit[-1].changes[f"override #{made.json()['id']}"] == ["sme=true", None]


async def test_vcse_true_on_an_sme_picks_a_consistent_category(app_client: Any, session: AsyncSession) -> None:
    token = await make_token(session, "reviewer")
    supplier = await make_supplier(
        session, "Acme Widgets Ltd", postcode="B15 2GW", declared_scale="sme", declared_vcse=False
    )
    assert _flags(await _why(app_client, token, supplier.id)) == ("sme", True, False, False)
    made = await _override(app_client, token, supplier.id, "vcse", "true")
    assert made.status_code == 201, made.text
    body = await _why(app_client, token, supplier.id)
    # No legal form is known, so "a VCSE of no known legal form"; its size stays its own evidence.
    assert _flags(body) == ("other_vcse", True, True, None)
    assert "sme true (own evidence)" in body["decision"]


async def test_an_override_the_category_forbids_is_refused_with_what_to_send(
    app_client: Any, session: AsyncSession
) -> None:
    token = await make_token(session, "reviewer")
    cic = await make_supplier(session, "Hope Kitchen CIC", postcode="B15 2GW")
    assert _flags(await _why(app_client, token, cic.id)) == ("cic", None, True, True)
    refused = await _override(app_client, token, cic.id, "social_enterprise", "false")
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"] == (
        "social_enterprise cannot be false while the supplier's category is cic (vcse true): a cic is a social "
        "enterprise by its legal form. To change it, first send an override of the category or vcse, e.g. "
        '{"flag": "category", "value": "other_vcse", "reason": "checked the register entry"}.'
    )
    assert (await session.scalars(select(m.ClassificationOverride))).all() == []
    # Sending what it says works, and then the flag override is accepted.
    assert (await _override(app_client, token, cic.id, "category", "other_vcse")).status_code == 201
    assert (await _override(app_client, token, cic.id, "social_enterprise", "false")).status_code == 201
    assert _flags(await _why(app_client, token, cic.id)) == ("other_vcse", None, True, False)


async def test_attestation_hidden_by_an_override_is_refused(app_client: Any, session: AsyncSession) -> None:
    token = await make_token(session, "reviewer")
    supplier = await make_supplier(session, "Brum Community Meals", postcode="B15 2GW")
    made = await _override(app_client, token, supplier.id, "category", "sme")
    assert made.status_code == 201
    refused = await app_client.post(
        f"/suppliers/{supplier.id}/attestations",
        json={"kind": "charity_register", "reference": "CCEW 1090095", "reason": "register entry checked"},
        headers=bearer(token),
    )
    assert refused.status_code == 422
    override_id = made.json()["id"]
    assert refused.json()["detail"].startswith(f"Override #{override_id} decides category = sme for this supplier")
    revoked = await app_client.post(f"/overrides/{override_id}/revoke", json={"reason": "wrong"}, headers=bearer(token))
    assert revoked.status_code == 200
    attested = await app_client.post(
        f"/suppliers/{supplier.id}/attestations",
        json={"kind": "charity_register", "reference": "CCEW 1090095", "reason": "register entry checked"},
        headers=bearer(token),
    )
    assert attested.status_code == 201
    assert _flags(await _why(app_client, token, supplier.id)) == ("charity", None, True, None)
