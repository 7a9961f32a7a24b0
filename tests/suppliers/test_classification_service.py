"""The classification service on both databases: incremental hashing, feed-declared facts, tiers frames."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.auth import Principal
from procurement.organisations.seed import seed_anchors
from procurement.suppliers.classification import classify
from procurement.suppliers.overrides import add_override
from procurement.suppliers.tiers import supplier_tiers, tiers_for_anchor
from socialvalue.geography import locate
from socialvalue.locality import local_area, tier_for
from tests.support.api import make_supplier

EDITOR = Principal(user_id=1, name="test editor", role=m.Role.ADMIN, organisation_id=None)


async def _anchor(session: AsyncSession, name: str) -> int:
    return (await session.scalars(select(m.Organisation.id).where(m.Organisation.name == name))).one()


async def test_incremental_classify_skips_unchanged(session: AsyncSession) -> None:
    a = await make_supplier(session, "Acme Ltd", postcode="B15 2GW")
    b = await make_supplier(session, "Fixit CIC", postcode="WS1 1TP")
    a_id, b_id = a.id, b.id
    first = await classify(session)
    assert (first.examined, first.classified, first.unchanged) == (2, 2, 0)
    second = await classify(session)
    assert (second.classified, second.unchanged) == (0, 2)
    supplier = await session.get(m.Supplier, b_id)
    assert supplier is not None
    supplier.postcode = "B91 3QB"
    await session.flush()
    third = await classify(session)
    assert (third.classified, third.unchanged) == (1, 1)
    row = (
        await session.scalars(select(m.SupplierClassification).where(m.SupplierClassification.supplier_id == b_id))
    ).one()
    assert (row.lad_code, row.category, row.social_enterprise) == ("E08000029", "cic", True)
    assert (await classify(session, full=True)).classified == 2
    assert (await classify(session, [a_id])).examined == 1


async def test_feed_declared_scale_from_supplier_matches(session: AsyncSession) -> None:
    supplier = await make_supplier(session, "Midland Tools Ltd", postcode="B15 2GW")
    session.add(
        m.SupplierMatch(
            source="contracts_finder",
            ocid="ocds-b5fd17-abc",
            party_id="GB-CFS-7",
            supplier_id=supplier.id,
            method="name",
            declared_scale="sme",
        )
    )
    await session.flush()
    await classify(session)
    row = (
        await session.scalars(
            select(m.SupplierClassification).where(m.SupplierClassification.supplier_id == supplier.id)
        )
    ).one()
    assert row.sme is True
    sme = next(e for e in row.evidence if e["flag"] == "sme")
    assert sme["source"] == "contracts_finder ocds-b5fd17-abc party GB-CFS-7 details.scale"
    assert sme["method"] == "feed_declared"


async def test_supplier_tiers_frame_matches_tier_for(session: AsyncSession) -> None:
    await seed_anchors(session)
    bcc = await _anchor(session, "Birmingham City Council")
    trust = await _anchor(session, "Walsall Healthcare NHS Trust")
    postcodes = ["B15 2GW", "B91 3QB", "WS1 1TP", "SW1A 1AA", "JE2 3AB", "BT1 1AA", "B15 2", "ZZ99 3VZ", None]
    ids = []
    for i, postcode in enumerate(postcodes):
        ids.append((await make_supplier(session, f"Supplier {i} Ltd", postcode=postcode)).id)
    frame = await supplier_tiers(session, [bcc, trust])
    assert frame.columns[:9] == [
        "anchor_id",
        "supplier_id",
        "tier",
        "tier_confidence",
        "tier_method",
        "category",
        "sme",
        "vcse",
        "social_enterprise",
    ]
    assert frame.height == 2 * len(postcodes)
    areas = {bcc: local_area("own_lad", lad_code="E08000025"), trust: local_area("icb", icb_code="QUA")}
    for row in frame.iter_rows(named=True):
        postcode = postcodes[ids.index(row["supplier_id"])]
        expected = tier_for(locate(postcode) if postcode else None, areas[row["anchor_id"]])
        assert (row["tier"], row["tier_confidence"], row["tier_reason"]) == (
            expected.tier,
            expected.confidence,
            expected.reason if postcode else "No usable postcode.",
        ), postcode
    by_supplier = await tiers_for_anchor(session, bcc)
    assert by_supplier[ids[0]].tier == "local"
    assert by_supplier[ids[2]].tier == "regional"
    assert (await tiers_for_anchor(session, trust))[ids[2]].tier == "local"


async def test_manual_lad_override_sets_the_place(session: AsyncSession) -> None:
    await seed_anchors(session)
    walsall = await _anchor(session, "Walsall Council")
    supplier = await make_supplier(session, "Nowhere Ltd", country="United Kingdom")
    tiers = await tiers_for_anchor(session, walsall)
    assert tiers[supplier.id].tier == "unknown"
    assert "UK but area unknown" in tiers[supplier.id].reason
    override = await add_override(
        session, supplier.id, EDITOR, flag="lad_code", value="e08000030", reason="Verified trading address in Walsall"
    )
    assert override.value == "E08000030"
    assert override.created_at <= dt.datetime.now(dt.UTC)
    after = (await tiers_for_anchor(session, walsall))[supplier.id]
    assert (after.tier, after.method) == ("local", "manual_lad")
    assert after.reason == "Walsall is in Walsall (own LAD) (LAD set by override)."


async def test_the_latest_declaring_match_counts_scoped_or_not(session: AsyncSession) -> None:
    """A supplier that declares nothing itself takes each fact from its latest match that declares it (a later match
    declaring nothing does not hide it), whether classified alone or with every supplier."""
    supplier = await make_supplier(session, "Midland Tools Ltd", postcode="B15 2GW")
    declared: list[tuple[str | None, bool | None]] = [("sme", True), ("large", None), (None, None)]
    for n, (scale, vcse) in enumerate(declared, start=1):
        session.add(
            m.SupplierMatch(
                source="contracts_finder",
                ocid=f"ocds-b5fd17-{n}",
                party_id=f"GB-CFS-{n}",
                supplier_id=supplier.id,
                method="name",
                declared_scale=scale,
                declared_vcse=vcse,
            )
        )
        await session.flush()
    for run in (classify(session, [supplier.id], full=True), classify(session, full=True)):
        await run
        row = (
            await session.scalars(
                select(m.SupplierClassification).where(m.SupplierClassification.supplier_id == supplier.id)
            )
        ).one()
        facts = {(e["flag"], e["value"]) for e in row.evidence if e["method"] == "feed_declared"}
        # The scale of the second match ("large"), the VCSE status of the first; the third declares neither.
        assert {("sme", "false"), ("vcse", "true")} <= facts
        assert ("sme", "true") not in facts


async def test_new_classifications_are_numbered_in_supplier_order(session: AsyncSession) -> None:
    first = await make_supplier(session, "Acme Ltd", postcode="B15 2GW")
    second = await make_supplier(session, "Fixit CIC", postcode="WS1 1TP")
    # Moved in the table (a new row version on PostgreSQL), so a plain scan finds the first supplier last.
    first.postcode = "B91 3QB"
    await session.flush()
    await classify(session, [second.id, first.id])
    rows = (
        await session.execute(select(m.SupplierClassification.supplier_id).order_by(m.SupplierClassification.id))
    ).all()
    assert [r.supplier_id for r in rows] == [first.id, second.id]
