"""Supplier registers: which register versions are loaded, each supplier's match, and reviewers' decisions.

The registers themselves live in the parquet store (importers.registers); the database records what
classification used, so a new version is noticed, and the human part (confirm / reject) that survives
re-loads and re-imports.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from advanced_alchemy.base import BigIntBase
from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import BigInteger, Float, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column


class RegisterLoad(BigIntBase):
    """The version of each register that was last loaded (one row per register kind)."""

    __tablename__ = "register_load"

    kind: Mapped[str] = mapped_column(String(32), unique=True)
    version: Mapped[str] = mapped_column(String(32))
    rows: Mapped[int] = mapped_column(BigInteger)
    skipped: Mapped[int] = mapped_column(BigInteger, default=0)
    sources: Mapped[list[dict[str, Any]]] = mapped_column(JsonB, default=list)
    loaded_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))


class SupplierRegisterMatch(BigIntBase):
    """The latest automatic (or reviewer-confirmed) match of one supplier; recomputed when its inputs change."""

    __tablename__ = "supplier_register_match"

    supplier_id: Mapped[int] = mapped_column(ForeignKey("supplier.id", ondelete="CASCADE"), unique=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # matched | review | none | confirmed
    method: Mapped[str | None] = mapped_column(String(32))  # identifier | name+postcode | name | reviewer
    score: Mapped[float | None] = mapped_column(Float)
    register: Mapped[str | None] = mapped_column(String(32))
    number: Mapped[str | None] = mapped_column(String(32))
    version: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(500))
    # The chosen entry then its linked entries (the fields the evidence rules read), and the ranked candidates.
    entries: Mapped[list[dict[str, Any]]] = mapped_column(JsonB, default=list)
    candidates: Mapped[list[dict[str, Any]]] = mapped_column(JsonB, default=list)
    input_key: Mapped[str] = mapped_column(String(64))
    matched_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))


class RegisterMatchDecision(BigIntBase):
    """A reviewer's confirm or reject of one register entry for one supplier. Superseded, never deleted."""

    __tablename__ = "register_match_decision"

    supplier_id: Mapped[int] = mapped_column(ForeignKey("supplier.id", ondelete="CASCADE"), index=True)
    decision: Mapped[str] = mapped_column(String(16))  # confirmed | rejected
    register: Mapped[str] = mapped_column(String(32))
    number: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(2000))
    decided_by: Mapped[str] = mapped_column(String(200))
    decided_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    superseded_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
