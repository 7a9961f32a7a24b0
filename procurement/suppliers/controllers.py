"""HTTP for suppliers and their classification: master data, the why, overrides, attestations, merges, export."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import msgspec
import polars as pl
from advanced_alchemy.extensions.litestar.providers import create_service_provider
from litestar import Controller, Request, Response, get, patch, post, put
from litestar.di import Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter
from litestar.response import Stream
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_202_ACCEPTED
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.auth import Principal, requires_editor, requires_reviewer, requires_token
from procurement.db import get_or_not_found
from procurement.exports import SafeCsvWriter
from procurement.organisations.local_area import get_org, set_local_area
from procurement.organisations.schemas import LocalAreaIn, LocalAreaOut
from procurement.paging import DEFAULT_LIMIT, Limit, Offset
from procurement.schemas import IdParam, Page, id_query
from procurement.suppliers.classification import classify
from procurement.suppliers.corrections import Correction, approve, list_requests, reject, submit
from procurement.suppliers.explain import (
    CSV_COLUMNS,
    OGL_URL,
    _attestation,
    _flag,
    _lad_names,
    _local_area_out,
    _merge,
    _override,
    _summary,
    classification_out,
)
from procurement.suppliers.schemas import (
    AttestationIn,
    AttestationOut,
    Attribution,
    ChangeRequestOut,
    Classification,
    DecisionIn,
    MergeIn,
    MergeOut,
    OverrideIn,
    OverrideOut,
    RevokeIn,
    SplitIn,
    Supplier,
    SupplierCreate,
    SupplierUpdate,
    UndoIn,
)
from procurement.suppliers.service import SupplierService, supplier_schema, supplier_schemas
from procurement.suppliers.tiers import supplier_tiers
from socialvalue import geography

T = TypeVar("T")


_PENDING = {
    HTTP_202_ACCEPTED: ResponseSpec(
        data_container=ChangeRequestOut,
        description="The change reaches organisations the caller may not act for: it waits for a reviewer.",
    )
}


def change_request_out(r: m.SupplierChangeRequest) -> ChangeRequestOut:
    return ChangeRequestOut(
        id=r.id,
        kind=r.kind,
        supplier_id=r.supplier_id,
        payload=r.payload,
        reason=r.reason,
        affected_organisation_ids=list(r.affected_organisation_ids),
        status=r.status,
        requested_by=r.requested_by,
        requested_at=r.requested_at,
        decided_by=r.decided_by,
        decided_at=r.decided_at,
        decision_reason=r.decision_reason,
        result=r.result,
    )


def _answer(done: Any, schema: Callable[[Any], T], status: int) -> Response[T | ChangeRequestOut]:
    """The corrected record, or 202 with the change request when it waits for a reviewer."""
    if isinstance(done, m.SupplierChangeRequest):
        return Response(change_request_out(done), status_code=HTTP_202_ACCEPTED)
    return Response(schema(done), status_code=status)


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
        supplier_id: IdParam,
        anchor_id: int | None = id_query("Include this anchor's tier as `tier`."),
    ) -> Classification:
        """A supplier's place and categories with the evidence and rule behind each flag."""
        return await classification_out(db_session, supplier_id, None, anchor_id)

    @post(
        "/suppliers/{supplier_id:int}/overrides",
        summary="Override one flag (reason required); waits for a reviewer if it reaches other organisations",
        guards=[requires_token],
        status_code=HTTP_201_CREATED,
        responses=_PENDING,
    )
    async def add_override(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, supplier_id: IdParam, data: OverrideIn
    ) -> Response[OverrideOut | ChangeRequestOut]:
        """Overrides one classification flag of a supplier with a reason; it survives re-imports and reclassification.
        Audited."""
        payload = {
            "supplier_id": supplier_id,
            "flag": data.flag,
            "value": data.value,
            "confirm_postcode": data.confirm_postcode,
        }
        done = await submit(db_session, request.user, Correction("override", payload, data.reason))
        return _answer(done, _override, HTTP_201_CREATED)

    @post(
        "/overrides/{override_id:int}/revoke",
        summary="Revoke an override; waits for a reviewer if it reaches other organisations",
        guards=[requires_token],
        status_code=HTTP_200_OK,
        responses=_PENDING,
    )
    async def revoke_override(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, override_id: IdParam, data: RevokeIn
    ) -> Response[OverrideOut | ChangeRequestOut]:
        """Revokes an override with a reason; the computed flag applies again. Audited."""
        payload = {"override_id": override_id}
        done = await submit(db_session, request.user, Correction("override_revoke", payload, data.reason))
        return _answer(done, _override, HTTP_200_OK)

    @post(
        "/suppliers/{supplier_id:int}/attestations",
        summary="Attest from outside evidence; waits for a reviewer if it reaches other organisations",
        guards=[requires_token],
        status_code=HTTP_201_CREATED,
        responses=_PENDING,
    )
    async def add_attestation(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, supplier_id: IdParam, data: AttestationIn
    ) -> Response[AttestationOut | ChangeRequestOut]:
        """Records outside evidence (a register entry, a certificate) that sets a supplier's category. Audited."""
        payload = {"supplier_id": supplier_id, "kind": data.kind, "reference": data.reference}
        done = await submit(db_session, request.user, Correction("attest", payload, data.reason))
        return _answer(done, _attestation, HTTP_201_CREATED)

    @post(
        "/attestations/{attestation_id:int}/revoke",
        summary="Revoke an attestation; waits for a reviewer if it reaches other organisations",
        guards=[requires_token],
        status_code=HTTP_200_OK,
        responses=_PENDING,
    )
    async def revoke_attestation(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, attestation_id: IdParam, data: RevokeIn
    ) -> Response[AttestationOut | ChangeRequestOut]:
        """Revokes an attestation with a reason; the supplier is classified again without it. Audited."""
        payload = {"attestation_id": attestation_id}
        done = await submit(db_session, request.user, Correction("attest_revoke", payload, data.reason))
        return _answer(done, _attestation, HTTP_200_OK)

    @post(
        "/suppliers/merge",
        summary="Merge a duplicate supplier into another; waits for a reviewer if it reaches other organisations",
        guards=[requires_token],
        status_code=HTTP_201_CREATED,
        responses=_PENDING,
    )
    async def merge(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, data: MergeIn
    ) -> Response[MergeOut | ChangeRequestOut]:
        """Merges a duplicate supplier into another: its contracts and identifiers move, and it can be undone.
        Audited."""
        payload = {"source_id": data.source_id, "target_id": data.target_id}
        done = await submit(db_session, request.user, Correction("merge", payload, data.reason))
        return _answer(done, _merge, HTTP_201_CREATED)

    @post(
        "/suppliers/{supplier_id:int}/split",
        summary="Split feed parties or contract links off to a new supplier; may wait for a reviewer",
        guards=[requires_token],
        status_code=HTTP_201_CREATED,
        responses=_PENDING,
    )
    async def split(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, supplier_id: IdParam, data: SplitIn
    ) -> Response[MergeOut | ChangeRequestOut]:
        """Moves some feed parties or contract links of a supplier to a new supplier. Audited; can be undone."""
        payload = {
            "supplier_id": supplier_id,
            "name": data.name,
            "party_match_ids": data.party_match_ids,
            "contract_supplier_ids": data.contract_supplier_ids,
        }
        done = await submit(db_session, request.user, Correction("split", payload, data.reason))
        return _answer(done, _merge, HTTP_201_CREATED)

    @post(
        "/supplier-merges/{merge_id:int}/undo",
        summary="Undo a merge or split; waits for a reviewer if it reaches other organisations",
        guards=[requires_token],
        status_code=HTTP_200_OK,
        responses=_PENDING,
    )
    async def undo(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, merge_id: IdParam, data: UndoIn
    ) -> Response[MergeOut | ChangeRequestOut]:
        """Undoes a merge or a split with a reason, restoring the suppliers as they were. Audited."""
        done = await submit(db_session, request.user, Correction("undo", {"merge_id": merge_id}, data.reason))
        return _answer(done, _merge, HTTP_200_OK)

    @get("/organisations/{org_id:int}/local-area", summary="An anchor's definition of local")
    async def get_local_area(self, db_session: AsyncSession, org_id: IdParam) -> LocalAreaOut:
        """The districts an anchor counts as local, and the preset they came from. No token needed."""
        return _local_area_out(await get_org(db_session, org_id))

    @put(
        "/organisations/{org_id:int}/local-area",
        summary="Set an anchor's definition of local",
        guards=[requires_editor],
    )
    async def put_local_area(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, org_id: IdParam, data: LocalAreaIn
    ) -> LocalAreaOut:
        """Sets the districts an anchor counts as local, from a preset or a list of district codes. Audited."""
        org = await set_local_area(
            db_session, org_id, request.user, preset=data.preset, lad_codes=data.lad_codes, label=data.label
        )
        return _local_area_out(org)

    @get(
        "/suppliers.csv", summary="Supplier classification export (CSV)", guards=[requires_token], media_type="text/csv"
    )
    async def export_csv(
        self,
        db_session: AsyncSession,
        anchor_id: int | None = id_query("Add this anchor's tier columns."),
    ) -> Stream:
        """Every supplier with its place, category, flags and evidence as CSV; with anchor_id, that anchor's tier
        too."""
        await classify(db_session)
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
            frame = await supplier_tiers(db_session, [anchor_id], refresh=False)
            tiers = {r["supplier_id"]: r for r in frame.iter_rows(named=True)}
        names = _lad_names()
        regions = dict(geography.lad_reference().select("region_code", "region_name").unique().iter_rows())
        columns = [*CSV_COLUMNS, *(("anchor_id", "tier", "tier_confidence", "tier_method") if anchor_id else ())]

        def rows() -> Iterator[bytes]:
            buffer = io.StringIO()
            writer = SafeCsvWriter(buffer)
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
                        geography.postcode_status(c.place_method) or "",
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
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="suppliers.csv"'},
        )

    @get("/geography/attribution", summary="Geography data licence and attribution (OGL v3.0)")
    async def attribution(self) -> Attribution:
        """The licence and attribution text of the postcode and boundary data the classification uses. No token
        needed."""
        return Attribution(
            attribution=geography.ATTRIBUTION,
            data_version=geography.DATA_VERSION,
            licence="Open Government Licence v3.0",
            licence_url=OGL_URL,
        )


