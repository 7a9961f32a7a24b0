"""Supplier classification as a service: facts from the database, the pure cores in socialvalue, results stored.

Where a supplier is (its LAD) is stored once; its tier is judged per anchor at read time against that anchor's own
local area. SME / VCSE / social enterprise come from socialvalue.enterprise. A person's override is applied after
the automatic answer and recorded beside it in the evidence. Reclassification is incremental: each supplier's
inputs (facts, overrides, attestations, rule versions, geography data version) are hashed and an unchanged hash
is skipped.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import polars as pl
from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.auth import Principal, ensure_can_write_for
from procurement.errors import ConflictError, DomainError, NotFound
from procurement.services import record_audit
from socialvalue import enterprise, geography, locality
from socialvalue.identifiers import normalise_identifier, normalise_org_name
from socialvalue.postcodes import normalise_postcode

SERVICE_RULE_VERSION = "classification-service-2026.11.1"
OVERRIDE_FLAGS = ("category", "sme", "vcse", "social_enterprise", "lad_code", "delivery_postcode")
MIN_REASON = 10
_BOOL_TEXT = {"true": True, "false": False, "unknown": None}
_CHUNK = 2000


def rule_versions() -> dict[str, str]:
    return {
        "enterprise": enterprise.RULE_VERSION,
        "locality": locality.RULE_VERSION,
        "geography": geography.DATA_VERSION,
        "service": SERVICE_RULE_VERSION,
    }


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# Anchor local areas ---------------------------------------------------------------------------------------------


def default_preset(org: m.Organisation) -> str:
    """LA -> its own LAD; NHS trust / ICB -> its ICB footprint; combined authority -> WMCA 7; else the region."""
    if org.kind == m.OrganisationKind.LOCAL_AUTHORITY.value and (org.lad_code or org.gss_code):
        return "own_lad"
    if org.kind in {m.OrganisationKind.NHS_TRUST.value, m.OrganisationKind.ICB.value} and (
        org.icb_ods_code or org.lad_code
    ):
        return "icb"
    if org.kind == m.OrganisationKind.COMBINED_AUTHORITY.value:
        return "wmca_7"
    return "own_lad" if org.lad_code else "wm_region"


def area_for_preset(org: m.Organisation, preset: str) -> locality.LocalArea:
    """The anchor's area for a preset; a ValueError (shown as a 400) when the organisation lacks what it needs."""
    lad = org.lad_code
    if preset == "own_lad" and lad is None and org.kind == m.OrganisationKind.LOCAL_AUTHORITY.value:
        lad = org.gss_code
    if preset == "icb":
        icb = org.icb_ods_code or (org.ods_code if org.kind == m.OrganisationKind.ICB.value else None)
        return locality.local_area("icb", lad_code=lad, icb_code=icb)
    return locality.local_area(preset, lad_code=lad)


def anchor_area(org: m.Organisation) -> tuple[locality.LocalArea, bool]:
    """(the anchor's local area, whether it is the default for its kind)."""
    if org.local_lad_codes:
        return locality.custom_area(
            org.local_lad_codes, label=f"{org.name} local area ({len(org.local_lad_codes)} LADs)"
        ), False
    if org.local_preset:
        return area_for_preset(org, org.local_preset), False
    try:
        return area_for_preset(org, default_preset(org)), True
    except ValueError:
        return locality.local_area("wm_region"), True


async def get_org(session: AsyncSession, org_id: int) -> m.Organisation:
    org = await session.get(m.Organisation, org_id)
    if org is None:
        raise NotFound(f"No organisation with id {org_id}.")
    return org


async def set_local_area(
    session: AsyncSession,
    org_id: int,
    actor: Principal,
    *,
    preset: str | None,
    lad_codes: Sequence[str] | None,
    label: str | None,
) -> m.Organisation:
    org = await get_org(session, org_id)
    ensure_can_write_for(actor, org.id)
    if (preset is None) == (lad_codes is None):
        raise DomainError("Give either a preset or a list of LAD codes.")
    if preset is not None:
        if preset not in locality.PRESETS:
            raise DomainError(f"Unknown preset {preset!r}; expected one of {', '.join(locality.PRESETS)}.")
        try:
            area_for_preset(org, preset)
        except ValueError as exc:
            raise DomainError(f"Preset {preset} does not fit this organisation: {exc}.") from exc
        new: tuple[str | None, list[str] | None] = (preset, None)
    else:
        try:
            area = locality.custom_area(lad_codes or [], label=label or "custom")
        except ValueError as exc:
            raise DomainError(str(exc)) from exc
        new = (None, sorted(area.lad_codes))
    old = (org.local_preset, org.local_lad_codes)
    if old != new:
        org.local_preset, org.local_lad_codes = new
        changes: dict[str, tuple[Any, Any]] = {"local_preset": (old[0], new[0]), "local_lad_codes": (old[1], new[1])}
        if label:
            changes["local_label"] = (None, label)
        await record_audit(
            session,
            actor=actor,
            action="organisation.local_area",
            entity_type="organisation",
            entity_id=org.id,
            organisation_id=org.id,
            changes=changes,
        )
    await session.flush()
    return org


