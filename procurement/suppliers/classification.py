"""Supplier classification: where each supplier is and what kind of organisation it is, with evidence.

Where a supplier is (its LAD) is stored once; its tier is judged per anchor at read time against that anchor's own
local area. Only suppliers whose inputs or rules changed are recomputed."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import msgspec
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import clock, figures
from procurement import models as m
from procurement.bulk import among, bulk_insert, listed
from procurement.db import get_or_not_found
from procurement.suppliers.registers import MatchInput, RegisterFacts, register_facts
from socialvalue import enterprise, geography, locality, register_evidence
from socialvalue.identifiers import normalise_identifier
from socialvalue.postcodes import extract_postcode

SERVICE_RULE_VERSION = "classification-service-2026.12.1"


_CHUNK = 2000
PLACE_FLAGS = ("lad_code", "delivery_postcode")


def rule_versions() -> dict[str, str]:
    return {
        "enterprise": enterprise.RULE_VERSION,
        "locality": locality.RULE_VERSION,
        "geography": geography.DATA_VERSION,
        "service": SERVICE_RULE_VERSION,
        "registers": register_evidence.RULE_VERSION,
    }


@dataclass(frozen=True)
class SupplierInputs:
    supplier_id: int
    place_text: str | None
    postcode_basis: str | None  # registered | delivery | manual_lad | register (a register's postcode: weaker)
    manual_lad: str | None
    country_hint: str | None
    facts: enterprise.SupplierFacts
    overrides: tuple[tuple[int, str, str, str, str, str], ...]  # id, flag, value, reason, by, at
    register: RegisterFacts | None = None  # the supplier's register match (procurement.suppliers.registers)

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
            self.register.key if self.register else None,
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
    dialect = session.get_bind().dialect.name
    if supplier_ids is not None:
        # One array parameter each (``among``): an IN list of a batch's suppliers is rendered, bound and prepared
        # again on every call.
        query = query.where(or_(among(dialect, s.id, supplier_ids), among(dialect, s.merged_into_id, supplier_ids)))
    # In id order whatever the plan: new classifications are stored (and numbered) in this order.
    rows = (await session.execute(query.order_by(s.id))).all()
    effective = [r for r in rows if r.merged_into_id is None]
    owner = {r.id: (r.merged_into_id or r.id) for r in rows}
    ids = list(owner)

    def scoped(column: Any) -> list[Any]:
        return [] if supplier_ids is None else [among(dialect, column, ids)]

    idents: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for sid, scheme, value in await session.execute(
        select(m.SupplierIdentifier.supplier_id, m.SupplierIdentifier.scheme, m.SupplierIdentifier.value).where(
            *scoped(m.SupplierIdentifier.supplier_id)
        )
    ):
        idents[owner.get(sid, sid)].append(_ident(scheme, value))
    declared = await _latest_declared(session, effective, owner, supplier_ids is not None)
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
        # The supplier's own declared details win; otherwise the latest feed party that declared each.
        latest_scale, latest_vcse = declared.get(r.id, (None, None))
        taken = [match for match in (latest_scale, latest_vcse) if match is not None]
        if taken:
            newest = max(taken, key=lambda match: match.id)
            source = source or f"{newest.source} {newest.ocid} party {newest.party_id}"
            scale = scale if latest_scale is None else latest_scale.declared_scale
            vcse = vcse if latest_vcse is None else latest_vcse.declared_vcse
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
            # Overrides of the category or a flag join the one decision; place overrides are handled here.
            overrides=tuple(
                enterprise.Override(o[0], o[1], o[2], o[3], o[4], dt.datetime.fromisoformat(o[5]))
                for o in own
                if o[1] not in PLACE_FLAGS
            ),
        )
        out.append(SupplierInputs(r.id, place_text, basis, manual, r.country, facts, tuple(own)))
    feed_postcode = {
        r.id: r.postcode or extract_postcode(", ".join(x for x in (r.street_address, r.locality) if x))
        for r in effective
    }
    found = await register_facts(
        session,
        [
            MatchInput(
                i.supplier_id,
                i.facts.name,
                feed_postcode[i.supplier_id],
                i.facts.identifiers,
                bool(feed_postcode[i.supplier_id]) or i.postcode_basis in ("delivery", "manual_lad"),
            )
            for i in out
        ],
        scoped=supplier_ids is not None,
    )
    return [_with_register(i, found[i.supplier_id]) if i.supplier_id in found else i for i in out]


async def _latest_declared(
    session: AsyncSession, effective: Sequence[Any], owner: dict[int, int], scoped: bool
) -> dict[int, tuple[Any, Any]]:
    """Supplier -> (latest match declaring a scale, latest declaring VCSE status), each only where the supplier
    declares none itself (a feed copies what parties declare onto the supplier, so that is rare), with the matches
    of duplicates merged into it. Only the latest counts, so only it is read: a supplier named in thousands of
    notices would otherwise load every one of its matches each time it is classified."""
    sm = m.SupplierMatch
    dialect = session.get_bind().dialect.name
    wanted: dict[str, set[int]] = {
        "declared_scale": {r.id for r in effective if r.declared_scale is None},
        "declared_vcse": {r.id for r in effective if r.declared_vcse is None},
    }
    newest: dict[str, dict[int, int]] = {}  # column -> owner -> newest match id
    for column, owners in wanted.items():
        newest[column] = {}
        if not owners:
            continue
        declares = getattr(sm, column).is_not(None)
        if scoped:
            # One probe per supplier of the partial index on (supplier_id, id) of the matches that declare (0013):
            # a supplier's other matches, however many, are never read.
            members = listed(dialect, [sid for sid, o in owner.items() if o in owners], sm.supplier_id.type)
            newest_id = select(func.max(sm.id)).where(sm.supplier_id == members.c.value, declares).scalar_subquery()
            query = select(members.c.value, newest_id)
        else:
            query = select(sm.supplier_id, func.max(sm.id)).where(declares).group_by(sm.supplier_id)
        for sid, match_id in await session.execute(query):
            o = owner.get(sid, sid)
            if match_id is not None and o in owners:
                newest[column][o] = max(newest[column].get(o, 0), match_id)
    ids = sorted({i for found in newest.values() for i in found.values()})
    matches: dict[int, Any] = {}
    for start in range(0, len(ids), _CHUNK):
        for match in await session.execute(
            select(sm.id, sm.source, sm.ocid, sm.party_id, sm.declared_scale, sm.declared_vcse).where(
                among(dialect, sm.id, ids[start : start + _CHUNK])
            )
        ):
            matches[match.id] = match
    scales, vcses = newest["declared_scale"], newest["declared_vcse"]
    return {
        o: (matches[scales[o]] if o in scales else None, matches[vcses[o]] if o in vcses else None)
        for o in scales.keys() | vcses.keys()
    }


def _with_register(inp: SupplierInputs, facts: RegisterFacts) -> SupplierInputs:
    """Register evidence joins the enterprise decision; the registered postcode stands in when the feed has none."""
    out = replace(inp, facts=replace(inp.facts, register_evidence=facts.evidence), register=facts)
    if facts.locality is not None:
        out = replace(out, place_text=facts.locality.postcode, postcode_basis="register")
    return out


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class ClassifyCounts:
    examined: int
    classified: int
    unchanged: int
    overridden: int
    changed: tuple[int, ...] = ()  # the suppliers reclassified


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
        elif inp.postcode_basis == "register" and inp.register and inp.register.locality:
            # A registered office is weaker evidence of where a supplier works than a delivery address.
            cap = inp.register.locality.confidence
            rows.append(place | {"confidence": None if place["confidence"] is None else min(place["confidence"], cap)})
        elif inp.place_text is None:
            empty: dict[str, Any] = dict.fromkeys(("postcode", "confidence", "lad_code", "region_code"), None)
            rows.append(empty | {"method": "no_postcode", "country_code": None, "lookup_key": None})
        else:
            rows.append(place)
    return rows


def _evidence_dict(e: enterprise.Evidence, at: str) -> dict[str, Any]:
    person = {} if e.override_id is None else {"override_id": e.override_id, "by": e.by, "reason": e.evidence}
    return person | {
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
    elif inp.postcode_basis == "register" and inp.register and inp.register.locality:
        source = f"{inp.register.locality.source}; ONS postcode directory ({geography.DATA_VERSION})"
    elif inp.postcode_basis == "delivery":
        source = f"delivery postcode override; ONS postcode directory ({geography.DATA_VERSION})"
    else:
        source = f"supplier's registered address; ONS postcode directory ({geography.DATA_VERSION})"
    note = geography.fit_text(geography.Place(**place)) if method in geography.POSTCODE_STATUS else None
    if note:
        source = f"{source}; {note}"
    return {
        "flag": "place",
        "value": place["lad_code"] or "unknown",
        "method": method,
        "source": source,
        "note": note,
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
    records += [r | {"at": when} for r in (inp.register.records if inp.register else ())]
    # Overrides of the category or a flag are already evidence in the one decision; place overrides come first.
    for ovr_id, flag, value, reason, by, created in inp.overrides:
        if flag not in PLACE_FLAGS:
            continue
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
    return row, bool(inp.overrides)


async def classify(
    session: AsyncSession, supplier_ids: Sequence[int] | None = None, *, full: bool = False
) -> ClassifyCounts:
    """Reclassify suppliers whose inputs changed (all of them with ``full``), and keep the stored anchor x
    supplier tiers of those suppliers in step, in the same transaction; returns the counts."""
    counts = await classify_rows(session, supplier_ids, full=full)
    await figures.suppliers_classified(session, counts.changed)
    return counts


async def classify_rows(
    session: AsyncSession,
    supplier_ids: Sequence[int] | None = None,
    *,
    full: bool = False,
    alongside: Callable[[], Awaitable[None]] | None = None,
) -> ClassifyCounts:
    """The classification rows alone (``classify`` also keeps the stored tiers in step).

    ``alongside``: a write of the caller's to run on the session while the rows are computed (in a thread, so the
    event loop keeps that write going): the connection is idle then, and the database works meanwhile."""
    if supplier_ids is not None:
        supplier_ids = await effective_ids(session, supplier_ids)
    inputs = await _gather_inputs(session, supplier_ids)
    sc = m.SupplierClassification
    existing_query = select(sc.supplier_id, sc.id, sc.input_hash)
    if supplier_ids is not None:
        existing_query = existing_query.where(among(session.get_bind().dialect.name, sc.supplier_id, supplier_ids))
    existing = {sid: (cid, h) for sid, cid, h in (await session.execute(existing_query)).all()}
    at = clock.now()

    def rows(chunk: Sequence[tuple[SupplierInputs, str]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        new_rows, updates = [], []
        for (inp, h), place in zip(chunk, _place_rows([inp for inp, _ in chunk]), strict=True):
            row, _ = _classify_one(inp, place, at)
            row["input_hash"] = h
            if inp.supplier_id in existing:
                updates.append({"id": existing[inp.supplier_id][0], **row})
            else:
                new_rows.append(row)
        return new_rows, updates

    def first() -> tuple[list[tuple[SupplierInputs, str]], list[dict[str, Any]], list[dict[str, Any]]]:
        hashed = ((inp, inp.hash()) for inp in inputs)
        dirty = [(inp, h) for inp, h in hashed if full or existing.get(inp.supplier_id, (0, ""))[1] != h]
        return dirty, *rows(dirty[:_CHUNK])

    if alongside is None:
        dirty, new_rows, updates = first()
    else:
        # Both finish before either's error is raised: the write must not be left running on the connection.
        computed, written = await asyncio.gather(asyncio.to_thread(first), alongside(), return_exceptions=True)
        for outcome in (written, computed):
            if isinstance(outcome, BaseException):
                raise outcome
        dirty, new_rows, updates = computed
    for start in range(0, len(dirty), _CHUNK):
        if start:
            new_rows, updates = rows(dirty[start : start + _CHUNK])
        if new_rows:
            await bulk_insert(session, sc, new_rows)
        if updates:
            await session.execute(update(sc), updates)
    # Duplicates merged into another supplier are classified as their target.
    merged = select(m.Supplier.id).where(m.Supplier.merged_into_id.is_not(None))
    await session.execute(delete(sc).where(sc.supplier_id.in_(merged)))
    await session.flush()
    overridden = sum(1 for i in inputs if i.overrides)
    return ClassifyCounts(
        len(inputs), len(dirty), len(inputs) - len(dirty), overridden, tuple(i.supplier_id for i, _ in dirty)
    )


async def effective_ids(session: AsyncSession, supplier_ids: Iterable[int]) -> list[int]:
    rows = await session.execute(
        select(m.Supplier.id, m.Supplier.merged_into_id).where(
            among(session.get_bind().dialect.name, m.Supplier.id, list(supplier_ids))
        )
    )
    return sorted({merged or sid for sid, merged in rows.all()})


async def get_supplier(session: AsyncSession, supplier_id: int) -> m.Supplier:
    return await get_or_not_found(session, m.Supplier, supplier_id, "supplier")


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
