"""Supplier classification: the current answer per supplier with its evidence, overrides, attestations, merges.

The automatic answer is recomputed whenever inputs or rules change; overrides and attestations are the
human part and survive every re-import and reclassification.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Iterable
from typing import Any

from advanced_alchemy.base import BigIntBase
from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, String, UniqueConstraint, event
from sqlalchemy import insert as sa_insert
from sqlalchemy import update as sa_update
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, mapped_column


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


class AnchorSupplierTier(BigIntBase):
    """A supplier's tier against one anchor's local area, with its category flags, kept for the pairs that have
    lines (``procurement.suppliers.tiers.refresh_tiers`` keeps it in step with every input, in the same
    transaction; imports drop what changed and ``store_missing_tiers`` stores the missing pairs when a run ends),
    so reading figures never writes it and recomputes only pairs without a row."""

    __tablename__ = "anchor_supplier_tier"
    __table_args__ = (
        UniqueConstraint("anchor_id", "supplier_id"),
        Index("ix_anchor_supplier_tier_supplier_id", "supplier_id"),
    )

    anchor_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="CASCADE"))
    supplier_id: Mapped[int] = mapped_column(ForeignKey("supplier.id", ondelete="CASCADE"))  # as the line names it
    effective_supplier_id: Mapped[int] = mapped_column(BigInteger)  # the merge target, or the supplier itself
    tier: Mapped[str | None] = mapped_column(String(16))
    tier_confidence: Mapped[float | None] = mapped_column(Float)
    tier_method: Mapped[str | None] = mapped_column(String(32))
    tier_reason: Mapped[str | None] = mapped_column(String(2000))
    category: Mapped[str | None] = mapped_column(String(32))
    sme: Mapped[bool | None] = mapped_column(Boolean)
    vcse: Mapped[bool | None] = mapped_column(Boolean)
    social_enterprise: Mapped[bool | None] = mapped_column(Boolean)


class DataVersion(BigIntBase):
    """One row: a counter bumped by every committed write that can change a figure (cached answers and ETags are
    keyed by it), and the rules the stored tiers were computed with (a new geography or rule version means the
    stored tiers are not used until rebuilt)."""

    __tablename__ = "data_version"

    version: Mapped[int] = mapped_column(BigInteger, default=0)
    # New whenever the row is made again (an emptied database), so no cached answer outlives its data.
    epoch: Mapped[str] = mapped_column(String(32))
    tiers_rules: Mapped[str | None] = mapped_column(String(64))
    # New whenever a contract line changes (set by database triggers, so every writer is seen: migration
    # 0010_lines_token); keys the columnar copy of the lines on disk (``procurement.metrics.linecache``).
    lines_token: Mapped[str | None] = mapped_column(String(32), default=lambda: uuid.uuid4().hex)
    # Likewise new whenever a stored tier or a supplier's name changes (migration 0011_tiers_token); keys the
    # columnar copy of the stored tiers on disk.
    tiers_token: Mapped[str | None] = mapped_column(String(32), default=lambda: uuid.uuid4().hex)
    # Likewise new whenever a payment line, a spend file or a payee match changes (migration 0012_payments_token);
    # keys the columnar copy of the lean payment lines on disk.
    payments_token: Mapped[str | None] = mapped_column(String(32), default=lambda: uuid.uuid4().hex)


# Tables whose rows never move a figure of /metrics; a write to any other table bumps the data version at commit,
# so no cached answer survives a change even where a writer forgot to say so.
_NOT_FIGURES = frozenset(
    {
        "app_user",
        "user_scope",
        "api_token",
        "session",
        "audit_event",
        "statement",
        "import_run",
        "import_note",
        "raw_release",
        "feed_watermark",
        "data_version",
        "supplier_change_request",
        "measure",
        "commitment",
        "commitment_target",
        "delivery_return",
        "evidence_file",
        "lm3_response",
        "spend_mapping",
    }
)
FIGURES_DIRTY = "figures_dirty"


def _touches_figures(tables: Iterable[str]) -> bool:
    return any(t not in _NOT_FIGURES for t in tables)


@event.listens_for(Session, "after_flush")
def _flushed(session: Session, _context: Any) -> None:
    changed = (*session.new, *session.dirty, *session.deleted)
    if _touches_figures(getattr(getattr(o, "__table__", None), "name", "") for o in changed):
        session.info[FIGURES_DIRTY] = True


@event.listens_for(Session, "do_orm_execute")
def _executed(state: ORMExecuteState) -> None:
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    if table is None or _touches_figures([getattr(table, "name", "")]):
        state.session.info[FIGURES_DIRTY] = True


@event.listens_for(Session, "before_commit")
def _bump_on_commit(session: Session) -> None:
    if not session.info.pop(FIGURES_DIRTY, False):
        return
    result = session.execute(sa_update(DataVersion).where(DataVersion.id == 1).values(version=DataVersion.version + 1))
    if not getattr(result, "rowcount", 1):
        session.execute(sa_insert(DataVersion).values(id=1, version=1, epoch=uuid.uuid4().hex, tiers_rules=None))