# Facts and the input hash ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SupplierInputs:
    supplier_id: int
    place_text: str | None
    postcode_basis: str | None  # registered | delivery | manual_lad
    manual_lad: str | None
    country_hint: str | None
    facts: enterprise.SupplierFacts
    overrides: tuple[tuple[int, str, str, str, str, str], ...]  # id, flag, value, reason, by, at

    def hash(self) -> str:
        payload = (
            self.place_text,
            self.postcode_basis,
            self.manual_lad,
            self.country_hint,
            self.facts.name,
            self.facts.identifiers,
            self.facts.declared_scale,
            self.facts.declared_vcse,
            self.facts.declared_source,
            [(a.kind, a.reference, a.attested_by, a.attested_at.isoformat()) for a in self.facts.attestations],
            self.overrides,
            sorted(rule_versions().items()),
        )
        return hashlib.sha256(msgspec.json.encode(payload)).hexdigest()


def _ident(scheme: str, value: str) -> tuple[str, str]:
    return normalise_identifier(scheme, value) or (scheme, value)


async def _gather_inputs(session: AsyncSession, supplier_ids: Sequence[int] | None) -> list[SupplierInputs]:
    """Facts for every effective supplier (or those given), with the rows of duplicates merged into them."""
    s = m.Supplier
    query = select(
        s.id,
        s.name,
        s.street_address,
        s.locality,
        s.postcode,
        s.country,
        s.declared_scale,
        s.declared_vcse,
        s.declared_source,
        s.merged_into_id,
    )
    if supplier_ids is not None:
        query = query.where(or_(s.id.in_(supplier_ids), s.merged_into_id.in_(supplier_ids)))
    rows = (await session.execute(query)).all()
    effective = [r for r in rows if r.merged_into_id is None]
    owner = {r.id: (r.merged_into_id or r.id) for r in rows}
    ids = list(owner)

    def scoped(column: Any) -> list[Any]:
        return [] if supplier_ids is None else [column.in_(ids)]

    idents: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for sid, scheme, value in await session.execute(
        select(m.SupplierIdentifier.supplier_id, m.SupplierIdentifier.scheme, m.SupplierIdentifier.value).where(
            *scoped(m.SupplierIdentifier.supplier_id)
        )
    ):
        idents[owner.get(sid, sid)].append(_ident(scheme, value))
    declared: dict[int, list[Any]] = defaultdict(list)
    sm = m.SupplierMatch
    for match in await session.execute(
        select(sm.id, sm.supplier_id, sm.source, sm.ocid, sm.party_id, sm.declared_scale, sm.declared_vcse)
        .where(or_(sm.declared_scale.is_not(None), sm.declared_vcse.is_not(None)), *scoped(sm.supplier_id))
        .order_by(sm.id)
    ):
        declared[owner.get(match.supplier_id, match.supplier_id)].append(match)
    attestations: dict[int, list[enterprise.Attestation]] = defaultdict(list)
    sa = m.SupplierAttestation
    for att in (
        await session.scalars(select(sa).where(sa.revoked_at.is_(None), *scoped(sa.supplier_id)).order_by(sa.id))
    ).all():
        attestations[owner.get(att.supplier_id, att.supplier_id)].append(
            enterprise.Attestation(att.kind, att.reference, att.attested_by, _aware(att.attested_at))
        )
    overrides: dict[int, list[tuple[int, str, str, str, str, str]]] = defaultdict(list)
    co = m.ClassificationOverride
    for ovr in (
        await session.scalars(select(co).where(co.revoked_at.is_(None), *scoped(co.supplier_id)).order_by(co.id))
    ).all():
        overrides[ovr.supplier_id].append(
            (ovr.id, ovr.flag, ovr.value, ovr.reason, ovr.created_by, _aware(ovr.created_at).isoformat())
        )

    out = []
    for r in effective:
        scale, vcse, source = r.declared_scale, r.declared_vcse, r.declared_source
        # The supplier's own declared details win; otherwise the latest feed party that declared any.
        for match in reversed(declared.get(r.id, [])):
            where = f"{match.source} {match.ocid} party {match.party_id}"
            if scale is None and match.declared_scale is not None:
                scale, source = match.declared_scale, source or where
            if vcse is None and match.declared_vcse is not None:
                vcse, source = match.declared_vcse, source or where
        own = overrides.get(r.id, [])
        by_flag = {o[1]: o[2] for o in own}
        place_text: str | None
        basis: str | None
        manual: str | None
        if "lad_code" in by_flag:
            place_text, basis, manual = None, "manual_lad", by_flag["lad_code"]
        elif "delivery_postcode" in by_flag:
            place_text, basis, manual = by_flag["delivery_postcode"], "delivery", None
        else:
            address = ", ".join(x for x in (r.street_address, r.locality) if x)
            place_text = r.postcode or address or None
            basis, manual = ("registered" if place_text else None), None
        facts = enterprise.SupplierFacts(
            name=r.name,
            identifiers=tuple(sorted(set(idents.get(r.id, [])))),
            declared_scale=scale,
            declared_vcse=vcse,
            declared_source=source,
            attestations=tuple(attestations.get(r.id, [])),
        )
        out.append(SupplierInputs(r.id, place_text, basis, manual, r.country, facts, tuple(own)))
    return out


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


