"""The contract-supplier lines behind a scope (one anchor, a group or all anchors), loaded for the metrics engine."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar, cast

import polars as pl
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.bulk import among
from procurement.db import fetch_frame
from procurement.errors import DomainError, NotFound
from procurement.memo import Memo, content_digest
from procurement.metrics import linecache
from procurement.suppliers.tiers import TIER_SCHEMA as STORED_TIER_SCHEMA
from procurement.suppliers.tiers import compute_pair_tiers, stored_tiers_usable, supplier_tiers
from socialvalue.metrics import INPUT_SCHEMA, Basis, MetricsResult, PeriodKind, compute_metrics

ALL_KEY = "all"
_results: Memo[MetricsResult] = Memo(32)
T = TypeVar("T")


@dataclass(frozen=True)
class Scope:
    key: str  # "org:12" | "group:birmingham-and-solihull" | "all"
    kind: str  # "anchor" | "group" | "all"
    name: str
    anchor_ids: tuple[int, ...]
    organisation_id: int | None
    group_id: int | None


async def resolve_scope(session: AsyncSession, *, anchor_id: int | None = None, group: str | None = None) -> Scope:
    """The scope asked for, read as plain rows in one query: loading the organisation or the group with its members
    as ORM objects cost a cold /metrics request several milliseconds (two queries for a group)."""
    if anchor_id is not None and group is not None:
        raise DomainError("Give anchor_id or group, not both.")
    if anchor_id is not None:
        org = (
            await session.execute(select(m.Organisation.id, m.Organisation.name).where(m.Organisation.id == anchor_id))
        ).first()
        if org is None:
            raise NotFound(f"No organisation with id {anchor_id}.")
        return Scope(f"org:{org.id}", "anchor", org.name, (org.id,), org.id, None)
    if group is not None:
        rows = (
            await session.execute(
                select(m.AnchorGroup.id, m.AnchorGroup.slug, m.AnchorGroup.name, m.AnchorGroupMember.organisation_id)
                .outerjoin(m.AnchorGroupMember, m.AnchorGroupMember.group_id == m.AnchorGroup.id)
                .where(m.AnchorGroup.slug == group)
            )
        ).all()
        if not rows:
            raise NotFound(f"No anchor group {group!r}.")
        ids = tuple(sorted(r.organisation_id for r in rows if r.organisation_id is not None))
        if not ids:
            raise DomainError(f"Anchor group {group!r} has no members.")
        first = rows[0]
        return Scope(f"group:{first.slug}", "group", first.name, ids, None, first.id)
    ids = tuple((await session.scalars(select(m.Organisation.id).where(m.Organisation.is_anchor.is_(True)))).all())
    return Scope(ALL_KEY, "all", "All anchors", tuple(sorted(ids)), None, None)


EXTRA_SCHEMA: dict[str, pl.DataType] = {
    "contract_title": pl.String(),
    "buyer_name": pl.String(),
    "contracted_supplier_id": pl.Int64(),
    "share_basis": pl.String(),
    "tier_method": pl.String(),
    "tier_confidence": pl.Float64(),
    "tier_reason": pl.String(),
}


def id_list(ids: Sequence[int]) -> str:
    return ", ".join(str(int(i)) for i in ids) or "NULL"


# A stored tier beside each line (keyed by the line's anchor and supplier), with the name of the supplier it counts as.
TIER_SCHEMA: dict[str, Any] = {
    **{k: v for k, v in STORED_TIER_SCHEMA.items() if k not in ("anchor_id", "supplier_id")},
    "supplier_name": pl.String,
}

_LINE_SCHEMA: dict[str, Any] = {
    "line_id": pl.Int64,
    "contract_id": pl.Int64,
    "anchor_id": pl.Int64,
    "contracted_supplier_id": pl.Int64,
    "value_pence": pl.Int64,
    "share_basis": pl.String,
    "currency": pl.String,
    "award_date": pl.Date,
    "start_date": pl.Date,
    "end_date": pl.Date,
    "cpv_code": pl.String,
    "status": pl.String,
    "contract_title": pl.String,
}


# What only a reviewer reads beside a line; the lean read (``lines_frame``, /metrics) leaves these null.
_DETAIL_LINE_COLUMNS = {"share_basis": "cs.share_basis", "contract_title": "c.title"}
_DETAIL_TIER_COLUMNS = {"tier_confidence": "t.tier_confidence", "tier_method": "t.tier_method",
                        "tier_reason": "t.tier_reason"}  # fmt: skip
_LINE_SOURCES = {
    "line_id": "cs.id", "contract_id": "c.id", "anchor_id": "c.buyer_id", "contracted_supplier_id": "cs.supplier_id",
    "value_pence": "cs.share_pence", "currency": "c.currency", "award_date": "c.award_date",
    "start_date": "c.start_date", "end_date": "c.end_date", "status": "c.status", **_DETAIL_LINE_COLUMNS,
}  # fmt: skip


def _read(sources: dict[str, str], schema: dict[str, Any], detailed: bool, details: dict[str, str]) -> tuple[
    str, dict[str, Any], list[pl.Expr]
]:  # fmt: skip
    """The SELECT list and schema of the columns to read, and null stand-ins for the detail columns left out."""
    read = {k: v for k, v in sources.items() if detailed or k not in details}
    nulls = [pl.lit(None, schema[k]).alias(k) for k in sources if k not in read]
    return ", ".join(read.values()), {k: schema[k] for k in read}, nulls


async def _line_rows(session: AsyncSession, anchor_ids: Sequence[int], *, detailed: bool = True) -> pl.DataFrame:
    """Every non-pending contract-supplier line of these anchors with its first CPV code, read as columns
    (``detailed``: with the share basis and contract title too). The lean columns come from the copy of every
    line on disk when there is one for the lines as they are (``linecache``)."""
    if detailed:
        return await _read_line_rows(session, anchor_ids, detailed=True)
    lines, _token = await _lean_line_rows(session, anchor_ids)
    return lines


async def _lean_line_rows(session: AsyncSession, anchor_ids: Sequence[int]) -> tuple[pl.DataFrame, str | None]:
    """The lean ``_line_rows``, and the token of the copy they came from (None: read from the database)."""
    found = await linecache.scope_lines(session, anchor_ids)
    if found.rows is not None:
        return found.rows, found.token
    lines = await _read_line_rows(session, anchor_ids, detailed=False)
    url = (await session.connection()).engine.url
    linecache.copy_later(url, found, partial(_read_line_rows, anchor_ids=None, detailed=False))
    return lines, None


async def _read_line_rows(session: AsyncSession, anchor_ids: Sequence[int] | None, *, detailed: bool) -> pl.DataFrame:
    """``_line_rows`` read from the database (``anchor_ids`` None: every buyer's lines).

    Plain scans joined in polars: one SQL join per line (CPV, tier, name) costs random reads per row, which on
    a large SQLite file is many times the engine's own time."""
    where = f"c.status <> '{m.ContractStatus.PENDING.value}'"
    if anchor_ids is not None:
        where = f"c.buyer_id IN ({id_list(anchor_ids)}) AND {where}"
    columns, selected, nulls = _read(_LINE_SOURCES, _LINE_SCHEMA, detailed, _DETAIL_LINE_COLUMNS)
    scan = anchor_ids is None or await _scan_lines(session, anchor_ids)
    join = "CROSS JOIN" if scan and (await session.connection()).dialect.name == "sqlite" else "JOIN"
    # Sorted here rather than in SQL: PostgreSQL spills a sort this size to disk, SQLite builds a B-tree.
    lines_sql = f"""
    SELECT {columns}
    FROM contract_supplier cs {join} contract c ON c.id = cs.contract_id
    WHERE {where}"""  # noqa: S608 (only integers made here and fixed words)
    cpv_sql = f"""
    SELECT cc.contract_id, cc.code, cc.position, cc.id FROM contract_cpv cc {join} contract c ON c.id = cc.contract_id
    WHERE {where}"""  # noqa: S608 (as above)
    lines = cast(pl.DataFrame, await fetch_frame(session, lines_sql, selected)).with_columns(nulls).sort("line_id")
    cpv_schema = {"contract_id": pl.Int64, "cpv_code": pl.String, "position": pl.Int64, "id": pl.Int64}
    codes = cast(pl.DataFrame, await fetch_frame(session, cpv_sql, cpv_schema))
    first = codes.sort("contract_id", "position", "id").unique("contract_id", keep="first", maintain_order=True)
    return lines.join(
        first.select("contract_id", "cpv_code"), on="contract_id", how="left", maintain_order="left"
    ).select(list(_LINE_SCHEMA))


# Share of all contracts from which reading every line beats looking a scope's up by buyer (SQLite).
_SCAN_SHARE = 20


async def _scan_lines(session: AsyncSession, anchor_ids: Sequence[int]) -> bool:
    """On SQLite, whether to read the lines by scanning them in order (CROSS JOIN keeps that join order)
    rather than through the buyer index: each contract found by buyer costs random reads of three tables and
    a sort, several times a plain scan once the scope holds more than a few per cent of the contracts. SQLite
    has no statistics to choose by; PostgreSQL chooses well itself."""
    if (await session.connection()).dialect.name != "sqlite":
        return False
    counted = f"""
    SELECT (SELECT count(*) FROM contract WHERE buyer_id IN ({id_list(anchor_ids)})), (SELECT max(id) FROM contract)
    """  # noqa: S608 (only integers made here)
    scope, highest = (await session.execute(text(counted))).one()
    return bool(scope) and scope * _SCAN_SHARE >= (highest or 0)


_TIER_SOURCES = {
    "anchor_id": "t.anchor_id", "contracted_supplier_id": "t.supplier_id",
    "effective_supplier_id": "t.effective_supplier_id", "tier": "t.tier", **_DETAIL_TIER_COLUMNS,
    "category": "t.category", "sme": "t.sme", "vcse": "t.vcse", "social_enterprise": "t.social_enterprise",
}  # fmt: skip
# Up to this many suppliers' names are looked up by id; more, and every supplier's name is read in one scan.
_NAMES_BY_ID = 5000


async def stored_tiers(
    session: AsyncSession, anchor_ids: Sequence[int] | None, *, detailed: bool = True
) -> pl.DataFrame:
    """The stored tier of every (anchor, supplier) pair of these anchors (None: of every anchor), with the name of
    the supplier each counts as (``TIER_SCHEMA`` keyed by anchor_id and contracted_supplier_id; without
    ``detailed``, the tier's method, confidence and reason are null). Pairs whose supplier is missing are left out.

    The names are read apart and joined here: joined in SQL, each pair's name costs a random read of the supplier
    row and is carried once per pair, together about half the read on SQLite."""
    schema = {"anchor_id": pl.Int64, "contracted_supplier_id": pl.Int64, **TIER_SCHEMA}
    columns, selected, nulls = _read(_TIER_SOURCES, schema, detailed, _DETAIL_TIER_COLUMNS)
    where = "" if anchor_ids is None else f" WHERE t.anchor_id IN ({id_list(anchor_ids)})"
    sql = f"SELECT {columns} FROM anchor_supplier_tier t{where}"  # noqa: S608 (only integers made here and fixed words)
    frame = cast(pl.DataFrame, await fetch_frame(session, sql, selected))
    wanted = frame["effective_supplier_id"].unique().sort().to_list()
    which = f" WHERE s.id IN ({id_list(wanted)})" if len(wanted) <= _NAMES_BY_ID else ""
    names = cast(
        pl.DataFrame,
        await fetch_frame(
            session,
            f"SELECT s.id, s.name FROM supplier s{which}",  # noqa: S608 (only integers made here)
            {"effective_supplier_id": pl.Int64, "supplier_name": pl.String},
        ),
    )
    named = frame.join(names, on="effective_supplier_id", how="inner", maintain_order="left")
    return named.with_columns(nulls).select(list(schema))


async def _every_lean_tier(session: AsyncSession) -> pl.DataFrame:
    """What the copy of the stored tiers on disk holds: every pair's lean tier, in (anchor, supplier) order (which
    ``linecache`` reads a scope's rows by)."""
    return (await stored_tiers(session, None, detailed=False)).sort("anchor_id", "contracted_supplier_id")


async def _tier_rows(
    session: AsyncSession, anchor_ids: Sequence[int], *, detailed: bool
) -> tuple[pl.DataFrame, str | None]:
    """``stored_tiers``, the lean ones from the copy of every stored tier on disk when there is one for the tiers
    and names as they are (``linecache``); and that copy's token (None: read from the database)."""
    if detailed:
        return await stored_tiers(session, anchor_ids, detailed=True), None
    found = await linecache.scope_rows(session, linecache.TIERS, anchor_ids)
    if found.rows is not None:
        return found.rows, found.token
    tiers = await stored_tiers(session, anchor_ids, detailed=False)
    linecache.copy_later((await session.connection()).engine.url, found, _every_lean_tier)
    return tiers, None


async def with_tiers(session: AsyncSession, raw: pl.DataFrame, anchor_ids: Sequence[int], *, from_scratch: bool,
                     refresh: bool = False, detailed: bool = True) -> pl.DataFrame:  # fmt: skip
    """``raw`` (anchor_id, contracted_supplier_id, ...) with ``TIER_SCHEMA`` beside each line: the stored tiers,
    or (``from_scratch``, or stored tiers built with other rules) tiers computed here."""
    joined, _token = await keyed_tiers(
        session, raw, anchor_ids, from_scratch=from_scratch, refresh=refresh, detailed=detailed
    )
    return joined


async def keyed_tiers(session: AsyncSession, raw: pl.DataFrame, anchor_ids: Sequence[int], *, from_scratch: bool,
                      refresh: bool, detailed: bool) -> tuple[pl.DataFrame, str | None]:  # fmt: skip
    """``with_tiers``, and the token of the copy of the stored tiers when every tier came from it (else None)."""
    scratch = from_scratch or not await stored_tiers_usable(session)
    if scratch:
        joined = raw.with_columns([pl.lit(None, v).alias(k) for k, v in TIER_SCHEMA.items()])
        return await fill_missing_tiers(session, joined, from_scratch=True, refresh=refresh), None
    tiers, token = await _tier_rows(session, anchor_ids, detailed=detailed)
    joined = raw.join(tiers, on=["anchor_id", "contracted_supplier_id"], how="left", maintain_order="left")
    filled = await fill_missing_tiers(session, joined, from_scratch=False, refresh=refresh)
    # The same frame back: no pair was judged here, so the tiers are the copy's alone.
    return filled, token if filled is joined else None


async def buyer_names(session: AsyncSession, anchor_ids: Sequence[int]) -> pl.DataFrame:
    rows = (
        await session.execute(select(m.Organisation.id, m.Organisation.name).where(m.Organisation.id.in_(anchor_ids)))
    ).all()
    return pl.DataFrame(
        {"anchor_id": [r[0] for r in rows], "buyer_name": [r[1] for r in rows]},
        schema={"anchor_id": pl.Int64, "buyer_name": pl.String},
    )


async def fill_missing_tiers(
    session: AsyncSession, raw: pl.DataFrame, *, from_scratch: bool, refresh: bool = False
) -> pl.DataFrame:
    """Lines whose pair has no stored tier (or every line, ``from_scratch``) get one computed here, writing
    nothing (``refresh``: classify first, as reads once did; kept for the test that checks stored tiers).
    A supplier that is really a stand-in (id <= 0, paid basis) is left alone."""
    if not from_scratch and raw["effective_supplier_id"].null_count() == 0:
        return raw  # every line has its stored tier (the usual case): no pass over the lines
    real = pl.col("contracted_supplier_id") > 0
    wanting = raw.filter(real & (pl.lit(from_scratch) | pl.col("effective_supplier_id").is_null()))
    if wanting.height == 0:
        return raw
    pairs = wanting.select("anchor_id", pl.col("contracted_supplier_id").alias("supplier_id")).unique()
    if refresh:
        computed = (
            await supplier_tiers(
                session, pairs["anchor_id"].unique().sort().to_list(), supplier_ids=pairs["supplier_id"].to_list()
            )
        ).join(pairs, on=["anchor_id", "supplier_id"], how="semi")
    else:
        computed = await compute_pair_tiers(session, pairs)
    ids = computed["effective_supplier_id"].drop_nulls().unique().to_list()
    dialect = session.get_bind().dialect.name
    names = (
        await session.execute(select(m.Supplier.id, m.Supplier.name).where(among(dialect, m.Supplier.id, ids)))
    ).all()
    name_frame = pl.DataFrame(
        {"effective_supplier_id": [r[0] for r in names], "supplier_name": [r[1] for r in names]},
        schema={"effective_supplier_id": pl.Int64, "supplier_name": pl.String},
    )
    patch = (
        computed.rename({"supplier_id": "contracted_supplier_id"})
        .join(name_frame, on="effective_supplier_id", how="left")
        .select(["anchor_id", "contracted_supplier_id", *[pl.col(k).cast(v) for k, v in TIER_SCHEMA.items()]])
    )
    mask = real & (pl.lit(from_scratch) | pl.col("effective_supplier_id").is_null())
    kept = raw.with_row_index("_order")
    fixed = (
        kept.filter(mask).drop(list(TIER_SCHEMA)).join(patch, on=["anchor_id", "contracted_supplier_id"], how="left")
    )
    return pl.concat([kept.filter(~mask), fixed.select(kept.columns)]).sort("_order").drop("_order")


async def lines_with_details(
    session: AsyncSession,
    anchor_ids: Sequence[int],
    *,
    from_scratch: bool = False,
    refresh: bool = False,
    detailed: bool = True,
) -> pl.DataFrame:
    """``lines_frame`` plus what a reviewer needs beside each line (contract title, buyer, tier evidence).

    Tiers come from the stored ``anchor_supplier_tier`` rows, read with the lines; ``from_scratch`` (also used
    when the stored tiers were built with other rules) computes them from the classification instead. Without
    ``detailed`` the columns only a reviewer reads (title, buyer name, share basis, tier method, confidence and
    reason) are null where stored tiers are used: the engine's columns are the same either way."""
    frame, _key = await keyed_lines(session, anchor_ids, from_scratch=from_scratch, refresh=refresh, detailed=detailed)
    return frame


async def keyed_lines(
    session: AsyncSession,
    anchor_ids: Sequence[int],
    *,
    from_scratch: bool = False,
    refresh: bool = False,
    detailed: bool = True,
    by_anchor: bool = False,
) -> tuple[pl.DataFrame, bytes | None]:
    """``lines_with_details``, and a key for its content when it is made of the copies on disk alone (lines and
    stored tiers, none judged on the fly): their tokens name it as surely as ``lines_digest``, which on a large
    scope costs a good part of an engine run. None: work the digest out.

    The lean lines come whole from the copy of every line's engine columns (``linecache.CONTRACT``, keyed by the
    lines and tiers tokens) when there is one: the join to the tiers costs more than reading them. ``by_anchor``:
    those may come by anchor (each anchor's in line order), as the copy holds them; the engine's figures are the
    same (it orders lines by anchor and supplier, keeping their order within one anchor), and putting a scope's
    lines back in line order costs a good part of reading them. Such lines have a key of their own."""
    if not detailed and not from_scratch and not refresh:
        # No copy (token None) while the stored tiers were built with other rules: they are judged below then.
        found = await linecache.scope_rows(session, linecache.CONTRACT, anchor_ids, list(_ENGINE_SCHEMA))
        if found.rows is not None and found.token is not None:
            if found.rows.height == 0:
                return pl.DataFrame(schema=_LINES_SCHEMA), None
            rows = found.rows.lazy() if by_anchor else found.rows.lazy().sort("line_id")
            made = rows.select([pl.col(k) if k in _ENGINE_SCHEMA else _LEAN_NULLS[k] for k in _LINES_SCHEMA])
            copied = found.token.split("-")  # the lines and tiers tokens
            key = _copies_key(copied[0], copied[1], anchor_ids) + (b":by-anchor" if by_anchor else b"")
            return made.collect(), key
        linecache.copy_later((await session.connection()).engine.url, found, _every_engine_line)
    if detailed:
        raw, lines_token = await _read_line_rows(session, anchor_ids, detailed=True), None
    else:
        raw, lines_token = await _lean_line_rows(session, anchor_ids)
    if raw.height == 0:
        return pl.DataFrame(schema=_LINES_SCHEMA), None
    joined, tiers_token = await keyed_tiers(
        session, raw, anchor_ids, from_scratch=from_scratch, refresh=refresh, detailed=detailed
    )
    if detailed:
        joined = joined.join(await buyer_names(session, anchor_ids), on="anchor_id", how="left", maintain_order="left")
    else:
        joined = joined.with_columns(buyer_name=pl.lit(None, pl.String))
    frame = _engine_frame(joined.lazy()).collect()
    if lines_token is None or tiers_token is None:
        return frame, None
    return frame, _copies_key(lines_token, tiers_token, anchor_ids)


_LINES_SCHEMA = {**INPUT_SCHEMA, **EXTRA_SCHEMA}
# What the copy of the engine lines holds; the lean lines' other columns are null on every line, made on reading.
_ENGINE_SCHEMA = {**INPUT_SCHEMA, "contracted_supplier_id": EXTRA_SCHEMA["contracted_supplier_id"]}
_LEAN_NULLS = {k: pl.lit(None, v).alias(k) for k, v in _LINES_SCHEMA.items() if k not in _ENGINE_SCHEMA}


def _copies_key(lines_token: str, tiers_token: str, anchor_ids: Sequence[int]) -> bytes:
    # Longer than any content digest, so never equal to one.
    return f"copies:{lines_token}:{tiers_token}:{list(anchor_ids)}".encode()


def _engine_frame(joined: pl.LazyFrame) -> pl.LazyFrame:
    """The lines with their tiers (``keyed_tiers``) as ``_LINES_SCHEMA``. One lazy pass: each eager step would
    copy every line again (a large share of a cold request on a big scope)."""
    return joined.with_columns(
        supplier_id=pl.coalesce("effective_supplier_id", "contracted_supplier_id"),
        tier=pl.col("tier").fill_null("unknown"),
        category=pl.col("category").fill_null("unknown"),
    ).select([pl.col(k).cast(v) for k, v in _LINES_SCHEMA.items()])


async def _every_engine_line(session: AsyncSession) -> pl.DataFrame | None:
    """What the copy of the contract lines' engine columns holds: every lean line of every buyer with its stored
    tier, in (anchor, line) order (which ``linecache`` reads a scope's rows by), without the columns null on every
    lean line. None when a line's pair has no stored tier (judged on each read) or the stored tiers were built
    with other rules."""
    # Made of the copies of the lines and stored tiers when they are there (being written alongside, as they
    # usually are): reading every line from the database again costs several times more.
    await linecache.others_written(linecache.LINES, linecache.TIERS)
    if not await stored_tiers_usable(session):
        return None
    raw = await linecache.every_row(session, linecache.LINES)
    raw = raw if raw is not None else await _read_line_rows(session, None, detailed=False)
    tiers = await linecache.every_row(session, linecache.TIERS)
    tiers = tiers if tiers is not None else await _every_lean_tier(session)
    joined = raw.join(tiers, on=["anchor_id", "contracted_supplier_id"], how="left", maintain_order="left")
    if joined["effective_supplier_id"].null_count():
        return None
    engine = _engine_frame(joined.with_columns(buyer_name=pl.lit(None, pl.String)).lazy())
    every = engine.sort("anchor_id", "line_id", maintain_order=True).collect()
    made = every.with_columns(list(_LEAN_NULLS.values())).select(list(_LEAN_NULLS))
    if not every.select(made.columns).equals(made, null_equal=True):
        return None  # never so (lean lines): a safeguard that what is left out is made again the same
    return every.select(list(_ENGINE_SCHEMA))


async def lines_frame(session: AsyncSession, anchor_ids: Sequence[int]) -> pl.DataFrame:
    """Exactly ``socialvalue.metrics.INPUT_SCHEMA``: one row per contract-supplier line bought by these anchors,
    read without the columns only a reviewer reads."""
    frame = await lines_with_details(session, anchor_ids, detailed=False)
    return frame.select(list(INPUT_SCHEMA))


def lines_digest(lines: pl.DataFrame) -> bytes:
    """The content key of the engine's input in these lines (``metrics_for_lines``), to work out once for
    several bases of the same lines: on a large scope it costs a good part of one engine run."""
    return content_digest(lines.select(list(INPUT_SCHEMA)))


def metrics_for_lines(
    lines: pl.DataFrame,
    scope: Scope,
    *,
    basis: str,
    periods: str = "quarter",
    top_n: int = 20,
    digest: bytes | None = None,
) -> MetricsResult:
    """The engine's figures for these lines, remembered by their exact content: the engine is a pure function
    whose cost is mostly fixed (about 50 ms of polars steps even for a handful of lines), and every workspace
    page asks for the same figures as the last one until the data changes. ``digest``: ``lines_digest(lines)``,
    when already known."""
    basis_value: Basis = "spread" if basis == "spread" else "paid" if basis == "paid" else "awarded"
    period_value: PeriodKind = "year" if periods == "year" else "quarter"
    # the engine needs at least one anchor per scope; an empty "all" scope simply has no lines
    anchors = scope.anchor_ids or (0,)
    inputs = lines.select(list(INPUT_SCHEMA))
    key = (digest or content_digest(inputs), scope.key, anchors, basis_value, period_value, top_n)
    return _results.get_or_compute(
        key,
        lambda: compute_metrics(
            inputs, basis=basis_value, scopes={scope.key: anchors}, periods=period_value, top_n=top_n
        ),
    )


async def metrics_off_loop(
    lines: pl.DataFrame,
    scope: Scope,
    *,
    basis: str,
    periods: str = "quarter",
    top_n: int = 20,
    digest: bytes | None = None,
) -> MetricsResult:
    """``metrics_for_lines`` in an engine thread: a request's event loop goes on serving others meanwhile (a large
    scope's figures take hundreds of milliseconds), and computations asked for together run side by side, as polars
    lets go of the GIL."""
    work = partial(metrics_for_lines, lines, scope, basis=basis, periods=periods, top_n=top_n, digest=digest)
    return await in_engine_thread(work)


# Two: the computations of one answer that run side by side (both bases; the paid figures and what they rest on).
# More would only hold more memory at once (a large scope's computation takes hundreds of megabytes), as polars
# already spreads each over every core; others wait.
_ENGINE_THREADS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="metrics-engine")


async def in_engine_thread(work: Callable[[], T]) -> T:
    return await asyncio.get_running_loop().run_in_executor(_ENGINE_THREADS, work)