class SupplierController(Controller):
    path = "/suppliers"
    tags = ["suppliers"]
    dependencies = {"suppliers": Provide(create_service_provider(SupplierService))}

    @get("/", summary="List suppliers", guards=[requires_token])
    async def list_suppliers(
        self,
        suppliers: SupplierService,
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
        q: str | None = Parameter(default=None, max_length=100, description="Name contains."),
        postcode: str | None = Parameter(default=None, max_length=10),
    ) -> Page[Supplier]:
        """Suppliers by name, optionally a name fragment; paged."""
        conditions: list[ColumnElement[bool]] = []
        if q:
            conditions.append(func.lower(m.Supplier.name).contains(q.lower(), autoescape=True))
        if postcode:
            conditions.append(m.Supplier.postcode == postcode.upper())
        session = suppliers.repository.session
        total = await session.scalar(select(func.count()).select_from(m.Supplier).where(*conditions)) or 0
        rows = await session.scalars(
            select(m.Supplier).where(*conditions).order_by(m.Supplier.name, m.Supplier.id).limit(limit).offset(offset)
        )
        return Page(items=supplier_schemas(rows.all()), total=total, limit=limit, offset=offset)

    @get("/{supplier_id:int}", summary="One supplier", guards=[requires_token])
    async def get_supplier(self, suppliers: SupplierService, supplier_id: IdParam) -> Supplier:
        """A supplier with its address and identifiers."""
        return supplier_schema(await suppliers.get_or_404(supplier_id))

    @post("/", summary="Create a supplier", guards=[requires_editor])
    async def create_supplier(
        self, request: Request[Principal, Any, Any], suppliers: SupplierService, data: SupplierCreate
    ) -> Supplier:
        """Adds a supplier with its address and identifiers; the postcode is checked and normalised. Audited."""
        return supplier_schema(await suppliers.create_supplier(data, request.user))

    @patch(
        "/{supplier_id:int}",
        summary="Correct a supplier (reason required); waits for a reviewer if it reaches other organisations",
        guards=[requires_token],
        responses=_PENDING,
    )
    async def update_supplier(
        self,
        request: Request[Principal, Any, Any],
        suppliers: SupplierService,
        supplier_id: IdParam,
        data: SupplierUpdate,
    ) -> Response[Supplier | ChangeRequestOut]:
        """Corrects only the fields sent. Audited."""
        changes = msgspec.to_builtins(data)
        reason = changes.pop("reason")
        payload = {"supplier_id": supplier_id, "changes": changes}
        done = await submit(suppliers.repository.session, request.user, Correction("update", payload, reason))
        return _answer(done, supplier_schema, HTTP_200_OK)


