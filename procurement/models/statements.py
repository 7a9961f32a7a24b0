"""Published quarterly statements: frozen figures and PDF bytes with their hashes. Never edited.

A correction is a new version that supersedes the old one (which stays downloadable); a withdrawal keeps
the record and says why. The snapshot is stored as its exact canonical JSON text so its hash can be
recomputed byte for byte (a JSON column would reorder keys).
"""

from __future__ import annotations

import datetime as dt
import enum

from advanced_alchemy.base import BigIntBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column


class StatementStatus(enum.StrEnum):
    PUBLISHED = "published"
    SUPERSEDED = "superseded"
    WITHDRAWN = "withdrawn"


class Statement(BigIntBase):
    __tablename__ = "statement"
    __table_args__ = (UniqueConstraint("scope_key", "period", "version"),)

    scope_key: Mapped[str] = mapped_column(String(80), index=True)  # "org:12" | "group:bsol"
    scope_kind: Mapped[str] = mapped_column(String(8))  # anchor | group
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"), index=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("anchor_group.id"), index=True)
    scope_name: Mapped[str] = mapped_column(String(300))
    period: Mapped[str] = mapped_column(String(8), index=True)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), index=True)  # a StatementStatus
    snapshot_json: Mapped[str] = mapped_column(Text)
    snapshot_sha256: Mapped[str] = mapped_column(String(64))
    figures_sha256: Mapped[str] = mapped_column(String(64))
    pdf: Mapped[bytes] = mapped_column(LargeBinary)
    pdf_sha256: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    published_by: Mapped[str] = mapped_column(String(200))
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("statement.id"))
    correction_reason: Mapped[str | None] = mapped_column(String(2000))
    superseded_by_id: Mapped[int | None] = mapped_column(ForeignKey("statement.id"))
    superseded_reason: Mapped[str | None] = mapped_column(String(2000))
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    withdrawn_by: Mapped[str | None] = mapped_column(String(200))
    withdrawn_reason: Mapped[str | None] = mapped_column(String(2000))
