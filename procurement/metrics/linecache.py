"""Every contract line's engine columns as one Arrow file on disk, keyed by the lines token, so a new server process
reads the lines behind /metrics memory-mapped instead of from the database (on SQLite that read costs more than
the engine itself at a million lines).

The token (``data_version.lines_token``) is set anew by database triggers on every write to ``contract``,
``contract_supplier`` and ``contract_cpv``, whoever makes it (migration 0010_lines_token), so a file is never
read for lines other than its own. Changes that leave the lines alone (tiers, classification, overrides, local
areas) keep the file. A request that finds no file reads its own lines from the database and has the file written
in the background. A file is written under a unique name and renamed into place, so workers and processes sharing
the folder only ever see whole files.

The stored tiers (lean columns, with the name of the supplier each counts as) are copied the same way beside the
lines, keyed by ``data_version.tiers_token``, which triggers renew on every write to ``anchor_supplier_tier`` and
to a supplier's id or name (migration 0011_tiers_token): classification, override and local-area changes move
it, and only those pairs that have no stored tier are still judged from the database on each read.

The lean payment lines of the paid basis are copied likewise, keyed by ``data_version.payments_token``, which
triggers renew on every write to ``payment_line``, ``spend_file`` and ``payee_match`` (migration
0012_payments_token). The paid basis's engine lines (the payment lines joined to their stored tiers, with the
columns made of both) are copied keyed by both tokens, so a cold paid request does no join per
line; so are the contract lines' engine columns (the lines joined to their stored tiers)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import func, literal_column, select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.db import make_engine
from procurement.settings import get_settings
from procurement.suppliers.tiers import tiers_rules

log = logging.getLogger(__name__)
_SUFFIX = ".arrow"


@dataclass(frozen=True)
class Kind:
    """What a copy holds: its file names' prefix, the data-version column naming its content, and the setting by
    which (PostgreSQL) the triggers mark a transaction that has changed that content itself."""

    prefix: str
    token_column: str
    queued: str
    # Stored in anchor order (the tiers, whose order is not kept): a scope reads only the rows from its first
    # anchor's to its last's. The lines keep line order, which a scope of several anchors must keep.
    by_anchor: bool = False
    # A copy made of two kinds' content: named by both tokens, used only while neither moved.
    also: Kind | None = None
    # A copy made with the stored tiers: not used while they were built with other rules than today's.
    today_tiers: bool = False
    # Held in memory once read (the current token's copy only): every cold request reads it (``held``).
    held: bool = False


LINES = Kind("lines-", "lines_token", "localvalue.lines_queued")
TIERS = Kind("tiers-", "tiers_token", "localvalue.tiers_queued", by_anchor=True)
# The lean payment lines (paid basis), in (anchor, line) order.
PAYMENTS = Kind("payments-", "payments_token", "localvalue.payments_queued", by_anchor=True)
# The paid basis's engine lines (payment lines with their stored tiers), in (anchor, line) order.
PAID = Kind(
    "paid-", "payments_token", "localvalue.payments_queued", by_anchor=True, also=TIERS, today_tiers=True, held=True
)
# The contract lines' engine columns (lines with their stored tiers), in (anchor, line) order.
CONTRACT = Kind(
    "contract-", "lines_token", "localvalue.lines_queued", by_anchor=True, also=TIERS, today_tiers=True, held=True
)


def folder(url: str) -> Path:
    """This database's cache folder (several databases may share the settings' folder, as the tests do)."""
    settings = get_settings()
    base = settings.cache_dir or settings.work_dir / "cache"
    return base / "lines" / hashlib.sha256(url.encode()).hexdigest()[:16]


async def token(session: AsyncSession, kind: Kind) -> str | None:
    """The token naming this kind of content as this session sees it; None when a cached copy must not be used:
    no token, or (PostgreSQL) this transaction has changed that content itself, whose new token is only written
    at its commit, or (``today_tiers``) the stored tiers were built with other rules. One query."""
    conn = await session.connection()
    kinds = [kind] if kind.also is None else [kind, kind.also]
    columns: list[Any] = [getattr(m.DataVersion, k.token_column) for k in kinds]
    if conn.dialect.name == "postgresql":
        columns += [func.current_setting(k.queued, literal_column("true")) for k in kinds]
    if kind.today_tiers:
        columns.append(m.DataVersion.tiers_rules)
    row = (await session.execute(select(*columns).where(m.DataVersion.id == 1))).first()
    if row is None or (kind.today_tiers and row[-1] != tiers_rules()):
        return None
    if any(written == "1" for written in row[len(kinds) : 2 * len(kinds)]):
        return None
    tokens = row[: len(kinds)]
    return None if any(t is None for t in tokens) else "-".join(tokens)


async def lines_token(session: AsyncSession) -> str | None:
    return await token(session, LINES)


async def tiers_token(session: AsyncSession) -> str | None:
    return await token(session, TIERS)


@dataclass(frozen=True)
class Found:
    """The rows of a scope from the copy for the current token (``rows``), or where that copy belongs when it is
    not written yet (``missing``); neither when no copy may be used. ``token``: the current token, when either."""

    rows: pl.DataFrame | None = None
    missing: Path | None = None
    token: str | None = None
    kind: Kind = LINES


async def scope_rows(
    session: AsyncSession, kind: Kind, anchor_ids: Sequence[int], columns: Sequence[str] | None = None
) -> Found:
    """The rows of these anchors (by ``anchor_id``) from this database's copy of this kind for the current token
    (``columns``: only these of its columns, the others not read)."""
    current = await token(session, kind)
    if current is None:
        return Found(kind=kind)
    conn = await session.connection()
    path = folder(conn.engine.url.render_as_string(hide_password=True)) / f"{kind.prefix}{current}{_SUFFIX}"
    with contextlib.suppress(FileNotFoundError):
        if kind.held:
            rows = scope_of(held(kind, path), path, anchor_ids, columns, by_anchor=kind.by_anchor)
        else:
            rows = read_scope(path, anchor_ids, columns, by_anchor=kind.by_anchor)
        return Found(rows=rows, token=current, kind=kind)
    return Found(missing=path, token=current, kind=kind)


# The copy of each held kind last read by this process, whole: (its path, its rows). Its content never changes
# under its name, and decoding a large scope's rows from the file again cost a cold request a good part of the
# engine's time (all of them at 200,000 payment lines: about a fifth); a slice of the held rows copies nothing.
# One copy per kind (that of the current token), so at most the size of the engine lines of each basis.
_HELD: dict[str, tuple[Path, pl.DataFrame]] = {}


def held(kind: Kind, path: Path) -> pl.DataFrame:
    """The rows of this copy, read whole the first time (FileNotFoundError when there is none)."""
    kept = _HELD.get(kind.prefix)
    if kept is not None and kept[0] == path:
        return kept[1]
    rows = pl.scan_ipc(path).collect()
    _HELD[kind.prefix] = (path, rows)
    return rows


def scope_of(
    every: pl.DataFrame,
    path: Path,
    anchor_ids: Sequence[int],
    columns: Sequence[str] | None = None,
    *,
    by_anchor: bool = False,
) -> pl.DataFrame:
    """``read_scope`` of rows held in memory (``every``: the whole copy at ``path``)."""
    return _scope(every.lazy(), path, anchor_ids, columns, by_anchor=by_anchor)


def read_scope(
    path: Path, anchor_ids: Sequence[int], columns: Sequence[str] | None = None, *, by_anchor: bool = False
) -> pl.DataFrame:
    """The rows of these anchors from one copy (``by_anchor``: stored in anchor order, so read as a range)."""
    return _scope(pl.scan_ipc(path), path, anchor_ids, columns, by_anchor=by_anchor)


def _scope(
    scan: pl.LazyFrame, path: Path, anchor_ids: Sequence[int], columns: Sequence[str] | None, *, by_anchor: bool
) -> pl.DataFrame:
    read, whole = scan, False
    ranges = _anchor_rows(path, scan) if by_anchor and anchor_ids else None
    if ranges is not None:
        held = [r for r in map(ranges.get, anchor_ids) if r is not None]
        first = min((start for start, _ in held), default=0)
        count = max((start + rows for start, rows in held), default=0) - first
        read = read.slice(first, count)
        # A range of the scope's anchors alone (one anchor, all of them) needs no filter, which copies every row.
        whole = sum(rows for _, rows in held) == count
    if not whole:
        read = read.filter(pl.col("anchor_id").is_in(list(anchor_ids)))
    return (read if columns is None else read.select(columns)).collect()


# Each copy's rows by anchor (first row, number of rows), worked out once per process: a copy's content never
# changes under its name (the token names it), and reading its every anchor id again cost more than a small
# scope's own rows. A few copies only: one per kind and token in use.
_ANCHOR_ROWS: dict[Path, dict[int, tuple[int, int]] | None] = {}
_ANCHOR_ROWS_KEPT = 8


def _anchor_rows(path: Path, scan: pl.LazyFrame) -> dict[int, tuple[int, int]] | None:
    """None when an anchor's rows are not all together (never so in a copy written here): filter every row."""
    if path in _ANCHOR_ROWS:
        return _ANCHOR_ROWS[path]
    runs = (
        scan.select("anchor_id")
        .with_row_index("row")
        .group_by("anchor_id")
        .agg(first=pl.col("row").min(), last=pl.col("row").max(), rows=pl.len())
        .collect()
    )
    found: dict[int, tuple[int, int]] | None = {int(a): (int(f), int(n)) for a, f, _, n in runs.iter_rows()}
    if any(last - first + 1 != n for _, first, last, n in runs.iter_rows()):
        found = None
    if len(_ANCHOR_ROWS) >= _ANCHOR_ROWS_KEPT:
        _ANCHOR_ROWS.clear()
    _ANCHOR_ROWS[path] = found
    return found


