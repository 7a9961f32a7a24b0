"""The domain model: organisations, suppliers, contracts and their supplier shares, users, tokens, audit.

Money is integer pence with its ISO 4217 currency beside it. Award and contract dates are calendar dates
in UK local time (a contract "starts on 1 April"); instants (created, audited, revoked) are UTC-aware.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from advanced_alchemy.base import BigIntAuditBase, BigIntBase
from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Index, String, Text, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column, relationship


class OrganisationKind(enum.StrEnum):
    NHS_TRUST = "nhs_trust"
    ICB = "icb"
    LOCAL_AUTHORITY = "local_authority"
    COMBINED_AUTHORITY = "combined_authority"
    OTHER = "other"


class ContractSource(enum.StrEnum):
    MANUAL = "manual"
    CONTRACTS_FINDER = "contracts_finder"
    FIND_A_TENDER = "find_a_tender"


class ContractStatus(enum.StrEnum):
    ACTIVE = "active"
    PENDING = "pending"
    WITHDRAWN = "withdrawn"


class Role(enum.StrEnum):
    ADMIN = "admin"
    EDITOR = "editor"
    REVIEWER = "reviewer"  # reviews the organisations and anchor groups in its scope
    CROSS_REVIEWER = "cross_reviewer"  # ICB- or WMCA-wide: reviews every organisation


class Organisation(BigIntAuditBase):
    """A buyer; anchors are the organisations whose local spend is reported."""

    __tablename__ = "organisation"

    name: Mapped[str] = mapped_column(String(300), index=True)
    kind: Mapped[str] = mapped_column(String(32), default=OrganisationKind.OTHER.value)
    ods_code: Mapped[str | None] = mapped_column(String(16), unique=True)
    gss_code: Mapped[str | None] = mapped_column(String(16), unique=True)
    icb_ods_code: Mapped[str | None] = mapped_column(String(16))
    address: Mapped[str | None] = mapped_column(String(500))
    postcode: Mapped[str | None] = mapped_column(String(10))
    lad_code: Mapped[str | None] = mapped_column(String(16))
    is_anchor: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    name_key: Mapped[str] = mapped_column(String(300), index=True, default="")
    # The anchor's own definition of "local": a preset (own_lad, icb, wmca_7, wm_region) or custom LADs.
    local_preset: Mapped[str | None] = mapped_column(String(16))
    local_lad_codes: Mapped[list[str] | None] = mapped_column(JsonB)

    identifiers: Mapped[list[OrganisationIdentifier]] = relationship(
        back_populates="organisation", cascade="all, delete-orphan", lazy="selectin"
    )


class OrganisationIdentifier(BigIntBase):
    """Identifiers that name an organisation in feeds (GB-PPON, GB-CFS buyer ids, GB-NHS ...)."""

    __tablename__ = "organisation_identifier"
    __table_args__ = (UniqueConstraint("scheme", "value"),)

    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="CASCADE"), index=True)
    scheme: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(String(128))

    organisation: Mapped[Organisation] = relationship(back_populates="identifiers")


class Supplier(BigIntAuditBase):
    __tablename__ = "supplier"

    name: Mapped[str] = mapped_column(String(500))
    name_key: Mapped[str] = mapped_column(String(500), index=True, default="")
    street_address: Mapped[str | None] = mapped_column(String(1000))
    locality: Mapped[str | None] = mapped_column(String(200))
    postcode: Mapped[str | None] = mapped_column(String(10), index=True)
    postcode_source: Mapped[str | None] = mapped_column(String(32))
    country: Mapped[str | None] = mapped_column(String(100))
    declared_scale: Mapped[str | None] = mapped_column(String(16))
    declared_vcse: Mapped[bool | None] = mapped_column(Boolean)
    declared_source: Mapped[str | None] = mapped_column(String(500))
    # A duplicate merged into another supplier points at it; contracts keep their original links.
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("supplier.id"), index=True)

    identifiers: Mapped[list[SupplierIdentifier]] = relationship(
        back_populates="supplier", cascade="all, delete-orphan", lazy="selectin"
    )


class SupplierIdentifier(BigIntBase):
    """A register identifier (scheme + id, e.g. GB-COH 04482788). One identifier names one supplier."""

    __tablename__ = "supplier_identifier"
    __table_args__ = (UniqueConstraint("scheme", "value"),)

    supplier_id: Mapped[int] = mapped_column(ForeignKey("supplier.id", ondelete="CASCADE"), index=True)
    scheme: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(String(128))

    supplier: Mapped[Supplier] = relationship(back_populates="identifiers")


class Contract(BigIntAuditBase):
    """One awarded contract: a manual record, or one award of an OCDS procurement (ocid + award id)."""

    __tablename__ = "contract"
    __table_args__ = (
        UniqueConstraint("source", "source_id", "award_id"),
        Index("ix_contract_buyer_award_date", "buyer_id", "award_date"),
    )

    source: Mapped[str] = mapped_column(String(32), default=ContractSource.MANUAL.value)
    source_id: Mapped[str | None] = mapped_column(String(200))
    award_id: Mapped[str | None] = mapped_column(String(250))
    # Indexed by ix_contract_buyer_award_date, whose first column it is.
    buyer_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text)
    value_pence: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="GBP")
    award_date: Mapped[dt.date | None] = mapped_column(Date)
    start_date: Mapped[dt.date | None] = mapped_column(Date)
    end_date: Mapped[dt.date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default=ContractStatus.ACTIVE.value, index=True)
    withdrawn_reason: Mapped[str | None] = mapped_column(String(1000))
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))

    buyer: Mapped[Organisation] = relationship(lazy="joined")
    cpv: Mapped[list[ContractCpv]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="ContractCpv.position"
    )
    suppliers: Mapped[list[ContractSupplier]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="ContractSupplier.position"
    )


class ContractCpv(BigIntBase):
    # A child table rather than a JSON list so "CPV starts with 851" filters portably on both databases.
    __tablename__ = "contract_cpv"
    # The unique constraint's index serves lookups by contract_id too (its first column).
    __table_args__ = (UniqueConstraint("contract_id", "code"),)

    contract_id: Mapped[int] = mapped_column(ForeignKey("contract.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(8), index=True)
    position: Mapped[int] = mapped_column(default=0)


class ContractSupplier(BigIntBase):
    """A supplier's share of a contract's value. Feeds give value per award, so a split is an assumption
    and says so in share_basis."""

    __tablename__ = "contract_supplier"
    # The unique constraint's index serves lookups by contract_id too (its first column).
    __table_args__ = (UniqueConstraint("contract_id", "supplier_id"),)

    contract_id: Mapped[int] = mapped_column(ForeignKey("contract.id", ondelete="CASCADE"))
    supplier_id: Mapped[int] = mapped_column(ForeignKey("supplier.id"), index=True)
    share_pence: Mapped[int | None] = mapped_column(BigInteger)
    share_basis: Mapped[str] = mapped_column(String(16), default="stated")
    position: Mapped[int] = mapped_column(default=0)

    supplier: Mapped[Supplier] = relationship(lazy="joined")


class User(BigIntAuditBase):
    __tablename__ = "app_user"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"), index=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # People sign in with email and password; machine users (API tokens only) have neither.
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    password_set_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    # A one-time set-password link (SHA-256 of it) and when it stops working.
    invite_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    invite_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    last_sign_in_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user", cascade="all, delete-orphan")
    scopes: Mapped[list[UserScope]] = relationship(cascade="all, delete-orphan", lazy="selectin")


class UserScope(BigIntBase):
    """One organisation or anchor group a reviewer reviews; a group covers its members as they change."""

    __tablename__ = "user_scope"

    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id", ondelete="CASCADE"))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("anchor_group.id", ondelete="CASCADE"))


class ApiToken(BigIntAuditBase):
    """Only a SHA-256 of the token is stored; the token itself is shown once at creation."""

    __tablename__ = "api_token"

    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_prefix: Mapped[str] = mapped_column(String(16))
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))

    user: Mapped[User] = relationship(back_populates="tokens", lazy="joined")


class WebSession(BigIntBase):
    """A signed-in browser. The cookie holds 32 random bytes; only their SHA-256 is stored, so a copy of the
    database cannot be replayed as a cookie. Ends at ``expires_at`` or after an idle spell (a setting)."""

    __tablename__ = "session"

    id_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    last_seen_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))


class AuditEvent(BigIntBase):
    """Append-only: who changed what, when, and why. Rows are never updated or deleted."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_entity", "entity_type", "entity_id"),)

    at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)
    actor_user_id: Mapped[int | None] = mapped_column(BigInteger)
    actor_name: Mapped[str] = mapped_column(String(200))
    actor_role: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))
    entity_type: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str] = mapped_column(String(64))
    organisation_id: Mapped[int | None] = mapped_column(BigInteger)
    changes: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    reason: Mapped[str | None] = mapped_column(String(2000))


class AuditIsAppendOnlyError(RuntimeError):
    pass


@event.listens_for(AuditEvent, "before_update")
def _refuse_audit_update(*_args: object) -> None:
    raise AuditIsAppendOnlyError("audit events are append-only")


@event.listens_for(AuditEvent, "before_delete")
def _refuse_audit_delete(*_args: object) -> None:
    raise AuditIsAppendOnlyError("audit events are append-only")