# Classification ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassifyCounts:
    examined: int
    classified: int
    unchanged: int
    overridden: int


def _place_rows(inputs: Sequence[SupplierInputs]) -> list[dict[str, Any]]:
    frame = geography.locate_many([i.place_text for i in inputs])
    lads = geography.lad_reference()
    lad_info = {
        row["lad_code"]: row for row in lads.select("lad_code", "region_code", "country_code").iter_rows(named=True)
    }
    rows = []
    for inp, place in zip(inputs, frame.iter_rows(named=True), strict=True):
        if inp.manual_lad is not None:
            info = lad_info.get(inp.manual_lad, {})
            rows.append(
                {
                    "postcode": None,
                    "method": "manual_lad",
                    "confidence": 1.0,
                    "lad_code": inp.manual_lad,
                    "region_code": info.get("region_code"),
                    "country_code": info.get("country_code"),
                    "lookup_key": inp.manual_lad,
                }
            )
        elif inp.place_text is None:
            empty: dict[str, Any] = dict.fromkeys(("postcode", "confidence", "lad_code", "region_code"), None)
            rows.append(empty | {"method": "no_postcode", "country_code": None, "lookup_key": None})
        else:
            rows.append(place)
    return rows


def _evidence_dict(e: enterprise.Evidence, at: str) -> dict[str, Any]:
    return {
        "flag": e.flag,
        "value": e.value,
        "method": e.method,
        "source": e.source,
        "evidence": e.evidence,
        "confidence": e.confidence,
        "rule_id": e.rule_id,
        "rule_version": e.rule_version,
        "overruled": e.overruled,
        "at": at,
    }


def _place_evidence(inp: SupplierInputs, place: dict[str, Any], at: str) -> dict[str, Any]:
    method = place["method"]
    if method == "manual_lad":
        source = "override: LAD set by a person"
    elif inp.postcode_basis == "delivery":
        source = f"delivery postcode override; ONS postcode directory ({geography.DATA_VERSION})"
    else:
        source = f"supplier's registered address; ONS postcode directory ({geography.DATA_VERSION})"
    return {
        "flag": "place",
        "value": place["lad_code"] or "unknown",
        "method": method,
        "source": source,
        "evidence": inp.place_text or place.get("lookup_key") or "",
        "confidence": place["confidence"],
        "rule_id": "GEO",
        "rule_version": f"{locality.RULE_VERSION}; {geography.DATA_VERSION}",
        "overruled": False,
        "at": at,
    }


def _classify_one(inp: SupplierInputs, place: dict[str, Any], at: dt.datetime) -> tuple[dict[str, Any], bool]:
    when = at.isoformat()
    result = enterprise.classify_enterprise(inp.facts)
    values: dict[str, Any] = {
        "category": result.category,
        "sme": result.sme,
        "vcse": result.vcse,
        "social_enterprise": result.social_enterprise,
    }
    records = [_place_evidence(inp, place, when)] + [_evidence_dict(e, when) for e in result.evidence]
    overridden = False
    for ovr_id, flag, value, reason, by, created in inp.overrides:
        if flag in ("lad_code", "delivery_postcode"):
            overridden = True
            records.insert(
                0,
                {
                    "flag": "place",
                    "value": value,
                    "method": "override",
                    "source": f"override #{ovr_id} ({flag}) by {by} on {created}",
                    "evidence": reason,
                    "confidence": 1.0,
                    "rule_id": "OVERRIDE",
                    "rule_version": SERVICE_RULE_VERSION,
                    "overruled": False,
                    "at": when,
                    "override_id": ovr_id,
                    "by": by,
                    "reason": reason,
                },
            )
            continue
        automatic = values[flag]
        values[flag] = value if flag == "category" else _BOOL_TEXT[value]
        overridden = True
        for record in records:
            if record["flag"] == flag:
                record["overruled"] = record["overruled"] or record["value"] != value
        records.insert(
            0,
            {
                "flag": flag,
                "value": value,
                "method": "override",
                "source": f"override #{ovr_id} by {by} on {created} (automatic answer: {_text(automatic)})",
                "evidence": reason,
                "confidence": 1.0,
                "rule_id": "OVERRIDE",
                "rule_version": SERVICE_RULE_VERSION,
                "overruled": False,
                "at": when,
                "override_id": ovr_id,
                "by": by,
                "reason": reason,
            },
        )
    row = {
        "supplier_id": inp.supplier_id,
        "postcode_used": (place["postcode"] or None) and str(place["postcode"])[:10],
        "postcode_basis": inp.postcode_basis,
        "place_method": place["method"],
        "place_confidence": place["confidence"],
        "lad_code": place["lad_code"],
        "region_code": place["region_code"],
        "country_code": place["country_code"],
        "country_hint": (inp.country_hint or None) and inp.country_hint[:100],
        **values,
        "evidence": records,
        "rule_versions": rule_versions() | {"conflicts": ",".join(result.conflicts)},
        "classified_at": at,
    }
    return row, overridden