class SupplierChangeRequestController(Controller):
    path = "/supplier-change-requests"
    tags = ["classification"]
    guards = [requires_token]

    @get("/", summary="Corrections of shared supplier data waiting for (or decided by) a reviewer")
    async def list_requests(
        self,
        db_session: AsyncSession,
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
        status: m.ChangeRequestStatus | None = None,
        supplier_id: int | None = Parameter(default=None, ge=1),
    ) -> Page[ChangeRequestOut]:
        """Corrections of shared supplier data waiting for (or decided by) a reviewer."""
        rows, total = await list_requests(
            db_session, status=status.value if status else None, supplier_id=supplier_id, limit=limit, offset=offset
        )
        return Page(items=[change_request_out(r) for r in rows], total=total, limit=limit, offset=offset)

    @get("/{request_id:int}", summary="One change request")
    async def get_request(self, db_session: AsyncSession, request_id: int) -> ChangeRequestOut:
        """One change request."""
        return change_request_out(
            await get_or_not_found(db_session, m.SupplierChangeRequest, request_id, "change request")
        )

    @post(
        "/{request_id:int}/approve",
        summary="Approve and apply a change request (a reviewer who may act for every affected organisation)",
        guards=[requires_reviewer],
        status_code=HTTP_200_OK,
    )
    async def approve(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, request_id: int, data: DecisionIn
    ) -> ChangeRequestOut:
        """Approve and apply a change request (a reviewer who may act for every affected organisation)."""
        return change_request_out(await approve(db_session, request_id, request.user, data.reason))

    @post(
        "/{request_id:int}/reject",
        summary="Reject a change request with a reason (a reviewer who may act for every affected organisation)",
        guards=[requires_reviewer],
        status_code=HTTP_200_OK,
    )
    async def reject(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, request_id: int, data: DecisionIn
    ) -> ChangeRequestOut:
        """Reject a change request with a reason (a reviewer who may act for every affected organisation)."""
        return change_request_out(await reject(db_session, request_id, request.user, data.reason))
