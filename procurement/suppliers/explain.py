"""The "why" of a supplier's classification shaped for people: API answers, the CSV export, attribution."""

from __future__ import annotations

from typing import Any

import polars as pl
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.organisations.local_area import anchor_area
from procurement.organisations.schemas import Lad, LocalAreaOut
from procurement.suppliers.classification import classification_for
from procurement.suppliers.schemas import AttestationOut, Classification, MergeOut, OverrideOut, PlaceOut, TierOut, Why
from procurement.suppliers.tiers import anchor_areas, supplier_tiers
from procurement.suppliers.tiers import anchor_ids as every_anchor_id
from socialvalue import enterprise, geography

OGL_URL = "https://www.nationalarchives.gov.uk/doc/open-government-licence/version/3/"


def _why(record: dict[str, Any]) -> Why:
    return Why(
        flag=record["flag"],
        value=str(record["value"]),
        method=record["method"],
        source=record["source"],
        evidence=str(record.get("evidence") or ""),
        confidence=record.get("confidence"),
        rule_id=record["rule_id"],
        rule_version=record["rule_version"],
        at=record["at"],
        overruled=bool(record.get("overruled")),
        override_id=record.get("override_id"),
        by=record.get("by"),
    )


def _override(o: m.ClassificationOverride) -> OverrideOut:
    return OverrideOut(
        id=o.id,
        supplier_id=o.supplier_id,
        flag=o.flag,
        value=o.value,
        reason=o.reason,
        created_by=o.created_by,
        created_at=o.created_at,
        revoked_at=o.revoked_at,
        revoked_by=o.revoked_by,
        revoke_reason=o.revoke_reason,
    )


def _attestation(a: m.SupplierAttestation) -> AttestationOut:
    return AttestationOut(
        id=a.id,
        supplier_id=a.supplier_id,
        kind=a.kind,
        reference=a.reference,
        attested_by=a.attested_by,
        attested_at=a.attested_at,
        revoked_at=a.revoked_at,
    )


def _merge(x: m.SupplierMerge) -> MergeOut:
    return MergeOut(
        id=x.id,
        kind=x.kind,
        source_supplier_id=x.source_supplier_id,
        target_supplier_id=x.target_supplier_id,
        moved=x.moved,
        reason=x.reason,
        created_by=x.created_by,
        created_at=x.created_at,
        undone_at=x.undone_at,
        undone_by=x.undone_by,
    )


def _lad_names() -> dict[str, tuple[str | None, str | None]]:
    lads = geography.lad_reference().select("lad_code", "lad_name", "region_name")
    return {code: (name, region) for code, name, region in lads.iter_rows()}


async def classification_out(
    session: AsyncSession, supplier_id: int, anchor_ids: list[int] | None, anchor_id: int | None
) -> Classification:
    supplier, row = await classification_for(session, supplier_id)
    target = row.supplier_id
    wanted = anchor_ids if anchor_ids is not None else await every_anchor_id(session)
    if anchor_id is not None and anchor_id not in wanted:
        wanted = [anchor_id, *wanted]
    tiers: list[TierOut] = []
    if wanted:
        frame = await supplier_tiers(session, wanted, supplier_ids=[target], refresh=False)
        areas = {org.id: (org, area) for org, area in await anchor_areas(session, wanted)}
        for r in frame.filter(pl.col("supplier_id") == target).iter_rows(named=True):
            org, area = areas[r["anchor_id"]]
            tiers.append(
                TierOut(
                    anchor_id=org.id,
                    anchor_name=org.name,
                    area=area.label,
                    tier=r["tier"],
                    confidence=r["tier_confidence"],
                    method=r["tier_method"],
                    reason=r["tier_reason"],
                )
            )
    co, sa = m.ClassificationOverride, m.SupplierAttestation
    overrides = (
        await session.scalars(select(co).where(co.supplier_id == target, co.revoked_at.is_(None)).order_by(co.id))
    ).all()
    attestations = (
        await session.scalars(select(sa).where(sa.supplier_id == target, sa.revoked_at.is_(None)).order_by(sa.id))
    ).all()
    names = _lad_names()
    lad_name, _ = names.get(row.lad_code or "", (None, None))
    region_rows = geography.lad_reference().filter(pl.col("region_code") == row.region_code)
    region_name = region_rows["region_name"][0] if region_rows.height else None
    return Classification(
        supplier_id=supplier.id,
        effective_supplier_id=target,
        name=supplier.name,
        merged_into_id=supplier.merged_into_id,
        place=PlaceOut(
            postcode_used=row.postcode_used,
            postcode_basis=row.postcode_basis,
            postcode_status=geography.postcode_status(row.place_method),
            postcode_note=_postcode_note(row),
            method=row.place_method,
            confidence=row.place_confidence,
            lad_code=row.lad_code,
            lad_name=lad_name,
            region_code=row.region_code,
            region_name=region_name,
            country_code=row.country_code,
            country_hint=row.country_hint,
        ),
        category=row.category,
        sme=row.sme,
        vcse=row.vcse,
        social_enterprise=row.social_enterprise,
        decision=enterprise.decision_text(row.category, row.sme, row.vcse, row.social_enterprise),
        why=[_why(r) for r in row.evidence],
        overrides=[_override(o) for o in overrides],
        attestations=[_attestation(a) for a in attestations],
        tiers=tiers,
        tier=next((t for t in tiers if t.anchor_id == anchor_id), None) if anchor_id is not None else None,
        rule_versions=row.rule_versions,
        classified_at=row.classified_at,
        data_version=geography.DATA_VERSION,
        attribution=geography.ATTRIBUTION,
    )


def _postcode_note(row: m.SupplierClassification) -> str | None:
    """The best-fit note of a postcode the directory lacks, as recorded in the place evidence."""
    if geography.postcode_status(row.place_method) not in {"not_in_directory_best_fit", "not_in_directory_no_fit"}:
        return None
    place = next((r for r in row.evidence if r["flag"] == "place" and r["method"] != "override"), None)
    return None if place is None else str(place.get("note") or "") or None


def _local_area_out(org: m.Organisation) -> LocalAreaOut:
    area, is_default = anchor_area(org)
    names = _lad_names()
    codes = sorted(area.lad_codes)
    return LocalAreaOut(
        organisation_id=org.id,
        organisation_name=org.name,
        preset=area.preset,
        is_default=is_default,
        label=area.label,
        region_code=area.region_code,
        lad_codes=codes,
        lads=[Lad(code=c, name=names.get(c, (None, None))[0]) for c in codes],
    )


CSV_COLUMNS = (
    "supplier_id",
    "effective_supplier_id",
    "name",
    "postcode",
    "postcode_used",
    "postcode_basis",
    "postcode_status",
    "place_method",
    "place_confidence",
    "lad_code",
    "lad_name",
    "region_code",
    "region_name",
    "country_code",
    "category",
    "sme",
    "vcse",
    "social_enterprise",
    "overridden",
    "evidence_summary",
    "rule_versions",
)


def _flag(value: bool | None) -> str:
    return "" if value is None else ("true" if value else "false")


def _summary(evidence: list[dict[str, Any]]) -> str:
    """The deciding record per flag: flag=value (method, rule)."""
    seen: dict[str, str] = {}
    for r in evidence:
        if r["flag"] not in seen and not r.get("overruled"):
            seen[r["flag"]] = f"{r['flag']}={r['value']} ({r['method']}, {r['rule_id']})"
    return "; ".join(seen.values())