def _text(value: Any) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


async def classify(
    session: AsyncSession, supplier_ids: Sequence[int] | None = None, *, full: bool = False
) -> ClassifyCounts:
    """Reclassify suppliers whose inputs changed (all of them with ``full``); returns the counts."""
    if supplier_ids is not None:
        supplier_ids = await effective_ids(session, supplier_ids)
    inputs = await _gather_inputs(session, supplier_ids)
    sc = m.SupplierClassification
    existing_query = select(sc.supplier_id, sc.id, sc.input_hash)
    if supplier_ids is not None:
        existing_query = existing_query.where(sc.supplier_id.in_(supplier_ids))
    existing = {sid: (cid, h) for sid, cid, h in (await session.execute(existing_query)).all()}
    hashes = [i.hash() for i in inputs]
    dirty = [
        (inp, h)
        for inp, h in zip(inputs, hashes, strict=True)
        if full or existing.get(inp.supplier_id, (0, ""))[1] != h
    ]
    overridden = sum(1 for i in inputs if i.overrides)
    at = _now()
    for start in range(0, len(dirty), _CHUNK):
        chunk = dirty[start : start + _CHUNK]
        places = _place_rows([inp for inp, _ in chunk])
        new_rows, updates = [], []
        for (inp, h), place in zip(chunk, places, strict=True):
            row, _ = _classify_one(inp, place, at)
            row["input_hash"] = h
            if inp.supplier_id in existing:
                updates.append({"id": existing[inp.supplier_id][0], **row})
            else:
                new_rows.append(row)
        if new_rows:
            await session.execute(insert(sc), new_rows)
        if updates:
            await session.execute(update(sc), updates)
    # Duplicates merged into another supplier are classified as their target.
    merged = select(m.Supplier.id).where(m.Supplier.merged_into_id.is_not(None))
    await session.execute(delete(sc).where(sc.supplier_id.in_(merged)))
    await session.flush()
    return ClassifyCounts(len(inputs), len(dirty), len(inputs) - len(dirty), overridden)


async def effective_ids(session: AsyncSession, supplier_ids: Iterable[int]) -> list[int]:
    rows = await session.execute(
        select(m.Supplier.id, m.Supplier.merged_into_id).where(m.Supplier.id.in_(list(supplier_ids)))
    )
    return sorted({merged or sid for sid, merged in rows.all()})


async def get_supplier(session: AsyncSession, supplier_id: int) -> m.Supplier:
    supplier = await session.get(m.Supplier, supplier_id)
    if supplier is None:
        raise NotFound(f"No supplier with id {supplier_id}.")
    return supplier


async def classification_for(session: AsyncSession, supplier_id: int) -> tuple[m.Supplier, m.SupplierClassification]:
    """The supplier and its (effective supplier's) current classification, brought up to date first."""
    supplier = await get_supplier(session, supplier_id)
    target = supplier.merged_into_id or supplier.id
    await classify(session, [target])
    row = (
        await session.scalars(select(m.SupplierClassification).where(m.SupplierClassification.supplier_id == target))
    ).one()
    await session.refresh(row)
    return supplier, row


# Tiers per anchor -------------------------------------------------------------------------------------------------

_CLASSIFICATION_COLUMNS = (
    "supplier_id",
    "postcode_used",
    "place_method",
    "place_confidence",
    "lad_code",
    "region_code",
    "country_code",
    "country_hint",
    "category",
    "sme",
    "vcse",
    "social_enterprise",
)


