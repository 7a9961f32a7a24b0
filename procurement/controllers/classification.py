"""Supplier classification: the "why" per flag, tiers per anchor, overrides, attestations, merge and split,
anchors' local areas, the CSV export and the geography attribution."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import polars as pl
from litestar import Controller, Request, get, post, put
from litestar.params import Parameter
from litestar.response import Stream
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import classification as svc
from procurement import models as m
from procurement import schemas_classification as sc
from procurement.auth import Principal, requires_editor, requires_reviewer, requires_token
from socialvalue import geography

OGL_URL = "https://www.nationalarchives.gov.uk/doc/open-government-licence/version/3/"


def _why(record: dict[str, Any]) -> sc.Why:
    return sc.Why(
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


def _override(o: m.ClassificationOverride) -> sc.OverrideOut:
    return sc.OverrideOut(
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


def _attestation(a: m.SupplierAttestation) -> sc.AttestationOut:
    return sc.AttestationOut(
        id=a.id,
        supplier_id=a.supplier_id,
        kind=a.kind,
        reference=a.reference,
        attested_by=a.attested_by,
        attested_at=a.attested_at,
        revoked_at=a.revoked_at,
    )


def _merge(x: m.SupplierMerge) -> sc.MergeOut:
    return sc.MergeOut(
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
) -> sc.Classification:
    supplier, row = await svc.classification_for(session, supplier_id)
    target = row.supplier_id
    wanted = anchor_ids if anchor_ids is not None else await svc.anchor_ids(session)
    if anchor_id is not None and anchor_id not in wanted:
        wanted = [anchor_id, *wanted]
    tiers: list[sc.TierOut] = []
    if wanted:
        frame = await svc.supplier_tiers(session, wanted, supplier_ids=[target], refresh=False)
        areas = {org.id: (org, area) for org, area in await svc.anchor_areas(session, wanted)}
        for r in frame.filter(pl.col("supplier_id") == target).iter_rows(named=True):
            org, area = areas[r["anchor_id"]]
            tiers.append(
                sc.TierOut(
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
    return sc.Classification(
        supplier_id=supplier.id,
        effective_supplier_id=target,
        name=supplier.name,
        merged_into_id=supplier.merged_into_id,
        place=sc.PlaceOut(
            postcode_used=row.postcode_used,
            postcode_basis=row.postcode_basis,
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


def _local_area_out(org: m.Organisation) -> sc.LocalAreaOut:
    area, is_default = svc.anchor_area(org)
    names = _lad_names()
    codes = sorted(area.lad_codes)
    return sc.LocalAreaOut(
        organisation_id=org.id,
        organisation_name=org.name,
        preset=area.preset,
        is_default=is_default,
        label=area.label,
        region_code=area.region_code,
        lad_codes=codes,
        lads=[sc.Lad(code=c, name=names.get(c, (None, None))[0]) for c in codes],
    )


CSV_COLUMNS = (
    "supplier_id",
    "effective_supplier_id",
    "name",
    "postcode",
    "postcode_used",
    "postcode_basis",
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


class ClassificationController(Controller):
    path = "/"
    tags = ["classification"]

    @get(
        "/suppliers/{supplier_id:int}/classification",
        summary="Why a supplier is classified as it is",
        guards=[requires_token],
    )
    async def get_classification(
        self,
        db_session: AsyncSession,
        supplier_id: int,
        anchor_id: int | None = Parameter(default=None, ge=1, description="Include this anchor's tier as `tier`."),
    ) -> sc.Classification:
        return await classification_out(db_session, supplier_id, None, anchor_id)

    @post(
        "/suppliers/{supplier_id:int}/overrides",
        summary="Override one flag (reason required)",
        guards=[requires_token],
        status_code=HTTP_201_CREATED,
    )
    async def add_override(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, supplier_id: int, data: sc.OverrideIn
    ) -> sc.OverrideOut:
        override = await svc.add_override(
            db_session, supplier_id, request.user, flag=data.flag, value=data.value, reason=data.reason
        )
        return _override(override)

    @post(
        "/overrides/{override_id:int}/revoke",
        summary="Revoke an override",
        guards=[requires_token],
        status_code=HTTP_200_OK,
    )
    async def revoke_override(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, override_id: int, data: sc.RevokeIn
    ) -> sc.OverrideOut:
        return _override(await svc.revoke_override(db_session, override_id, request.user, data.reason))

    @post(
        "/suppliers/{supplier_id:int}/attestations",
        summary="Attest from outside evidence (reviewer)",
        guards=[requires_reviewer],
        status_code=HTTP_201_CREATED,
    )
    async def add_attestation(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, supplier_id: int, data: sc.AttestationIn
    ) -> sc.AttestationOut:
        attestation = await svc.add_attestation(
            db_session, supplier_id, request.user, kind=data.kind, reference=data.reference
        )
        return _attestation(attestation)

    @post(
        "/attestations/{attestation_id:int}/revoke",
        summary="Revoke an attestation (reviewer)",
        guards=[requires_reviewer],
        status_code=HTTP_200_OK,
    )
    async def revoke_attestation(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, attestation_id: int, data: sc.RevokeIn
    ) -> sc.AttestationOut:
        return _attestation(await svc.revoke_attestation(db_session, attestation_id, request.user, data.reason))

    @post(
        "/suppliers/merge",
        summary="Merge a duplicate supplier into another",
        guards=[requires_token],
        status_code=HTTP_201_CREATED,
    )
    async def merge(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, data: sc.MergeIn
    ) -> sc.MergeOut:
        return _merge(await svc.merge_suppliers(db_session, data.source_id, data.target_id, request.user, data.reason))

    @post(
        "/suppliers/{supplier_id:int}/split",
        summary="Split feed parties or contract links off to a new supplier",
        guards=[requires_token],
        status_code=HTTP_201_CREATED,
    )
    async def split(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, supplier_id: int, data: sc.SplitIn
    ) -> sc.MergeOut:
        split = await svc.split_supplier(
            db_session,
            supplier_id,
            request.user,
            name=data.name,
            reason=data.reason,
            match_ids=data.party_match_ids,
            contract_supplier_ids=data.contract_supplier_ids,
        )
        return _merge(split)

    @post(
        "/supplier-merges/{merge_id:int}/undo",
        summary="Undo a merge or split",
        guards=[requires_token],
        status_code=HTTP_200_OK,
    )
    async def undo(
        self,
        request: Request[Principal, Any, Any],
        db_session: AsyncSession,
        merge_id: int,
        data: sc.UndoIn | None = None,
    ) -> sc.MergeOut:
        return _merge(await svc.undo_merge(db_session, merge_id, request.user, data.reason if data else None))

    @get("/organisations/{org_id:int}/local-area", summary="An anchor's definition of local")
    async def get_local_area(self, db_session: AsyncSession, org_id: int) -> sc.LocalAreaOut:
        return _local_area_out(await svc.get_org(db_session, org_id))

    @put(
        "/organisations/{org_id:int}/local-area",
        summary="Set an anchor's definition of local",
        guards=[requires_editor],
    )
    async def put_local_area(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, org_id: int, data: sc.LocalAreaIn
    ) -> sc.LocalAreaOut:
        org = await svc.set_local_area(
            db_session, org_id, request.user, preset=data.preset, lad_codes=data.lad_codes, label=data.label
        )
        return _local_area_out(org)

    @get("/suppliers.csv", summary="Supplier classification export (CSV)", guards=[requires_token])
    async def export_csv(
        self,
        db_session: AsyncSession,
        anchor_id: int | None = Parameter(default=None, ge=1, description="Add this anchor's tier columns."),
    ) -> Stream:
        await svc.classify(db_session)
        await db_session.commit()
        sup = m.Supplier
        suppliers = pl.DataFrame(
            [
                tuple(r)
                for r in (
                    await db_session.execute(
                        select(sup.id, sup.merged_into_id, sup.name, sup.postcode).order_by(sup.id)
                    )
                ).all()
            ],
            schema={"supplier_id": pl.Int64, "merged_into_id": pl.Int64, "name": pl.String, "postcode": pl.String},
            orient="row",
        )
        cls = m.SupplierClassification
        stored = {
            r.supplier_id: r
            for r in (
                await db_session.execute(
                    select(
                        cls.supplier_id,
                        cls.postcode_used,
                        cls.postcode_basis,
                        cls.place_method,
                        cls.place_confidence,
                        cls.lad_code,
                        cls.region_code,
                        cls.country_code,
                        cls.category,
                        cls.sme,
                        cls.vcse,
                        cls.social_enterprise,
                        cls.evidence,
                        cls.rule_versions,
                    )
                )
            ).all()
        }
        tiers: dict[int, dict[str, Any]] = {}
        if anchor_id is not None:
            frame = await svc.supplier_tiers(db_session, [anchor_id], refresh=False)
            tiers = {r["supplier_id"]: r for r in frame.iter_rows(named=True)}
        names = _lad_names()
        regions = dict(geography.lad_reference().select("region_code", "region_name").unique().iter_rows())
        columns = [*CSV_COLUMNS, *(("anchor_id", "tier", "tier_confidence", "tier_method") if anchor_id else ())]

        def rows() -> Iterator[bytes]:
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(columns)
            for i, s in enumerate(suppliers.iter_rows(named=True)):
                effective = s["merged_into_id"] or s["supplier_id"]
                c = stored.get(effective)
                line: list[Any] = [s["supplier_id"], effective, s["name"], s["postcode"]]
                if c is None:
                    line += [""] * (len(CSV_COLUMNS) - len(line))
                else:
                    line += [
                        c.postcode_used,
                        c.postcode_basis,
                        c.place_method,
                        "" if c.place_confidence is None else f"{c.place_confidence:.4f}",
                        c.lad_code,
                        names.get(c.lad_code or "", (None, None))[0],
                        c.region_code,
                        regions.get(c.region_code),
                        c.country_code,
                        c.category,
                        _flag(c.sme),
                        _flag(c.vcse),
                        _flag(c.social_enterprise),
                        _flag(any(r["method"] == "override" for r in c.evidence)),
                        _summary(c.evidence),
                        "; ".join(f"{k}={v}" for k, v in sorted(c.rule_versions.items()) if v),
                    ]
                if anchor_id:
                    t = tiers.get(s["supplier_id"], {})
                    confidence = t.get("tier_confidence")
                    line += [
                        anchor_id,
                        t.get("tier"),
                        "" if confidence is None else f"{confidence:.4f}",
                        t.get("tier_method"),
                    ]
                writer.writerow(["" if v is None else v for v in line])
                if i % 500 == 499:
                    yield buffer.getvalue().encode("utf-8")
                    buffer.seek(0)
                    buffer.truncate()
            yield buffer.getvalue().encode("utf-8")

        return Stream(
            rows(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="suppliers.csv"'},
        )

    @get("/geography/attribution", summary="Geography data licence and attribution (OGL v3.0)")
    async def attribution(self) -> sc.Attribution:
        return sc.Attribution(
            attribution=geography.ATTRIBUTION,
            data_version=geography.DATA_VERSION,
            licence="Open Government Licence v3.0",
            licence_url=OGL_URL,
        )
