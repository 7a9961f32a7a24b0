"""A well-formed postcode the ONS directory does not have (B99 9ZZ) must be confirmed, and is then shown as a
best fit with its confidence wherever the supplier appears. Before: it was accepted without a word."""

from __future__ import annotations

import csv
import io
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from socialvalue.geography import DATA_VERSION
from tests.support.api import bearer, make_supplier, make_token

ABSENT = (
    f"postcode B99 9ZZ is not in the ONS postcode directory ({DATA_VERSION}). Check it; if it is right (new postcodes "
    'appear every month), send it again with "confirm_postcode": true and its place will be the best fit of its '
    "district B99: Birmingham (confidence 1.00)."
)
NOTE = (
    f"B99 9ZZ is not in the ONS postcode directory ({DATA_VERSION}); placed by the best fit of its district B99: "
    "Birmingham (confidence 1.00)"
)


async def test_create_with_an_unlisted_postcode_needs_confirmation(app_client: Any, session: AsyncSession) -> None:
    editor = await make_token(session, "editor")
    body = {"name": "New Build Catering Ltd", "postcode": "b99 9zz"}
    refused = await app_client.post("/suppliers", json=body, headers=bearer(editor))
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"] == ABSENT
    assert (await session.scalars(select(m.Supplier))).all() == []

    made = await app_client.post("/suppliers", json=body | {"confirm_postcode": True}, headers=bearer(editor))
    assert made.status_code == 201, made.text
    out = made.json()
    assert (out["postcode"], out["postcode_source"]) == ("B99 9ZZ", "manual_confirmed_unlisted")
    assert (out["postcode_status"], out["postcode_note"]) == ("not_in_directory_best_fit", NOTE)
    listed = (await app_client.get("/suppliers", params={"q": "new build"}, headers=bearer(editor))).json()
    assert listed["items"][0]["postcode_status"] == "not_in_directory_best_fit"

    why = (await app_client.get(f"/suppliers/{out['id']}/classification", headers=bearer(editor))).json()
    place = why["place"]
    assert (place["postcode_status"], place["method"], place["lad_code"]) == (
        "not_in_directory_best_fit",
        "district",
        "E08000025",
    )
    assert place["postcode_note"] == NOTE
    assert NOTE in next(w for w in why["why"] if w["flag"] == "place")["source"]

    exported = await app_client.get("/suppliers.csv", headers=bearer(editor))
    rows = {int(r["supplier_id"]): r for r in csv.DictReader(io.StringIO(exported.text))}
    assert (rows[out["id"]]["postcode_status"], rows[out["id"]]["place_method"]) == (
        "not_in_directory_best_fit",
        "district",
    )


async def test_listed_postcodes_pass_and_patch_is_checked(app_client: Any, session: AsyncSession) -> None:
    editor = await make_token(session, "editor")
    made = await app_client.post(
        "/suppliers", json={"name": "Edgbaston Catering Ltd", "postcode": "B15 2GW"}, headers=bearer(editor)
    )
    assert made.status_code == 201, made.text
    assert (made.json()["postcode_status"], made.json()["postcode_note"]) == ("found", None)
    supplier_id = made.json()["id"]

    refused = await app_client.patch(
        f"/suppliers/{supplier_id}", json={"postcode": "B99 9ZZ", "reason": "moved premises"}, headers=bearer(editor)
    )
    assert refused.status_code == 422
    assert refused.json()["detail"] == ABSENT
    confirmed = await app_client.patch(
        f"/suppliers/{supplier_id}",
        json={"postcode": "B99 9ZZ", "confirm_postcode": True, "reason": "moved premises"},
        headers=bearer(editor),
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["postcode_status"] == "not_in_directory_best_fit"
    # Sending the same postcode again (e.g. with another correction) needs no new confirmation.
    renamed = await app_client.patch(
        f"/suppliers/{supplier_id}",
        json={"name": "Edgbaston Catering Limited", "postcode": "B99 9ZZ", "reason": "trading name corrected"},
        headers=bearer(editor),
    )
    assert renamed.status_code == 200, renamed.text
    audit = (await session.scalars(select(m.AuditEvent).where(m.AuditEvent.action == "supplier.update"))).all()
    moved, renamed_audit = audit
    assert moved.changes["postcode"] == ["B15 2GW", "B99 9ZZ"]
    assert moved.changes["postcode_source"] == ["manual", "manual_confirmed_unlisted"]
    assert "postcode" not in renamed_audit.changes


async def test_delivery_postcode_override_needs_confirmation(app_client: Any, session: AsyncSession) -> None:
    token = await make_token(session, "reviewer")
    supplier = await make_supplier(session, "Big Facilities Ltd", postcode="SW1A 1AA")
    body = {"flag": "delivery_postcode", "value": "B99 9ZZ", "reason": "Delivered from the new Birmingham depot"}
    refused = await app_client.post(f"/suppliers/{supplier.id}/overrides", json=body, headers=bearer(token))
    assert refused.status_code == 422
    assert refused.json()["detail"] == ABSENT.replace("postcode B99", "delivery_postcode B99")
    made = await app_client.post(
        f"/suppliers/{supplier.id}/overrides", json=body | {"confirm_postcode": True}, headers=bearer(token)
    )
    assert made.status_code == 201, made.text
    place = (await app_client.get(f"/suppliers/{supplier.id}/classification", headers=bearer(token))).json()["place"]
    assert (place["postcode_basis"], place["postcode_status"], place["lad_code"]) == (
        "delivery",
        "not_in_directory_best_fit",
        "E08000025",
    )
    assert place["postcode_note"] == NOTE