def _tiers(frame: pl.DataFrame, area: locality.LocalArea) -> pl.DataFrame:
    """tiers_for over stored classification rows (supplier_id, place_method, postcode_used, ...)."""
    postcode = pl.col("postcode_used")
    outward = postcode.str.split(" ").list.first()
    method = pl.col("place_method")
    manual = method == "manual_lad"
    lads = geography.lad_reference().select("lad_code", "lad_name")
    places = frame.join(lads, on="lad_code", how="left", maintain_order="left").select(
        # A LAD set by hand is as certain as a unit postcode; its method is restored below.
        method=pl.when(manual).then(pl.lit("unit")).otherwise(method),
        postcode=postcode,
        lookup_key=pl.when(method == "sector")
        .then(pl.when(postcode.str.contains(r" [0-9][A-Z]{2}$")).then(postcode.str.head(-2)).otherwise(postcode))
        .when(method == "district")
        .then(outward)
        .when(method == "area")
        .then(outward.str.extract(r"^([A-Z]+)"))
        .otherwise(postcode),
        confidence=pl.col("place_confidence"),
        lad_code=pl.col("lad_code"),
        lad_name=pl.col("lad_name"),
        region_code=pl.col("region_code"),
        country_code=pl.col("country_code"),
    )
    tiers = locality.tiers_for(places, area, country_hints=frame["country_hint"].to_list())
    return tiers.with_columns(
        tier_method=pl.when(frame["place_method"] == "manual_lad").then(pl.lit("manual_lad")).otherwise("tier_method"),
        tier_reason=pl.when(frame["place_method"] == "manual_lad")
        .then(pl.col("tier_reason").str.strip_suffix(".") + pl.lit(" (LAD set by override)."))
        .otherwise("tier_reason"),
    )


async def _classification_frame(session: AsyncSession, supplier_ids: Sequence[int] | None = None) -> pl.DataFrame:
    sc = m.SupplierClassification
    query = select(*(getattr(sc, c) for c in _CLASSIFICATION_COLUMNS)).order_by(sc.supplier_id)
    if supplier_ids is not None:
        query = query.where(sc.supplier_id.in_(list(supplier_ids)))
    rows = (await session.execute(query)).all()
    schema = {
        "supplier_id": pl.Int64,
        "postcode_used": pl.String,
        "place_method": pl.String,
        "place_confidence": pl.Float64,
        "lad_code": pl.String,
        "region_code": pl.String,
        "country_code": pl.String,
        "country_hint": pl.String,
        "category": pl.String,
        "sme": pl.Boolean,
        "vcse": pl.Boolean,
        "social_enterprise": pl.Boolean,
    }
    return pl.DataFrame([tuple(r) for r in rows], schema=schema, orient="row")


async def anchor_areas(
    session: AsyncSession, anchor_ids: Sequence[int]
) -> list[tuple[m.Organisation, locality.LocalArea]]:
    orgs = (await session.scalars(select(m.Organisation).where(m.Organisation.id.in_(list(anchor_ids))))).all()
    found = {o.id: o for o in orgs}
    missing = sorted(set(anchor_ids) - set(found))
    if missing:
        raise NotFound(f"No organisation with id {', '.join(map(str, missing))}.")
    return [(found[i], anchor_area(found[i])[0]) for i in dict.fromkeys(anchor_ids)]


async def supplier_tiers(
    session: AsyncSession, anchor_ids: Sequence[int], *, supplier_ids: Sequence[int] | None = None, refresh: bool = True
) -> pl.DataFrame:
    """One row per (anchor, supplier): tier against that anchor's area, plus the supplier's category flags.

    Every supplier id appears, duplicates merged into another included (with the target's answer and its id in
    ``effective_supplier_id``), so contract links that still name a duplicate join directly. With ``refresh``
    the classification is brought up to date first (incremental, so cheap when nothing changed).
    """
    if refresh:
        await classify(session, supplier_ids)
    supplier_query = select(m.Supplier.id, m.Supplier.merged_into_id)
    if supplier_ids is not None:
        supplier_query = supplier_query.where(m.Supplier.id.in_(list(supplier_ids)))
    pairs = (await session.execute(supplier_query)).all()
    links = pl.DataFrame(
        {"supplier_id": [p[0] for p in pairs], "effective_supplier_id": [p[1] or p[0] for p in pairs]},
        schema={"supplier_id": pl.Int64, "effective_supplier_id": pl.Int64},
    )
    stored = await _classification_frame(
        session, None if supplier_ids is None else links["effective_supplier_id"].unique().to_list()
    )
    frames = []
    for org, area in await anchor_areas(session, anchor_ids):
        tiers = (
            pl.concat([stored.select("supplier_id"), _tiers(stored, area)], how="horizontal") if stored.height else None
        )
        base = stored.select("supplier_id", "category", "sme", "vcse", "social_enterprise")
        joined = base if tiers is None else base.join(tiers, on="supplier_id", how="left")
        if tiers is None:
            joined = joined.with_columns(
                tier=pl.lit(None, pl.String),
                tier_confidence=pl.lit(None, pl.Float64),
                tier_method=pl.lit(None, pl.String),
                tier_reason=pl.lit(None, pl.String),
            )
        frame = links.join(
            joined.rename({"supplier_id": "effective_supplier_id"}), on="effective_supplier_id", how="left"
        ).with_columns(anchor_id=pl.lit(org.id, pl.Int64))
        frames.append(frame)
    columns = [
        "anchor_id",
        "supplier_id",
        "tier",
        "tier_confidence",
        "tier_method",
        "category",
        "sme",
        "vcse",
        "social_enterprise",
        "effective_supplier_id",
        "tier_reason",
    ]
    if not frames:
        return pl.DataFrame(schema=dict.fromkeys(columns, pl.String)).cast(
            {"anchor_id": pl.Int64, "supplier_id": pl.Int64}
        )
    return pl.concat([f.select(columns) for f in frames]).sort("anchor_id", "supplier_id")


