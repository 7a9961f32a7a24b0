"""Feed imports: every release as received, the runs that fetched them, their notes, and a watermark per source.

Raw releases are content-addressed per (source, release id): the same bytes twice are one row; changed
content for the same release id is a new version. Contracts are always derived from these rows.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from advanced_alchemy.base import BigIntBase
from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column


class RunStatus(enum.StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class ImportRun(BigIntBase):
    __tablename__ = "import_run"

    source: Mapped[str] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # "feed" | "file"
    parameters: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    status: Mapped[str] = mapped_column(String(16), index=True)  # a RunStatus
    started_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    # Where a resumed run starts: the window and cursor URL after the last stored page.
    checkpoint: Mapped[dict[str, Any] | None] = mapped_column(JsonB)
    fetched: Mapped[int] = mapped_column(Integer, default=0)
    new: Mapped[int] = mapped_column(Integer, default=0)
    changed: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    pages: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    resumed_from_id: Mapped[int | None] = mapped_column(ForeignKey("import_run.id"))


class ImportNote(BigIntBase):
    """A problem a user should see: which release, where in it, what value, what happened."""

    __tablename__ = "import_note"

    run_id: Mapped[int] = mapped_column(ForeignKey("import_run.id", ondelete="CASCADE"), index=True)
    level: Mapped[str] = mapped_column(String(8))  # info | warning | error
    ocid: Mapped[str | None] = mapped_column(String(200), index=True)
    release_id: Mapped[str | None] = mapped_column(String(250))
    path: Mapped[str | None] = mapped_column(String(500))
    value: Mapped[str | None] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))


class RawRelease(BigIntBase):
    __tablename__ = "raw_release"
    __table_args__ = (
        # Named by hand: the convention names a unique by its first column only, and both start with source.
        UniqueConstraint("source", "release_id", "version", name="uq_raw_release_version"),
        UniqueConstraint("source", "release_id", "content_hash", name="uq_raw_release_content_hash"),
        Index("ix_raw_release_source_ocid", "source", "ocid"),
    )

    source: Mapped[str] = mapped_column(String(32))
    ocid: Mapped[str] = mapped_column(String(200))
    release_id: Mapped[str] = mapped_column(String(250))
    version: Mapped[int] = mapped_column(Integer, default=1)
    release_date: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    content_hash: Mapped[str] = mapped_column(String(64))
    # The canonical JSON text that ``content_hash`` was taken of, byte for byte: an archive, never queried inside.
    # Text, not jsonb: PostgreSQL would parse every release on the way in (the largest cost of an import there)
    # and store a re-ordered copy whose hash no longer matches.
    data: Mapped[str] = mapped_column(Text)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("import_run.id", ondelete="SET NULL"), index=True)
    received_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))


class FeedWatermark(BigIntBase):
    """The end of the last completed window per source: `localvalue import sync` continues from here."""

    __tablename__ = "feed_watermark"

    source: Mapped[str] = mapped_column(String(32), unique=True)
    watermark: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))


class SupplierMatch(BigIntBase):
    """How a feed party became a master supplier: by register identifier, by normalised name, or as new.

    GB-CFS party ids are per notice, so the key is (source, ocid, party id), never the party id alone.
    """

    __tablename__ = "supplier_match"
    __table_args__ = (
        UniqueConstraint("source", "ocid", "party_id"),
        # The latest match declaring a scale (or VCSE status) per supplier, found without reading the supplier's
        # other matches (classification's ``_latest_declared``): one index each, holding only declaring matches.
        *(
            Index(
                f"ix_supplier_match_{column}",
                "supplier_id",
                "id",
                postgresql_where=text(f"{column} IS NOT NULL"),
                sqlite_where=text(f"{column} IS NOT NULL"),
            )
            for column in ("declared_scale", "declared_vcse")
        ),
    )

    source: Mapped[str] = mapped_column(String(32))
    ocid: Mapped[str] = mapped_column(String(200))
    party_id: Mapped[str] = mapped_column(String(250))
    supplier_id: Mapped[int] = mapped_column(ForeignKey("supplier.id"), index=True)
    method: Mapped[str] = mapped_column(String(16))  # identifier | name | new | manual
    evidence: Mapped[str | None] = mapped_column(String(500))
    party_name: Mapped[str | None] = mapped_column(String(500))
    declared_scale: Mapped[str | None] = mapped_column(String(16))
    declared_vcse: Mapped[bool | None] = mapped_column()
    street_address: Mapped[str | None] = mapped_column(String(1000))
    postcode: Mapped[str | None] = mapped_column(String(10))
