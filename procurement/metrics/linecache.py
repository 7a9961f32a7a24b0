"""Every contract line's engine columns as one Arrow file on disk, keyed by the lines token, so a new server process
reads the lines behind /metrics memory-mapped instead of from the database (on SQLite that read costs more than
the engine itself at a million lines).

The token (``data_version.lines_token``) is set anew by database triggers on every write to ``contract``,
``contract_supplier`` and ``contract_cpv``, whoever makes it (migration 0010_lines_token), so a file is never
read for lines other than its own. Changes that leave the lines alone (tiers, classification, overrides, local
areas) keep the file: the tiers are read beside it from the database as before. A file is written under a
unique name and renamed into place, so workers and processes sharing the folder only ever see whole files."""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import polars as pl
from sqlalchemy import func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.settings import get_settings

_PREFIX = "lines-"
_SUFFIX = ".arrow"


def folder(url: str) -> Path:
    """This database's cache folder (several databases may share the settings' folder, as the tests do)."""
    settings = get_settings()
    base = settings.cache_dir or settings.work_dir / "cache"
    return base / "lines" / hashlib.sha256(url.encode()).hexdigest()[:16]


async def lines_token(session: AsyncSession) -> str | None:
    """The token naming the lines as this session sees them; None when a cached copy must not be used: no token,
    or (PostgreSQL) this transaction has changed lines itself, whose new token is only written at its commit."""
    conn = await session.connection()
    dv = m.DataVersion
    if conn.dialect.name != "postgresql":
        return await session.scalar(select(dv.lines_token).where(dv.id == 1))
    written = func.current_setting("localvalue.lines_queued", literal_column("true"))
    row = (await session.execute(select(dv.lines_token, written).where(dv.id == 1))).first()
    return None if row is None or row[1] == "1" else row[0]


async def scope_lines(
    session: AsyncSession, anchor_ids: Sequence[int], read_every: Callable[[], Awaitable[pl.DataFrame]]
) -> pl.DataFrame | None:
    """The lines of these anchors (by ``anchor_id``) among every line as ``read_every`` gives them: from this
    database's file for the current token when there is one, else read (and the file written when the token did
    not change meanwhile); None when no copy may be used."""
    token = await lines_token(session)
    if token is None:
        return None
    conn = await session.connection()
    path = folder(conn.engine.url.render_as_string(hide_password=True)) / f"{_PREFIX}{token}{_SUFFIX}"
    mine = pl.col("anchor_id").is_in(list(anchor_ids))
    with contextlib.suppress(FileNotFoundError):
        return pl.scan_ipc(path).filter(mine).collect()
    every = await read_every()
    # Unchanged before and after the read: no change to the lines was committed while it ran.
    if await lines_token(session) == token:
        with contextlib.suppress(OSError):  # a folder that cannot be written only costs speed
            _store(path, every)
    return every.filter(mine)


def _store(path: Path, frame: pl.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.part")
    try:
        frame.write_ipc(part, compression="uncompressed")  # uncompressed: read memory-mapped
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)
    made = path.stat().st_mtime
    for other in path.parent.glob(f"{_PREFIX}*{_SUFFIX}"):
        # Older copies name lines that have changed since; one still mapped by a reader stays readable to it.
        if other != path and other.stat().st_mtime <= made:
            other.unlink(missing_ok=True)
