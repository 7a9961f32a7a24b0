"""API shapes of import runs and their notes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec


class ImportRun(msgspec.Struct):
    id: int
    source: str
    kind: str
    parameters: dict[str, Any]
    status: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    checkpoint: dict[str, Any] | None
    fetched: int
    new: int
    changed: int
    unchanged: int
    skipped: int
    failed: int
    pages: int
    notes: int
    error: str | None
    resumed_from_id: int | None


class ImportNote(msgspec.Struct):
    id: int
    level: str
    ocid: str | None
    release_id: str | None
    path: str | None
    value: str | None
    message: str