async def tiers_for_anchor(session: AsyncSession, anchor_id: int) -> dict[int, locality.TierResult]:
    frame = await supplier_tiers(session, [anchor_id])
    return {
        row["supplier_id"]: locality.TierResult(
            row["tier"], row["tier_confidence"], row["tier_method"], row["tier_reason"]
        )
        for row in frame.iter_rows(named=True)
        if row["tier"] is not None
    }


async def anchor_ids(session: AsyncSession) -> list[int]:
    return list(
        (
            await session.scalars(
                select(m.Organisation.id).where(m.Organisation.is_anchor.is_(True)).order_by(m.Organisation.id)
            )
        ).all()
    )


# Overrides and attestations ----------------------------------------------------------------------------------------


def check_override(flag: str, value: str) -> str:
    """The canonical value for a flag, or a DomainError saying what is allowed."""
    text = value.strip()
    if flag == "category":
        if text.lower() not in enterprise.CATEGORIES:
            raise DomainError(f"category must be one of {', '.join(enterprise.CATEGORIES)}.")
        return text.lower()
    if flag in ("sme", "vcse", "social_enterprise"):
        if text.lower() not in _BOOL_TEXT:
            raise DomainError(f"{flag} must be true, false or unknown.")
        return text.lower()
    if flag == "lad_code":
        code = text.upper()
        if code not in set(geography.lad_reference()["lad_code"].to_list()):
            raise DomainError(f"unknown LAD code {text!r}.")
        return code
    if flag == "delivery_postcode":
        postcode = normalise_postcode(text)
        if postcode is None:
            raise DomainError(f"{text!r} is not a valid UK postcode.")
        return postcode
    raise DomainError(f"flag must be one of {', '.join(OVERRIDE_FLAGS)}.")


async def add_override(
    session: AsyncSession, supplier_id: int, actor: Principal, *, flag: str, value: str, reason: str
) -> m.ClassificationOverride:
    supplier = await get_supplier(session, supplier_id)
    if supplier.merged_into_id is not None:
        raise DomainError(f"Supplier {supplier_id} is merged into {supplier.merged_into_id}; override that one.")
    if len(reason.strip()) < MIN_REASON:
        raise DomainError(f"An override needs a reason of at least {MIN_REASON} characters.")
    canonical = check_override(flag, value)
    now = _now()
    co = m.ClassificationOverride
    superseded = (
        await session.scalars(select(co).where(co.supplier_id == supplier_id, co.flag == flag, co.revoked_at.is_(None)))
    ).all()
    override = m.ClassificationOverride(
        supplier_id=supplier_id,
        flag=flag,
        value=canonical,
        reason=reason.strip(),
        created_by=actor.name,
        created_at=now,
    )
    session.add(override)
    await session.flush()
    for old in superseded:
        old.revoked_at, old.revoked_by, old.revoke_reason = now, actor.name, f"superseded by override #{override.id}"
    await record_audit(
        session,
        actor=actor,
        action="supplier.override",
        entity_type="supplier",
        entity_id=supplier_id,
        changes={flag: ([o.value for o in superseded] or None, canonical), "override_id": (None, override.id)},
        reason=override.reason,
    )
    await classify(session, [supplier_id])
    return override


async def revoke_override(
    session: AsyncSession, override_id: int, actor: Principal, reason: str
) -> m.ClassificationOverride:
    override = await session.get(m.ClassificationOverride, override_id)
    if override is None:
        raise NotFound(f"No override with id {override_id}.")
    if override.revoked_at is not None:
        raise ConflictError(f"Override {override_id} is already revoked.")
    override.revoked_at, override.revoked_by, override.revoke_reason = _now(), actor.name, reason.strip()
    await record_audit(
        session,
        actor=actor,
        action="supplier.override_revoke",
        entity_type="supplier",
        entity_id=override.supplier_id,
        changes={override.flag: (override.value, None), "override_id": (override.id, None)},
        reason=reason.strip(),
    )
    await session.flush()
    await classify(session, [override.supplier_id])
    return override