async def every_row(session: AsyncSession, kind: Kind) -> pl.DataFrame | None:
    """Every row of this database's copy of this kind for the current token; None when there is none to use."""
    current = await token(session, kind)
    if current is None:
        return None
    conn = await session.connection()
    path = folder(conn.engine.url.render_as_string(hide_password=True)) / f"{kind.prefix}{current}{_SUFFIX}"
    with contextlib.suppress(FileNotFoundError):
        return pl.scan_ipc(path).collect()
    return None


async def scope_lines(session: AsyncSession, anchor_ids: Sequence[int]) -> Found:
    """The lines of these anchors from this database's copy of every line for the current token."""
    return await scope_rows(session, LINES, anchor_ids)


_writing: set[Path] = set()  # copies being written by this process
_unwritable: set[Path] = set()  # copies this process found it may not write (their content is not all stored)
# A copy is started this long after the request that found it missing, so that request (typically the first
# after an import or an edit) does not share the CPU with reading every line.
WRITE_AFTER_S = 1.0


def copy_later(url: URL, found: Found, read_every: Callable[[AsyncSession], Awaitable[pl.DataFrame | None]]) -> None:
    """Writes the missing copy in the background, once per process: the request that found it missing has read its
    own rows already, at the cost it had before there were copies (reading every row costs more). A thread of
    its own, with its own event loop and connection, so decoding every line never holds up a request's loop, started
    a little later (``WRITE_AFTER_S``) and once no figures are being worked out here (``working_out``).
    ``read_every`` returns None when the copy may not be written (it would hold what must be judged on each read);
    this process does not try that copy again."""
    path, current = found.missing, found.token
    if path is None or current is None or path in _writing or path in _unwritable:
        return
    _writing.add(path)
    writing = _write(url, found.kind, path, current, read_every)
    threading.Thread(target=asyncio.run, args=(writing,), name=f"{found.kind.prefix}copy", daemon=True).start()


