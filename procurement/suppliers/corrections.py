"""Corrections of shared supplier data, and the change requests that hold them when they reach further.

A supplier is master data shared by every buyer that contracts with it: its postcode, identifiers,
classification overrides, attestations and merges move the figures of each of those buyers. So a correction
applies at once only when its author may act for every organisation whose (non-withdrawn) contracts use the
supplier: an editor when they are all its own organisation (or there are none yet), a reviewer when they are all
in its scope, a cross-organisation reviewer or an admin always. Otherwise it becomes a pending change request
that a reviewer who may act for every affected organisation approves (the request is then applied as its author
sent it) or rejects, each with a reason and audited. There is one truth per supplier, never a per-buyer copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import clock
from procurement import models as m
from procurement.audit import record_audit
from procurement.auth import Principal, ensure_can_review_for
from procurement.db import get_or_not_found
from procurement.errors import ConflictError, DomainError, Forbidden
from procurement.suppliers.classification import get_supplier
from procurement.suppliers.overrides import (
    add_attestation,
    add_override,
    check_attestation_kind,
    check_override,
    merge_suppliers,
    revoke_attestation,
    revoke_override,
    split_supplier,
    undo_merge,
)
from procurement.suppliers.schemas import SupplierUpdate
from procurement.suppliers.service import SupplierService, affected_organisations

KINDS = ("update", "override", "override_revoke", "attest", "attest_revoke", "merge", "split", "undo")


@dataclass(frozen=True)
class Correction:
    """One correction as its author sent it: ``payload`` holds the ids and fields, ``reason`` says why."""

    kind: str
    payload: dict[str, Any]
    reason: str


async def suppliers_touched(session: AsyncSession, c: Correction) -> list[int]:
    """The suppliers a correction changes (a 404 for an id that does not exist)."""
    p = c.payload
    if c.kind in ("update", "override", "attest", "split"):
        return [(await get_supplier(session, int(p["supplier_id"]))).id]
    if c.kind == "override_revoke":
        return [
            (await get_or_not_found(session, m.ClassificationOverride, int(p["override_id"]), "override")).supplier_id
        ]
    if c.kind == "attest_revoke":
        row = await get_or_not_found(session, m.SupplierAttestation, int(p["attestation_id"]), "attestation")
        return [row.supplier_id]
    if c.kind == "merge":
        return [(await get_supplier(session, int(p[k]))).id for k in ("source_id", "target_id")]
    if c.kind == "undo":
        merge = await get_or_not_found(session, m.SupplierMerge, int(p["merge_id"]), "merge or split")
        return [merge.source_supplier_id, merge.target_supplier_id]
    raise DomainError(f"kind must be one of {', '.join(KINDS)}.")


async def apply_correction(session: AsyncSession, c: Correction, actor: Principal) -> Any:  # noqa: PLR0911 - one per kind
    """Make the change now, audited under ``actor`` with the correction's reason."""
    p = c.payload
    if c.kind == "update":
        service = SupplierService(session=session)
        data = msgspec.convert({**p["changes"], "reason": c.reason}, SupplierUpdate)
        return await service.update_supplier(int(p["supplier_id"]), data, actor)
    if c.kind == "override":
        return await add_override(
            session,
            int(p["supplier_id"]),
            actor,
            flag=p["flag"],
            value=p["value"],
            reason=c.reason,
            confirm_postcode=bool(p.get("confirm_postcode", False)),
        )
    if c.kind == "override_revoke":
        return await revoke_override(session, int(p["override_id"]), actor, c.reason)
    if c.kind == "attest":
        return await add_attestation(
            session, int(p["supplier_id"]), actor, kind=p["kind"], reference=p["reference"], reason=c.reason
        )
    if c.kind == "attest_revoke":
        return await revoke_attestation(session, int(p["attestation_id"]), actor, c.reason)
    if c.kind == "merge":
        return await merge_suppliers(session, int(p["source_id"]), int(p["target_id"]), actor, c.reason)
    if c.kind == "split":
        return await split_supplier(
            session,
            int(p["supplier_id"]),
            actor,
            name=p["name"],
            reason=c.reason,
            match_ids=[int(i) for i in p.get("party_match_ids", [])],
            contract_supplier_ids=[int(i) for i in p.get("contract_supplier_ids", [])],
        )
    if c.kind == "undo":
        return await undo_merge(session, int(p["merge_id"]), actor, c.reason)
    raise DomainError(f"kind must be one of {', '.join(KINDS)}.")


async def _precheck(session: AsyncSession, c: Correction) -> None:
    """Refuse now what could never be approved, so a reviewer is not asked to judge a malformed request."""
    p = c.payload
    if c.kind == "override":
        check_override(p["flag"], p["value"], confirm_postcode=bool(p.get("confirm_postcode", False)))
    elif c.kind == "attest":
        check_attestation_kind(p["kind"])
    elif c.kind == "merge" and p["source_id"] == p["target_id"]:
        raise DomainError("A supplier cannot be merged into itself.")
    elif c.kind == "update":
        data = msgspec.convert({**p["changes"], "reason": c.reason}, SupplierUpdate)
        if isinstance(data.identifiers, list):
            await SupplierService(session=session).check_identifiers_free(data.identifiers, int(p["supplier_id"]))


