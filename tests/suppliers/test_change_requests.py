"""Shared supplier data: an editor's correction that reaches another organisation's figures waits for a reviewer
who may act for that organisation; one used only by the editor's own contracts applies at once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from tests.support.api import bearer, make_org, make_supplier, make_token


async def _contract(client: Any, admin: str, buyer_id: int, *supplier_ids: int) -> None:
    r = await client.post(
        "/contracts",
        json={
            "buyer_id": buyer_id,
            "title": "Catering",
            "value": "1000.00",
            "award_date": "2025-04-14",
            "suppliers": [{"supplier_id": i} for i in supplier_ids],
        },
        headers=bearer(admin),
    )
    assert r.status_code == 201, r.text


async def _audit(session: AsyncSession) -> list[tuple[str, str, str | None]]:
    session.expire_all()
    rows = (await session.scalars(select(m.AuditEvent).order_by(m.AuditEvent.id))).all()
    return [(a.action, a.actor_name, a.reason) for a in rows if a.action.startswith("supplier.")]


async def test_walsall_editor_cannot_move_birmingham_figures_alone(session: AsyncSession, app_client: Any) -> None:
    walsall = await make_org(session, "Walsall Healthcare NHS Trust", ods_code="RBK", is_anchor=True)
    bcc = await make_org(session, "Birmingham City Council", gss_code="E08000025", is_anchor=True)
    shared = await make_supplier(session, "Brum Meals CIC", postcode="B1 1BB")
    duplicate = await make_supplier(session, "Brum Meals C.I.C.", postcode="B1 1BB")
    mine = await make_supplier(session, "Walsall Linen Ltd", postcode="WS1 1TP")
    admin = await make_token(session, "admin", name="ops@example")
    editor = bearer(await make_token(session, "editor", walsall.id, name="jo@walsall"))
    walsall_reviewer = bearer(await make_token(session, "reviewer", name="pat@walsall", reviews=[walsall.id]))
    bcc_reviewer = bearer(await make_token(session, "reviewer", name="sam@bcc", reviews=[bcc.id]))
    shared_id, duplicate_id = shared.id, duplicate.id
    await _contract(app_client, admin, bcc.id, shared_id, duplicate_id)
    await _contract(app_client, admin, walsall.id, shared_id, mine.id)

    # Only Walsall uses this supplier: the correction applies at once, with its reason audited.
    direct = await app_client.patch(
        f"/suppliers/{mine.id}", json={"postcode": "WS2 8PS", "reason": "moved to Bloxwich"}, headers=editor
    )
    assert direct.status_code == 200, direct.text
    assert direct.json()["postcode"] == "WS2 8PS"
    no_reason = await app_client.patch(f"/suppliers/{mine.id}", json={"postcode": "WS1 1TP"}, headers=editor)
    assert no_reason.status_code == 400

    # Birmingham uses the shared supplier too: the change waits, and the supplier is as it was.
    asked = await app_client.patch(
        f"/suppliers/{shared_id}", json={"postcode": "WS1 1TP", "reason": "registered office moved"}, headers=editor
    )
    assert asked.status_code == 202, asked.text
    request = asked.json()
    assert (request["status"], request["kind"], request["affected_organisation_ids"]) == (
        "pending",
        "update",
        sorted([walsall.id, bcc.id]),
    )
    assert (await app_client.get(f"/suppliers/{shared_id}", headers=editor)).json()["postcode"] == "B1 1BB"
    listed = (await app_client.get("/supplier-change-requests?status=pending", headers=editor)).json()
    assert [r["id"] for r in listed["items"]] == [request["id"]]

    approve = f"/supplier-change-requests/{request['id']}/approve"
    assert (await app_client.post(approve, json={"reason": "fine"}, headers=editor)).status_code == 403
    # A reviewer of Walsall alone may not move Birmingham's figures either.
    assert (await app_client.post(approve, json={"reason": "fine"}, headers=walsall_reviewer)).status_code == 403
    scoped_both = bearer(await make_token(session, "reviewer", name="lee@icb", reviews=[walsall.id, bcc.id]))
    approved = await app_client.post(approve, json={"reason": "checked Companies House"}, headers=scoped_both)
    assert approved.status_code == 200, approved.text
    assert (approved.json()["status"], approved.json()["decided_by"]) == ("approved", "lee@icb")
    assert (await app_client.get(f"/suppliers/{shared_id}", headers=editor)).json()["postcode"] == "WS1 1TP"
    twice = await app_client.post(approve, json={"reason": "again"}, headers=scoped_both)
    assert twice.status_code == 409

    # Merging Birmingham's duplicate, and undoing an admin's merge, wait in the same way.
    merge = await app_client.post(
        "/suppliers/merge",
        json={"source_id": duplicate_id, "target_id": shared_id, "reason": "same company"},
        headers=editor,
    )
    assert merge.status_code == 202
    rejected = await app_client.post(
        f"/supplier-change-requests/{merge.json()['id']}/reject",
        json={"reason": "different charity numbers"},
        headers=bcc_reviewer,
    )
    assert rejected.status_code == 403  # Walsall is affected too and is outside this reviewer's scope
    rejected = await app_client.post(
        f"/supplier-change-requests/{merge.json()['id']}/reject",
        json={"reason": "different charity numbers"},
        headers=scoped_both,
    )
    assert rejected.status_code == 200
    assert rejected.json()["status"] == "rejected"
    session.expire_all()
    assert (await session.get(m.Supplier, duplicate_id)).merged_into_id is None  # type: ignore[union-attr]

    admin_merge = await app_client.post(
        "/suppliers/merge",
        json={"source_id": duplicate_id, "target_id": shared_id, "reason": "same company after all"},
        headers=bearer(admin),
    )
    assert admin_merge.status_code == 201
    undo = await app_client.post(
        f"/supplier-merges/{admin_merge.json()['id']}/undo", json={"reason": "I disagree"}, headers=editor
    )
    assert undo.status_code == 202
    session.expire_all()
    assert (await session.get(m.Supplier, duplicate_id)).merged_into_id == shared_id  # type: ignore[union-attr]

    assert await _audit(session) == [
        ("supplier.update", "jo@walsall", "moved to Bloxwich"),
        ("supplier.change_request", "jo@walsall", "registered office moved"),
        ("supplier.update", "jo@walsall", "registered office moved"),  # the author's change, applied on approval
        ("supplier.change_request_approved", "lee@icb", "checked Companies House"),
        ("supplier.change_request", "jo@walsall", "same company"),
        ("supplier.change_request_rejected", "lee@icb", "different charity numbers"),
        ("supplier.merge", "ops@example", "same company after all"),
        ("supplier.merge", "ops@example", "same company after all"),
        ("supplier.change_request", "jo@walsall", "I disagree"),
    ]


async def test_a_reviewer_outside_its_scope_asks_and_a_cross_reviewer_approves(
    session: AsyncSession, app_client: Any
) -> None:
    walsall = await make_org(session, "Walsall Healthcare NHS Trust", ods_code="RBK")
    bcc = await make_org(session, "Birmingham City Council", gss_code="E08000025")
    supplier = await make_supplier(session, "Brum Meals CIC", postcode="B1 1BB")
    admin = await make_token(session, "admin")
    await _contract(app_client, admin, bcc.id, supplier.id)
    reviewer = bearer(await make_token(session, "reviewer", name="pat@walsall", reviews=[walsall.id]))
    asked = await app_client.post(
        f"/suppliers/{supplier.id}/overrides",
        json={"flag": "sme", "value": "true", "reason": "accounts filed as small"},
        headers=reviewer,
    )
    assert asked.status_code == 202
    bad_flag = await app_client.post(
        f"/suppliers/{supplier.id}/overrides",
        json={"flag": "sme", "value": "perhaps", "reason": "accounts filed as small"},
        headers=reviewer,
    )
    assert bad_flag.status_code == 422  # refused now, not left for a reviewer to find
    cross = bearer(await make_token(session, "cross_reviewer", name="alex@icb"))
    approved = await app_client.post(
        f"/supplier-change-requests/{asked.json()['id']}/approve", json={"reason": "accounts seen"}, headers=cross
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["result"]["entity"] == "classification_override"
    classification = await app_client.get(f"/suppliers/{supplier.id}/classification", headers=cross)
    assert classification.json()["sme"] is True
    assert classification.json()["overrides"][0]["created_by"] == "pat@walsall"
