"""Payments ("spend") files: one import per file, its payment lines, remembered payee matches, saved mappings.

A file is identified per anchor by the SHA-256 of its bytes: the same bytes again change nothing. A file with
different bytes covering a month an active file already covers replaces that file (its lines are deleted, the
file row stays, marked replaced, with an audit event). Money is integer pence; payment dates are calendar dates.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from advanced_alchemy.base import BigIntBase
from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import BigInteger, Boolean, Date, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column


class SpendFile(BigIntBase):
    __tablename__ = "spend_file"
    __table_args__ = (Index("ix_spend_file_anchor_sha256", "anchor_id", "sha256"),)

    anchor_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("import_run.id", ondelete="SET NULL"), index=True)
    source_name: Mapped[str] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), index=True)  # active | replaced
    replaced_by_id: Mapped[int | None] = mapped_column(ForeignKey("spend_file.id"))
    months: Mapped[list[str]] = mapped_column(JsonB, default=list)  # "2020-04", ... covered by its lines
    layout: Mapped[str] = mapped_column(String(32))
    header_row: Mapped[int] = mapped_column(Integer)
    mapping_name: Mapped[str | None] = mapped_column(String(100))
    amount_basis: Mapped[str] = mapped_column(String(16))  # net | gross | unstated
    amount_basis_reason: Mapped[str] = mapped_column(String(300))
    currency: Mapped[str] = mapped_column(String(3))
    line_count: Mapped[int] = mapped_column(Integer)
    transaction_count: Mapped[int] = mapped_column(Integer)
    total_pence: Mapped[int] = mapped_column(BigInteger)
    redacted_lines: Mapped[int] = mapped_column(Integer)
    redacted_pence: Mapped[int] = mapped_column(BigInteger)
    payees_matched: Mapped[int] = mapped_column(Integer, default=0)
    payees_review: Mapped[int] = mapped_column(Integer, default=0)
    payees_new: Mapped[int] = mapped_column(Integer, default=0)
    notes: Mapped[int] = mapped_column(Integer, default=0)
    facts: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)  # columns mapped/unmapped, encoding ...
    imported_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    imported_by: Mapped[str] = mapped_column(String(200))


class PaymentLine(BigIntBase):
    """One published payment line. Split lines of one transaction number stay separate lines."""

    __tablename__ = "payment_line"
    __table_args__ = (Index("ix_payment_line_anchor_month", "anchor_id", "month"),)

    file_id: Mapped[int] = mapped_column(ForeignKey("spend_file.id", ondelete="CASCADE"), index=True)
    anchor_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    row_number: Mapped[int] = mapped_column(Integer)
    payment_date: Mapped[dt.date | None] = mapped_column(Date)
    month: Mapped[str | None] = mapped_column(String(7))  # "2020-04"
    amount_pence: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    supplier_id: Mapped[int | None] = mapped_column(ForeignKey("supplier.id"), index=True)
    payee_name: Mapped[str | None] = mapped_column(String(500))
    payee_key: Mapped[str | None] = mapped_column(String(500))
    redacted: Mapped[bool] = mapped_column(Boolean)
    redaction_kind: Mapped[str | None] = mapped_column(String(16))
    transaction_number: Mapped[str | None] = mapped_column(String(100))
    expense_type: Mapped[str | None] = mapped_column(String(300))
    expense_area: Mapped[str | None] = mapped_column(String(300))
    influenceable: Mapped[bool] = mapped_column(Boolean)
    not_influenceable_rule: Mapped[str | None] = mapped_column(String(64))


class PayeeMatch(BigIntBase):
    """How a payee name of one publisher (anchor) became a supplier, remembered for its next files.

    status: matched (automatic: identifier or exact name), review (waiting for a person), confirmed (a
    person chose the supplier), new (a new supplier was made), rejected (a person said it is none of the
    candidates and not to be made a supplier; its lines stay without a supplier, counted as unknown).
    """

    __tablename__ = "payee_match"
    __table_args__ = (UniqueConstraint("anchor_id", "payee_key"),)

    anchor_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    payee_key: Mapped[str] = mapped_column(String(500))
    payee_name: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16), index=True)
    supplier_id: Mapped[int | None] = mapped_column(ForeignKey("supplier.id"), index=True)
    method: Mapped[str] = mapped_column(String(100))
    score: Mapped[float] = mapped_column(Float, default=0.0)
    candidates: Mapped[list[dict[str, Any]]] = mapped_column(JsonB, default=list)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    reason: Mapped[str | None] = mapped_column(String(2000))


class SpendMapping(BigIntBase):
    """A publisher's saved column mapping (header as published -> field, or "ignore")."""

    __tablename__ = "spend_mapping"

    name: Mapped[str] = mapped_column(String(100), unique=True)
    mapping: Mapped[dict[str, str]] = mapped_column(JsonB, default=dict)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    updated_by: Mapped[str] = mapped_column(String(200))
