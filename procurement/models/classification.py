"""Supplier classification: the current answer per supplier with its evidence, overrides, attestations, merges.

The automatic answer is recomputed whenever inputs or rules change; overrides and attestations are the
human part and survive every re-import and reclassification.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from advanced_alchemy.base import BigIntBase
from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column


class SupplierClassification(BigIntBase):
    __tablename__ = "supplier_classification"

    supplier_id: Mapped[int] = mapped_column(ForeignKey("supplier.id", ondelete="CASCADE"), unique=True)
    # Where the supplier is (the tier is judged per anchor from this and the anchor's own area).
    postcode_used: Mapped[str | None] = mapped_column(String(10))
    postcode_basis: Mapped[str | None] = mapped_column(String(16))  # registered | delivery | manual_lad
    place_method: Mapped[str] = mapped_column(String(32))
    place_confidence: Mapped[float | None] = mapped_column(Float)
    lad_code: Mapped[str | None] = mapped_column(String(16), index=True)
    region_code: Mapped[str | None] = mapped_column(String(16))
    country_code: Mapped[str | None] = mapped_column(String(16))
    country_hint: Mapped[str | None] = mapped_column(String(100))
    # What the supplier is.
    category: Mapped[str] = mapped_column(String(32), index=True)
    sme: Mapped[bool | None] = mapped_column(Boolean)
    vcse: Mapped[bool | None] = mapped_column(Boolean)
    social_enterprise: Mapped[bool | None] = mapped_column(Boolean)
    # One "why" record per flag: method, source, evidence, confidence, rule id and version, and overrides.
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(JsonB, default=list)
    rule_versions: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    input_hash: Mapped[str] = mapped_column(String(64))
    classified_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))


class ClassificationOverride(BigIntBase):
    """A person's correction of one flag, with a mandatory reason. Revoked, never deleted."""

    __tablename__ = "classification_override"

    supplier_id: Mapped[int] = mapped_column(ForeignKey("supplier.id", ondelete="CASCADE"), index=True)
    flag: Mapped[str] = mapped_column(
        String(32)
    )  # category | sme | vcse | social_enterprise | lad_code | delivery_postcode
    value: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(2000))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    revoked_by: Mapped[str | None] = mapped_column(String(200))
    revoke_reason: Mapped[str | None] = mapped_column(String(2000))


class SupplierAttestation(BigIntBase):
    """A reviewer's attestation from outside evidence (Social Enterprise Mark, Buy Social, a register entry)."""

    __tablename__ = "supplier_attestation"

    supplier_id: Mapped[int] = mapped_column(ForeignKey("supplier.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str] = mapped_column(String(500))
    attested_by: Mapped[str] = mapped_column(String(200))
    attested_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    revoked_by: Mapped[str | None] = mapped_column(String(200))


class SupplierMerge(BigIntBase):
    """One merge (duplicate into target) or split (feed parties moved to a new supplier), undoable."""

    __tablename__ = "supplier_merge"

    kind: Mapped[str] = mapped_column(String(8))  # merge | split
    source_supplier_id: Mapped[int] = mapped_column(ForeignKey("supplier.id"), index=True)
    target_supplier_id: Mapped[int] = mapped_column(ForeignKey("supplier.id"), index=True)
    moved: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)  # what moved, so undo can move it back
    reason: Mapped[str] = mapped_column(String(2000))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    undone_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    undone_by: Mapped[str | None] = mapped_column(String(200))


class ChangeRequestStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class SupplierChangeRequest(BigIntBase):
    """A correction of shared supplier data that touches organisations its author may not act for.

    It waits for a reviewer who may act for every affected organisation; approving it replays the request as
    its author sent it, so the change and its reason are the author's and the approval is the reviewer's.
    """

    __tablename__ = "supplier_change_request"

    kind: Mapped[str] = mapped_column(String(16))  # update | override | override_revoke | attest | ... | undo
    supplier_id: Mapped[int] = mapped_column(ForeignKey("supplier.id"), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    reason: Mapped[str] = mapped_column(String(2000))
    affected_organisation_ids: Mapped[list[int]] = mapped_column(JsonB, default=list)
    status: Mapped[str] = mapped_column(String(16), default=ChangeRequestStatus.PENDING.value, index=True)
    requested_by_user_id: Mapped[int | None] = mapped_column(BigInteger)
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_by_role: Mapped[str] = mapped_column(String(16))
    requested_by_organisation_id: Mapped[int | None] = mapped_column(BigInteger)
    requested_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    decision_reason: Mapped[str | None] = mapped_column(String(2000))
    result: Mapped[dict[str, Any] | None] = mapped_column(JsonB)