async def submit(session: AsyncSession, actor: Principal, c: Correction) -> Any:
    """Apply the correction now if ``actor`` may act for every affected organisation; else a pending request."""
    supplier_ids = await suppliers_touched(session, c)
    affected = await affected_organisations(session, supplier_ids)
    if actor.may_act_for_all(affected):
        return await apply_correction(session, c, actor)
    await _precheck(session, c)
    request = m.SupplierChangeRequest(
        kind=c.kind,
        supplier_id=supplier_ids[0],
        payload=c.payload,
        reason=c.reason,
        affected_organisation_ids=affected,
        status=m.ChangeRequestStatus.PENDING.value,
        requested_by_user_id=actor.user_id,
        requested_by=actor.name,
        requested_by_role=actor.role.value,
        requested_by_organisation_id=actor.organisation_id,
        requested_at=clock.now(),
    )
    session.add(request)
    await session.flush()
    await record_audit(
        session,
        actor=actor,
        action="supplier.change_request",
        entity_type="supplier_change_request",
        entity_id=request.id,
        organisation_id=actor.organisation_id,
        changes={"kind": (None, c.kind), "payload": (None, c.payload), "affected": (None, affected)},
        reason=c.reason,
    )
    return request


def _author(request: m.SupplierChangeRequest) -> Principal:
    return Principal(
        user_id=request.requested_by_user_id or 0,
        name=request.requested_by,
        role=m.Role(request.requested_by_role),
        organisation_id=request.requested_by_organisation_id,
    )


async def _pending(session: AsyncSession, request_id: int, reviewer: Principal) -> m.SupplierChangeRequest:
    request = await get_or_not_found(session, m.SupplierChangeRequest, request_id, "change request")
    if reviewer.role not in (m.Role.REVIEWER, m.Role.CROSS_REVIEWER, m.Role.ADMIN):
        raise Forbidden("Only reviewers and admins approve or reject change requests.")
    if request.status != m.ChangeRequestStatus.PENDING.value:
        raise ConflictError(f"Change request {request_id} is already {request.status}.")
    return request


async def approve(session: AsyncSession, request_id: int, reviewer: Principal, reason: str) -> m.SupplierChangeRequest:
    """Apply a pending request as its author sent it; the reviewer must cover every organisation it affects now."""
    request = await _pending(session, request_id, reviewer)
    if request.requested_by_user_id == reviewer.user_id:
        raise Forbidden("A change request is approved by someone other than its author.")
    correction = Correction(request.kind, dict(request.payload), request.reason)
    affected = set(request.affected_organisation_ids) | set(
        await affected_organisations(session, await suppliers_touched(session, correction))
    )
    ensure_can_review_for(reviewer, affected)
    applied = await apply_correction(session, correction, _author(request))
    result = {"id": applied.id, "entity": type(applied).__tablename__}
    await session.refresh(request)  # split and undo expire everything in the session
    request.status = m.ChangeRequestStatus.APPROVED.value
    request.decided_by, request.decided_at, request.decision_reason = reviewer.name, clock.now(), reason.strip()
    request.result = result
    await _audit_decision(session, request, reviewer)
    return request


async def reject(session: AsyncSession, request_id: int, reviewer: Principal, reason: str) -> m.SupplierChangeRequest:
    request = await _pending(session, request_id, reviewer)
    ensure_can_review_for(reviewer, request.affected_organisation_ids)
    request.status = m.ChangeRequestStatus.REJECTED.value
    request.decided_by, request.decided_at, request.decision_reason = reviewer.name, clock.now(), reason.strip()
    await _audit_decision(session, request, reviewer)
    return request


async def _audit_decision(session: AsyncSession, request: m.SupplierChangeRequest, reviewer: Principal) -> None:
    await record_audit(
        session,
        actor=reviewer,
        action=f"supplier.change_request_{request.status}",
        entity_type="supplier_change_request",
        entity_id=request.id,
        changes={"status": (m.ChangeRequestStatus.PENDING.value, request.status), "result": (None, request.result)},
        reason=request.decision_reason,
    )
    await session.flush()


async def list_requests(
    session: AsyncSession, *, status: str | None, supplier_id: int | None, limit: int, offset: int
) -> tuple[Sequence[m.SupplierChangeRequest], int]:
    r = m.SupplierChangeRequest
    conditions = [r.status == status] if status else []
    if supplier_id is not None:
        conditions.append(r.supplier_id == supplier_id)
    total = await session.scalar(select(func.count()).select_from(r).where(*conditions)) or 0
    rows = await session.scalars(select(r).where(*conditions).order_by(r.id.desc()).limit(limit).offset(offset))
    return rows.all(), total