async def add_attestation(
    session: AsyncSession, supplier_id: int, actor: Principal, *, kind: str, reference: str
) -> m.SupplierAttestation:
    supplier = await get_supplier(session, supplier_id)
    if kind not in enterprise.ATTESTATION_KINDS:
        raise DomainError(f"kind must be one of {', '.join(sorted(enterprise.ATTESTATION_KINDS))}.")
    target = supplier.merged_into_id or supplier.id
    attestation = m.SupplierAttestation(
        supplier_id=target, kind=kind, reference=reference.strip(), attested_by=actor.name, attested_at=_now()
    )
    session.add(attestation)
    await session.flush()
    await record_audit(
        session,
        actor=actor,
        action="supplier.attest",
        entity_type="supplier",
        entity_id=target,
        changes={"attestation": (None, f"{kind}: {attestation.reference}"), "attestation_id": (None, attestation.id)},
    )
    await classify(session, [target])
    return attestation


async def revoke_attestation(
    session: AsyncSession, attestation_id: int, actor: Principal, reason: str
) -> m.SupplierAttestation:
    attestation = await session.get(m.SupplierAttestation, attestation_id)
    if attestation is None:
        raise NotFound(f"No attestation with id {attestation_id}.")
    if attestation.revoked_at is not None:
        raise ConflictError(f"Attestation {attestation_id} is already revoked.")
    attestation.revoked_at, attestation.revoked_by = _now(), actor.name
    await record_audit(
        session,
        actor=actor,
        action="supplier.attest_revoke",
        entity_type="supplier",
        entity_id=attestation.supplier_id,
        changes={"attestation": (f"{attestation.kind}: {attestation.reference}", None)},
        reason=reason.strip(),
    )
    await session.flush()
    await classify(session, [attestation.supplier_id])
    return attestation


# Merge and split ---------------------------------------------------------------------------------------------------


async def merge_suppliers(
    session: AsyncSession, source_id: int, target_id: int, actor: Principal, reason: str
) -> m.SupplierMerge:
    """Merge a duplicate into a target: it points at the target and its identifiers move there."""
    if source_id == target_id:
        raise DomainError("A supplier cannot be merged into itself.")
    source = await get_supplier(session, source_id)
    target = await get_supplier(session, target_id)
    if source.merged_into_id is not None:
        raise ConflictError(f"Supplier {source_id} is already merged into {source.merged_into_id}.")
    if target.merged_into_id is not None:
        raise DomainError(f"Supplier {target_id} is itself merged into {target.merged_into_id}; merge into that one.")
    si = m.SupplierIdentifier
    ident_ids = list((await session.scalars(select(si.id).where(si.supplier_id == source_id))).all())
    children = list((await session.scalars(select(m.Supplier.id).where(m.Supplier.merged_into_id == source_id))).all())
    if ident_ids:
        await session.execute(update(si).where(si.id.in_(ident_ids)).values(supplier_id=target_id))
    if children:
        await session.execute(update(m.Supplier).where(m.Supplier.id.in_(children)).values(merged_into_id=target_id))
    source.merged_into_id = target_id
    merge = m.SupplierMerge(
        kind="merge",
        source_supplier_id=source_id,
        target_supplier_id=target_id,
        moved={"identifiers": ident_ids, "merged_suppliers": children},
        reason=reason.strip(),
        created_by=actor.name,
        created_at=_now(),
    )
    session.add(merge)
    await session.flush()
    for entity, change in ((source_id, (None, target_id)), (target_id, (None, source_id))):
        await record_audit(
            session,
            actor=actor,
            action="supplier.merge",
            entity_type="supplier",
            entity_id=entity,
            changes={"merged_into_id" if entity == source_id else "absorbed": change, "merge_id": (None, merge.id)},
            reason=merge.reason,
        )
    session.expire(source, ["identifiers"])
    session.expire(target, ["identifiers"])
    await classify(session, [target_id])
    return merge