# Figures being worked out in this process (``working_out``). A copy waits for them to end before it reads every
# line, so the request that found the copy missing (the first after an import or an edit) does not share the cores
# with it: on every anchor's figures, the copy's read started during the request cost it about a third more. It
# waits IDLE_WAIT_S at most: under steady load, every request would go on reading from the database.
IDLE_WAIT_S = 30.0


class _Working:
    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()


_working = _Working()


@contextlib.contextmanager
def working_out() -> Iterator[None]:
    """Marks figures being worked out here, for as long as the block runs (see ``_working``)."""
    with _working.lock:
        _working.count += 1
    try:
        yield
    finally:
        with _working.lock:
            _working.count -= 1


async def _idle() -> None:
    """Until no figures are being worked out in this process, or IDLE_WAIT_S have passed."""
    deadline = time.monotonic() + IDLE_WAIT_S
    while _working.count and time.monotonic() < deadline:  # noqa: ASYNC110 (emptied by the requests' threads)
        await asyncio.sleep(0.05)


async def others_written(*made_of: Kind) -> None:
    """Until the copies of these kinds being written by this process are written: a copy made of theirs (``PAID``,
    ``CONTRACT``) is then made by reading them rather than every line from the database again. Only these: two
    copies made of others, each waiting for every copy but its own, would wait for each other for ever."""
    prefixes = tuple(k.prefix for k in made_of)
    while any(p.name.startswith(prefixes) for p in _writing):  # noqa: ASYNC110 (emptied by the writers)
        await asyncio.sleep(0.05)


async def written() -> None:
    """Until the copies being written by this process are written (for tests and benchmarks)."""
    while _writing:  # noqa: ASYNC110 (emptied by the writing threads)
        await asyncio.sleep(0.01)


async def _write(
    url: URL,
    kind: Kind,
    path: Path,
    current: str,
    read_every: Callable[[AsyncSession], Awaitable[pl.DataFrame | None]],
) -> None:
    await asyncio.sleep(WRITE_AFTER_S)
    await _idle()
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        async with AsyncSession(bind=engine) as session:
            every = await read_every(session)
            # Unchanged after the read: no change to the content was committed since the token was read.
            if every is None:
                _unwritable.add(path)
            elif await token(session, kind) == current:
                _store(kind, path, every)
    except Exception:  # a copy not written only costs speed: the next request reads from the database again
        log.warning("the copy at %s was not written", path, exc_info=True)
    finally:
        await engine.dispose()
        _writing.discard(path)


def _store(kind: Kind, path: Path, frame: pl.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.part")
    try:
        # Uncompressed: read memory-mapped. One record batch: a scope read in several chunks costs the engine a
        # copy of every line (it rechunks its input).
        frame.write_ipc(part, compression="uncompressed", record_batch_size=max(frame.height, 1))
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)
    made = path.stat().st_mtime
    for other in path.parent.glob(f"{kind.prefix}*{_SUFFIX}"):
        # Older copies name content that has changed since; one still mapped by a reader stays readable to it.
        if other != path and other.stat().st_mtime <= made:
            other.unlink(missing_ok=True)
