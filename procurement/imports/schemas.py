"""API shapes of import runs and their notes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec


class ImportRun(msgspec.Struct):
    """``status`` "interrupted" with ``last_progress_at`` and ``resume_command``: the run is still recorded as
    running but no process holds its source's import lock, so its process died (found on reading; nothing is
    written until the next import of the source, or the resume, marks it)."""

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
    last_progress_at: dt.datetime | None = None
    resume_command: str | None = None


class ImportNote(msgspec.Struct):
    id: int
    level: str
    ocid: str | None
    release_id: str | None
    path: str | None
    value: str | None
    message: str
