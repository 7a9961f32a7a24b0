"""Supplier merge and split through the real app, with audit and undo, and their effect on classification."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.organisations.seed import seed_anchors
from procurement.suppliers.tiers import supplier_tiers
from tests.support.api import bearer, make_supplier, make_token


async def _birmingham(session: AsyncSession) -> m.Organisation:
    await seed_anchors(session)
    await session.commit()
    return (await session.scalars(select(m.Organisation).where(m.Organisation.name == "Birmingham City Council"))).one()


async def _contract(session: AsyncSession, buyer: m.Organisation, title: str, supplier_id: int) -> m.ContractSupplier:
    contract = m.Contract(
        buyer_id=buyer.id, title=title, value_pence=100_000, award_date=dt.date(2025, 5, 1), source="manual"
    )
    session.add(contract)
    await session.flush()
    link = m.ContractSupplier(contract_id=contract.id, supplier_id=supplier_id, share_pence=100_000)
    session.add(link)
    await session.commit()
    return link


async def _get(client: Any, token: str, supplier_id: int) -> dict[str, Any]:
    response = await client.get(f"/suppliers/{supplier_id}/classification", headers=bearer(token))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _identifiers(session: AsyncSession, supplier_id: int) -> set[str]:
    rows = await session.execute(
        select(m.SupplierIdentifier.scheme, m.SupplierIdentifier.value).where(
            m.SupplierIdentifier.supplier_id == supplier_id
        )
    )
    return {f"{scheme} {value}" for scheme, value in rows.all()}


async def test_merge_moves_identifiers_and_undo_restores(app_client: Any, session: AsyncSession) -> None:
    bcc = await _birmingham(session)
    bcc_id = bcc.id
    token = await make_token(session, "editor", bcc_id, name="kim@bcc")
    target = await make_supplier(
        session,
        "Brum Meals",
        postcode="B15 2GW",
        identifiers=[m.SupplierIdentifier(scheme="GB-COH", value="04482788")],
    )
    duplicate = await make_supplier(
        session,
        "BRUM MEALS (charity)",
        postcode="WS1 1TP",
        identifiers=[m.SupplierIdentifier(scheme="GB-CHC", value="1123456")],
    )
    target_id, duplicate_id = target.id, duplicate.id
    link = await _contract(session, bcc, "Meals", duplicate_id)
    link_id = link.id
    assert (await _get(app_client, token, target_id))["category"] == "unknown"

    merged = await app_client.post(
        "/suppliers/merge",
        json={"source_id": duplicate_id, "target_id": target_id, "reason": "same charity, two notices"},
        headers=bearer(token),
    )
    assert merged.status_code == 201, merged.text
    merge_id = merged.json()["id"]
    session.expire_all()
    assert (await session.get(m.Supplier, duplicate_id)).merged_into_id == target_id  # type: ignore[union-attr]
    assert await _identifiers(session, target_id) == {"GB-COH 04482788", "GB-CHC 1123456"}
    assert await _identifiers(session, duplicate_id) == set()
    # The charity number now speaks for the target; the duplicate answers with the target's classification.
    as_target = await _get(app_client, token, target_id)
    assert (as_target["category"], as_target["vcse"]) == ("charity", True)
    as_duplicate = await _get(app_client, token, duplicate_id)
    assert as_duplicate["effective_supplier_id"] == target_id
    assert as_duplicate["merged_into_id"] == target_id
    assert as_duplicate["place"]["lad_name"] == "Birmingham"
    # Contract links keep naming the duplicate; the tiers frame maps it to the target's answer.
    assert (await session.get(m.ContractSupplier, link_id)).supplier_id == duplicate_id  # type: ignore[union-attr]
    frame = await supplier_tiers(session, [bcc_id])
    await session.commit()  # supplier_tiers brings classification up to date, which writes
    rows = {r["supplier_id"]: r for r in frame.iter_rows(named=True)}
    assert rows[duplicate_id]["effective_supplier_id"] == target_id
    assert (rows[duplicate_id]["tier"], rows[duplicate_id]["category"]) == ("local", "charity")

    again = await app_client.post(
        "/suppliers/merge",
        json={"source_id": duplicate_id, "target_id": target_id, "reason": "same charity, two notices"},
        headers=bearer(token),
    )
    assert again.status_code == 409
    into_merged = await app_client.post(
        "/suppliers/merge",
        json={"source_id": target_id, "target_id": duplicate_id, "reason": "the other way round"},
        headers=bearer(token),
    )
    assert into_merged.status_code == 422
    itself = await app_client.post(
        "/suppliers/merge",
        json={"source_id": target_id, "target_id": target_id, "reason": "oops"},
        headers=bearer(token),
    )
    assert itself.status_code == 422

    undone = await app_client.post(
        f"/supplier-merges/{merge_id}/undo", json={"reason": "not the same"}, headers=bearer(token)
    )
    assert undone.status_code == 200, undone.text
    assert undone.json()["undone_by"] == "kim@bcc"
    session.expire_all()
    assert (await session.get(m.Supplier, duplicate_id)).merged_into_id is None  # type: ignore[union-attr]
    assert await _identifiers(session, target_id) == {"GB-COH 04482788"}
    assert await _identifiers(session, duplicate_id) == {"GB-CHC 1123456"}
    assert (await _get(app_client, token, target_id))["category"] == "unknown"
    back = await _get(app_client, token, duplicate_id)
    assert (back["effective_supplier_id"], back["place"]["lad_name"], back["category"]) == (
        duplicate_id,
        "Walsall",
        "charity",
    )
    twice = await app_client.post(
        f"/supplier-merges/{merge_id}/undo", json={"reason": "still not the same"}, headers=bearer(token)
    )
    assert twice.status_code == 409

    actions = (
        await session.scalars(
            select(m.AuditEvent.action).where(m.AuditEvent.entity_id == str(duplicate_id)).order_by(m.AuditEvent.id)
        )
    ).all()
    assert [a for a in actions if a.startswith("supplier.")] == ["supplier.merge", "supplier.merge_undo"]


async def test_split_moves_parties_and_links_and_undo_restores(app_client: Any, session: AsyncSession) -> None:
    bcc = await _birmingham(session)
    token = await make_token(session, "cross_reviewer", name="ali@review")
    mixed = await make_supplier(session, "Smith Services", postcode="B15 2GW")
    mixed_id = mixed.id
    keep = m.SupplierMatch(
        source="contracts_finder", ocid="ocds-b5fd17-1", party_id="GB-CFS-1", supplier_id=mixed_id, method="name"
    )
    other = m.SupplierMatch(
        source="contracts_finder",
        ocid="ocds-b5fd17-2",
        party_id="GB-CFS-9",
        supplier_id=mixed_id,
        method="name",
        party_name="Smith Services (Walsall)",
        postcode="WS1 1TP",
        street_address="Darwall Street, Walsall",
        declared_scale="sme",
    )
    session.add_all([keep, other])
    await session.commit()
    keep_id, other_id = keep.id, other.id
    keep_link_id = (await _contract(session, bcc, "Cleaning", mixed_id)).id
    move_link_id = (await _contract(session, bcc, "Grounds", mixed_id)).id
    # The Walsall party's declared scale counts for the supplier while it is attached.
    assert (await _get(app_client, token, mixed_id))["sme"] is True

    wrong = await app_client.post(
        f"/suppliers/{mixed_id}/split",
        json={"name": "Smith Services Walsall Ltd", "reason": "different company", "party_match_ids": [other_id + 99]},
        headers=bearer(token),
    )
    assert wrong.status_code == 422
    nothing = await app_client.post(
        f"/suppliers/{mixed_id}/split", json={"name": "X Ltd", "reason": "different company"}, headers=bearer(token)
    )
    assert nothing.status_code == 422

    split = await app_client.post(
        f"/suppliers/{mixed_id}/split",
        json={
            "name": "Smith Services Walsall Ltd",
            "reason": "a different company with a similar name",
            "party_match_ids": [other_id],
            "contract_supplier_ids": [move_link_id],
        },
        headers=bearer(token),
    )
    assert split.status_code == 201, split.text
    new_id = split.json()["target_supplier_id"]
    assert split.json()["moved"] == {"matches": [other_id], "contract_suppliers": [move_link_id]}
    session.expire_all()
    assert (await session.get(m.SupplierMatch, other_id)).supplier_id == new_id  # type: ignore[union-attr]
    assert (await session.get(m.SupplierMatch, keep_id)).supplier_id == mixed_id  # type: ignore[union-attr]
    assert (await session.get(m.ContractSupplier, move_link_id)).supplier_id == new_id  # type: ignore[union-attr]
    assert (await session.get(m.ContractSupplier, keep_link_id)).supplier_id == mixed_id  # type: ignore[union-attr]
    new = await _get(app_client, token, new_id)
    assert (new["name"], new["place"]["lad_name"], new["sme"]) == ("Smith Services Walsall Ltd", "Walsall", True)
    assert (await _get(app_client, token, mixed_id))["sme"] is None

    undone = await app_client.post(
        f"/supplier-merges/{split.json()['id']}/undo", json={"reason": "split by mistake"}, headers=bearer(token)
    )
    assert undone.status_code == 200, undone.text
    session.expire_all()
    assert (await session.get(m.SupplierMatch, other_id)).supplier_id == mixed_id  # type: ignore[union-attr]
    assert (await session.get(m.ContractSupplier, move_link_id)).supplier_id == mixed_id  # type: ignore[union-attr]
    # The split-off supplier stays (the audit names it) as a duplicate of the original.
    assert (await session.get(m.Supplier, new_id)).merged_into_id == mixed_id  # type: ignore[union-attr]
    assert (await _get(app_client, token, mixed_id))["sme"] is True
    audit = (
        await session.scalars(
            select(m.AuditEvent).where(m.AuditEvent.action.in_(["supplier.split", "supplier.split_undo"]))
        )
    ).all()
    assert sorted((a.action, a.entity_id) for a in audit) == sorted(
        [
            ("supplier.split", str(mixed_id)),
            ("supplier.split", str(new_id)),
            ("supplier.split_undo", str(mixed_id)),
            ("supplier.split_undo", str(new_id)),
        ]
    )
    assert all(a.actor_name == "ali@review" for a in audit)
