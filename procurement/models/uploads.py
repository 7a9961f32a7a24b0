"""Spreadsheet uploads in progress and the column choices an organisation made for its own sheets."""

from __future__ import annotations

import datetime as dt

from advanced_alchemy.base import BigIntBase
from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column


class ColumnMapping(BigIntBase):
    """Which of a sheet's headings holds each template field, remembered per organisation and heading set.

    ``header_key`` is the sha256 of the sheet's headings (normalised, sorted), so the same register exported
    again next quarter finds its mapping whatever the column order; another organisation never sees it.
    """

    __tablename__ = "column_mapping"
    __table_args__ = (UniqueConstraint("organisation_id", "header_key"),)

    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="CASCADE"))
    header_key: Mapped[str] = mapped_column(String(64))
    headings: Mapped[list[str]] = mapped_column(JsonB, default=list)
    # Template field -> the sheet's heading; a field left out is not in the sheet.
    mapping: Mapped[dict[str, str]] = mapped_column(JsonB, default=dict)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    updated_by: Mapped[str] = mapped_column(String(200))


class UploadDraft(BigIntBase):
    """An uploaded sheet checked but not yet saved: its file waits under the work folder until saved or discarded."""

    __tablename__ = "upload_draft"
    __table_args__ = (UniqueConstraint("organisation_id", "file_key"),)

    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="CASCADE"))
    file_key: Mapped[str] = mapped_column(String(100))
    filename: Mapped[str] = mapped_column(String(255))
    headings: Mapped[list[str]] = mapped_column(JsonB, default=list)
    # None until the columns are known (the template's, a remembered mapping, or chosen on the mapping page).
    mapping: Mapped[dict[str, str] | None] = mapped_column(JsonB)
    row_count: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(200))
    created_by_user_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)