async def split_supplier(
    session: AsyncSession,
    supplier_id: int,
    actor: Principal,
    *,
    name: str,
    reason: str,
    match_ids: Sequence[int],
    contract_supplier_ids: Sequence[int],
) -> m.SupplierMerge:
    """Move feed parties and contract links that are really another organisation to a new supplier."""
    supplier = await get_supplier(session, supplier_id)
    if supplier.merged_into_id is not None:
        raise DomainError(f"Supplier {supplier_id} is merged into {supplier.merged_into_id}; undo that first.")
    if not match_ids and not contract_supplier_ids:
        raise DomainError("Say which feed parties (party_match_ids) or contract links (contract_supplier_ids) move.")
    matches = (await session.scalars(select(m.SupplierMatch).where(m.SupplierMatch.id.in_(list(match_ids))))).all()
    links = (
        await session.scalars(select(m.ContractSupplier).where(m.ContractSupplier.id.in_(list(contract_supplier_ids))))
    ).all()
    wrong = [f"party match {x.id}" for x in matches if x.supplier_id != supplier_id] + [
        f"contract link {x.id}" for x in links if x.supplier_id != supplier_id
    ]
    missing = [f"party match {i}" for i in sorted(set(match_ids) - {x.id for x in matches})] + [
        f"contract link {i}" for i in sorted(set(contract_supplier_ids) - {x.id for x in links})
    ]
    if wrong or missing:
        raise DomainError(f"Not links of supplier {supplier_id}: {', '.join(missing + wrong)}.")
    first = matches[0] if matches else None
    new = m.Supplier(
        name=name.strip(),
        name_key=normalise_org_name(name),
        street_address=first.street_address if first else None,
        postcode=first.postcode if first else None,
        postcode_source="split" if first and first.postcode else None,
    )
    session.add(new)
    await session.flush()
    if matches:
        await session.execute(
            update(m.SupplierMatch).where(m.SupplierMatch.id.in_([x.id for x in matches])).values(supplier_id=new.id)
        )
    if links:
        await session.execute(
            update(m.ContractSupplier)
            .where(m.ContractSupplier.id.in_([x.id for x in links]))
            .values(supplier_id=new.id)
        )
    split = m.SupplierMerge(
        kind="split",
        source_supplier_id=supplier_id,
        target_supplier_id=new.id,
        moved={"matches": sorted(x.id for x in matches), "contract_suppliers": sorted(x.id for x in links)},
        reason=reason.strip(),
        created_by=actor.name,
        created_at=_now(),
    )
    session.add(split)
    await session.flush()
    for entity in (supplier_id, new.id):
        await record_audit(
            session,
            actor=actor,
            action="supplier.split",
            entity_type="supplier",
            entity_id=entity,
            changes={"split_from": (None, supplier_id), "split_to": (None, new.id), "moved": (None, split.moved)},
            reason=split.reason,
        )
    new_id = new.id
    session.expire_all()
    await classify(session, [supplier_id, new_id])
    await session.refresh(split)
    return split


async def undo_merge(session: AsyncSession, merge_id: int, actor: Principal, reason: str | None) -> m.SupplierMerge:
    merge = await session.get(m.SupplierMerge, merge_id)
    if merge is None:
        raise NotFound(f"No merge or split with id {merge_id}.")
    if merge.undone_at is not None:
        raise ConflictError(f"{merge.kind.capitalize()} {merge_id} is already undone.")
    source_id, target_id = merge.source_supplier_id, merge.target_supplier_id
    moved = merge.moved or {}
    if merge.kind == "merge":
        source = await get_supplier(session, source_id)
        if source.merged_into_id != target_id:
            raise ConflictError(f"Supplier {source_id} is no longer merged into {target_id}.")
        si = m.SupplierIdentifier
        ids = [int(i) for i in moved.get("identifiers", [])]
        if ids:
            await session.execute(
                update(si).where(si.id.in_(ids), si.supplier_id == target_id).values(supplier_id=source_id)
            )
        children = [int(i) for i in moved.get("merged_suppliers", [])]
        if children:
            await session.execute(
                update(m.Supplier)
                .where(m.Supplier.id.in_(children), m.Supplier.merged_into_id == target_id)
                .values(merged_into_id=source_id)
            )
        source.merged_into_id = None
    else:
        matches = [int(i) for i in moved.get("matches", [])]
        links = [int(i) for i in moved.get("contract_suppliers", [])]
        if links:
            contract_ids = (
                await session.scalars(select(m.ContractSupplier.contract_id).where(m.ContractSupplier.id.in_(links)))
            ).all()
            clash = (
                await session.scalars(
                    select(m.ContractSupplier.contract_id).where(
                        m.ContractSupplier.contract_id.in_(list(contract_ids)),
                        m.ContractSupplier.supplier_id == source_id,
                    )
                )
            ).all()
            if clash:
                raise ConflictError(
                    f"Supplier {source_id} is already linked to contract {', '.join(map(str, sorted(clash)))}."
                )
            await session.execute(
                update(m.ContractSupplier)
                .where(m.ContractSupplier.id.in_(links), m.ContractSupplier.supplier_id == target_id)
                .values(supplier_id=source_id)
            )
        if matches:
            await session.execute(
                update(m.SupplierMatch)
                .where(m.SupplierMatch.id.in_(matches), m.SupplierMatch.supplier_id == target_id)
                .values(supplier_id=source_id)
            )
        # The split-off supplier is kept (audit refers to it) as a duplicate of the original.
        await session.execute(update(m.Supplier).where(m.Supplier.id == target_id).values(merged_into_id=source_id))
    merge.undone_at, merge.undone_by = _now(), actor.name
    for entity in (source_id, target_id):
        await record_audit(
            session,
            actor=actor,
            action=f"supplier.{merge.kind}_undo",
            entity_type="supplier",
            entity_id=entity,
            changes={"merge_id": (merge.id, None)},
            reason=(reason or "").strip() or None,
        )
    await session.flush()
    session.expire_all()
    await classify(session, [source_id, target_id])
    await session.refresh(merge)
    return merge
