"""Social-value commitments tracked to delivery, the measure catalogue, anchor groups and LM3 surveys.

Quantities are Decimal (Numeric): a commitment may be 2.5 FTE jobs or 1200 hours. Cash measures are in
pence and kept apart from monetised proxies, which are optional and carry their own source and price base.
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal

from advanced_alchemy.base import BigIntAuditBase, BigIntBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import BigInteger, Boolean, ForeignKey, LargeBinary, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

QUANTITY = Numeric(18, 4)


class ReturnStatus(enum.StrEnum):
    SUBMITTED = "submitted"
    VERIFIED = "verified"
    REJECTED = "rejected"


class Measure(BigIntAuditBase):
    __tablename__ = "measure"
    __table_args__ = (UniqueConstraint("framework", "code"),)

    framework: Mapped[str] = mapped_column(String(32))  # ppn-06-20 | ppn-002 | local
    code: Mapped[str] = mapped_column(String(64))
    theme: Mapped[str | None] = mapped_column(String(300))
    outcome: Mapped[str | None] = mapped_column(String(500))
    name: Mapped[str] = mapped_column(String(500))
    unit: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # cash | output
    source: Mapped[str] = mapped_column(String(1000))
    verification_status: Mapped[str | None] = mapped_column(String(32))
    owner_organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"), index=True)
    proxy_value_pence: Mapped[int | None] = mapped_column(BigInteger)
    proxy_source: Mapped[str | None] = mapped_column(String(1000))
    proxy_year: Mapped[int | None] = mapped_column()
    proxy_price_base: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Commitment(BigIntAuditBase):
    __tablename__ = "commitment"

    contract_id: Mapped[int] = mapped_column(ForeignKey("contract.id", ondelete="CASCADE"), index=True)
    supplier_id: Mapped[int | None] = mapped_column(ForeignKey("supplier.id"), index=True)
    measure_id: Mapped[int] = mapped_column(ForeignKey("measure.id"), index=True)
    unit: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(200))

    targets: Mapped[list[CommitmentTarget]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="CommitmentTarget.period"
    )
    returns: Mapped[list[DeliveryReturn]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="DeliveryReturn.id"
    )


class CommitmentTarget(BigIntBase):
    __tablename__ = "commitment_target"
    __table_args__ = (UniqueConstraint("commitment_id", "period"),)

    commitment_id: Mapped[int] = mapped_column(ForeignKey("commitment.id", ondelete="CASCADE"), index=True)
    period: Mapped[str] = mapped_column(String(8))  # "2025Q1" = Apr-Jun 2025
    quantity: Mapped[Decimal] = mapped_column(QUANTITY)


class DeliveryReturn(BigIntBase):
    """A supplier's quarterly return against a commitment; a reviewer verifies or rejects it with a reason."""

    __tablename__ = "delivery_return"

    commitment_id: Mapped[int] = mapped_column(ForeignKey("commitment.id", ondelete="CASCADE"), index=True)
    period: Mapped[str] = mapped_column(String(8))
    quantity: Mapped[Decimal] = mapped_column(QUANTITY)
    evidence_note: Mapped[str | None] = mapped_column(Text)
    evidence_url: Mapped[str | None] = mapped_column(String(1000))
    status: Mapped[str] = mapped_column(String(16), default="submitted")  # a ReturnStatus
    entered_by: Mapped[str] = mapped_column(String(200))
    entered_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    reviewed_by: Mapped[str | None] = mapped_column(String(200))
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    review_reason: Mapped[str | None] = mapped_column(String(2000))


class EvidenceFile(BigIntBase):
    """A file sent as evidence for a return, kept with its sha256. Only an allow-listed type is accepted, and it is
    only ever served as a download (``Content-Disposition: attachment``, ``nosniff``), never shown inline."""

    __tablename__ = "evidence_file"

    return_id: Mapped[int] = mapped_column(ForeignKey("delivery_return.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_by: Mapped[str] = mapped_column(String(200))
    uploaded_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))


class AnchorGroup(BigIntAuditBase):
    """Anchors reported together, e.g. "Birmingham and Solihull" (the ICB, its trusts and both councils)."""

    __tablename__ = "anchor_group"

    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(300))

    members: Mapped[list[AnchorGroupMember]] = relationship(cascade="all, delete-orphan", lazy="selectin")


class AnchorGroupMember(BigIntBase):
    __tablename__ = "anchor_group_member"
    __table_args__ = (UniqueConstraint("group_id", "organisation_id"),)

    group_id: Mapped[int] = mapped_column(ForeignKey("anchor_group.id", ondelete="CASCADE"), index=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)


class Lm3Response(BigIntBase):
    """One supplier's LM3 survey answers for an anchor and financial year (rounds 2 and 3 re-spend)."""

    __tablename__ = "lm3_response"
    __table_args__ = (UniqueConstraint("anchor_id", "financial_year", "supplier_id"),)

    anchor_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    financial_year: Mapped[str] = mapped_column(String(8))  # "2025/26"
    supplier_id: Mapped[int] = mapped_column(ForeignKey("supplier.id"), index=True)
    round1_pence: Mapped[int] = mapped_column(BigInteger)
    local_suppliers_pence: Mapped[int] = mapped_column(BigInteger)
    local_wages_pence: Mapped[int] = mapped_column(BigInteger)
    local_respend_pence: Mapped[int] = mapped_column(BigInteger)
    entered_by: Mapped[str] = mapped_column(String(200))
    entered_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
