"""The payment lines behind a scope on the ``paid`` basis, shaped like contract lines for the metrics engine.

A payment line is placed on its payment date (or, without one, on the first day of the month it was published
for), like an award on the awarded basis. Payees that are not (yet) suppliers still count, always as
"unknown" (location and status), so the unknown share shows what is not known rather than hiding it:

* redacted lines share one stand-in payee, ``REDACTED_SUPPLIER_ID`` (0), never named and never matched;
* payees waiting for review (or rejected) each get their own stand-in, minus their payee-match id.

Supplier counts leave the redacted stand-in out (``adjust_for_redacted``); redacted value is reported as its own
line (``PaidFacts``). The influenceable view leaves out payments to other public bodies, taxes and pension
schemes (``socialvalue.influenceable``) and says how many lines and how much it left out, by rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import polars as pl
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from procurement.db import fetch_frame
from procurement.metrics import linecache
from procurement.metrics.lines import EXTRA_SCHEMA, buyer_names, id_list, keyed_tiers, stored_tiers
from procurement.suppliers.tiers import stored_tiers_usable
from socialvalue.metrics import INPUT_SCHEMA
from socialvalue.periods import (
    financial_year_label_expr,
    parse_financial_year,
    quarter_bounds,
    quarter_from_index,
    quarter_index,
    quarter_label_expr,
)

REDACTED_SUPPLIER_ID = 0
REDACTED_NAME = "Redacted payee (not named by the publisher)"
_UNMATCHED_OFFSET = 10**12  # stand-ins for a line whose payee has no match row: -(offset + line id)

PAID_EXTRA_SCHEMA: dict[str, pl.DataType] = {
    "file_id": pl.Int64(),
    "row_number": pl.Int64(),
    "transaction_number": pl.String(),
    "redacted": pl.Boolean(),
    "influenceable": pl.Boolean(),
    "not_influenceable_rule": pl.String(),
}

INFLUENCEABLE_LABEL = (
    "Influenceable spend only: payments to other public bodies (NHS bodies, councils, central government), "
    "taxes and pension schemes are left out of these figures; the lines and value left out are shown."
)


_PAYMENT_SCHEMA: dict[str, Any] = {
    "line_id": pl.Int64,
    "file_id": pl.Int64,
    "anchor_id": pl.Int64,
    "matched_supplier_id": pl.Int64,
    "payee_match_id": pl.Int64,
    "payee_name": pl.String,
    "value_pence": pl.Int64,
    "currency": pl.String,
    "payment_date": pl.Date,
    "month": pl.String,
    "redacted": pl.Boolean,
    "transaction_number": pl.String,
    "influenceable": pl.Boolean,
    "not_influenceable_rule": pl.String,
}
# What only a reviewer reads beside a line (the contract title made of them); the lean read leaves them out.
_DETAIL_SCHEMA: dict[str, Any] = {"row_number": pl.Int64, "expense_type": pl.String}
# A named payee that is no supplier (yet): the only lines whose payee match and name are read.
_STAND_IN = "p.supplier_id IS NULL AND NOT p.redacted"


async def _payment_rows(
    session: AsyncSession, anchor_ids: Sequence[int], *, detailed: bool, by_anchor: bool = False
) -> tuple[pl.DataFrame, str | None]:
    """The payment lines of the active files of these anchors, in line order (``by_anchor``: in (anchor, line)
    order); the lean ones from the copy of every lean payment line on disk when there is one for the lines as they
    are (``linecache``). And that copy's token (None: read from the database)."""
    if detailed:
        return await _read_payment_rows(session, anchor_ids, detailed=True), None
    found = await linecache.scope_rows(session, linecache.PAYMENTS, anchor_ids)
    if found.rows is not None:
        # The copy is in anchor order; a scope of several anchors keeps line order, as read from the database.
        return found.rows if by_anchor else found.rows.sort("line_id"), found.token
    rows = await _read_payment_rows(session, anchor_ids, detailed=False)
    linecache.copy_later((await session.connection()).engine.url, found, _every_lean_payment)
    return rows.sort("anchor_id", "line_id") if by_anchor else rows, None


async def _every_lean_payment(session: AsyncSession) -> pl.DataFrame:
    """What the copy of the payment lines on disk holds: every anchor's lean lines, in (anchor, line) order (which
    ``linecache`` reads a scope's rows by)."""
    return (await _read_payment_rows(session, None, detailed=False)).sort("anchor_id", "line_id")


async def _read_payment_rows(
    session: AsyncSession, anchor_ids: Sequence[int] | None, *, detailed: bool
) -> pl.DataFrame:
    """The payment lines of the active files read from the database (``anchor_ids`` None: of every anchor), as
    columns, in line order (``detailed``: with each line's row number, expense type and file name too).

    Only what is used is read: the payee match and name of stand-ins alone (a lookup and a string per line
    otherwise), the month only where there is no payment date; the files are read apart and joined here."""
    details = ", p.row_number, p.expense_type" if detailed else ""
    where = "" if anchor_ids is None else f"WHERE {await _anchor_filter(session, anchor_ids)}"
    files_where = "" if anchor_ids is None else f"f.anchor_id IN ({id_list(anchor_ids)}) AND "
    sql = f"""
    SELECT p.id, p.file_id, p.anchor_id, p.supplier_id,
        CASE WHEN {_STAND_IN} THEN (SELECT pm.id FROM payee_match pm
            WHERE pm.anchor_id = p.anchor_id AND pm.payee_key = p.payee_key) END,
        CASE WHEN {_STAND_IN} THEN p.payee_name END,
        p.amount_pence, p.currency, p.payment_date, CASE WHEN p.payment_date IS NULL THEN p.month END, p.redacted,
        p.transaction_number, p.influenceable, p.not_influenceable_rule{details}
    FROM payment_line p
    {where}"""  # noqa: S608 (only integers made here and fixed words)
    schema = {**_PAYMENT_SCHEMA, **(_DETAIL_SCHEMA if detailed else {})}
    lines = cast(pl.DataFrame, await fetch_frame(session, sql, schema))
    files_sql = f"""
    SELECT f.id, f.source_name FROM spend_file f
    WHERE {files_where}f.status = 'active'"""  # noqa: S608 (as above)
    files = cast(pl.DataFrame, await fetch_frame(session, files_sql, {"file_id": pl.Int64, "source_name": pl.String}))
    if not detailed:
        lines = lines.with_columns([pl.lit(None, v).alias(k) for k, v in _DETAIL_SCHEMA.items()])
        files = files.with_columns(source_name=pl.lit(None, pl.String))
    # Lines of a replaced file are deleted with it; the join still keeps to active files, as the service reads.
    return lines.join(files, on="file_id", how="inner", maintain_order="left").sort("line_id")


# Share of all payment lines from which reading every line beats looking a scope's up by anchor (SQLite): 1/20.
_SCAN_SHARE = 20


async def _anchor_filter(session: AsyncSession, anchor_ids: Sequence[int]) -> str:
    """``p.anchor_id IN (...)``; on SQLite, for a scope holding more than a few per cent of the lines, written so
    that SQLite scans the table in order (``+p.anchor_id``) instead of reading each line at random through the
    anchor index. SQLite has no statistics to choose by; PostgreSQL chooses well itself."""
    ids = id_list(anchor_ids)
    if (await session.connection()).dialect.name != "sqlite":
        return f"p.anchor_id IN ({ids})"
    # Counted from the files' own line counts: counting the lines themselves costs a good part of reading them.
    counted = f"""
    SELECT sum(CASE WHEN anchor_id IN ({ids}) THEN line_count ELSE 0 END), sum(line_count)
    FROM spend_file WHERE status = 'active'"""  # noqa: S608 (only integers made here)
    scope, every = (await session.execute(text(counted))).one()
    scan = bool(scope) and scope * _SCAN_SHARE >= (every or 0)
    return f"+p.anchor_id IN ({ids})" if scan else f"p.anchor_id IN ({ids})"


async def payment_lines_with_details(
    session: AsyncSession,
    anchor_ids: Sequence[int],
    *,
    from_scratch: bool = False,
    refresh: bool = False,
    detailed: bool = True,
) -> pl.DataFrame:
    """``INPUT_SCHEMA`` + ``EXTRA_SCHEMA`` + ``PAID_EXTRA_SCHEMA``: one row per payment line of the active files, in
    line order.

    Without ``detailed``, the columns only a reviewer reads (the line's row in its file, the title made of file,
    row and expense type, and the stored tiers' method, confidence and reason) are null, and the stored tiers
    come from their copy on disk when there is one: the engine's columns and those ``paid_facts`` reads are the
    same either way. The lines then come by anchor (each anchor's in line order), as the copies hold them: the
    figures do not depend on the order of different anchors' lines (the engine orders lines by anchor and
    supplier, keeping their order within one anchor), and putting a scope's lines back in line order costs as
    much as reading them."""
    frame, _key = await keyed_payment_lines(
        session, anchor_ids, from_scratch=from_scratch, refresh=refresh, detailed=detailed
    )
    return frame


async def keyed_payment_lines(
    session: AsyncSession,
    anchor_ids: Sequence[int],
    *,
    from_scratch: bool = False,
    refresh: bool = False,
    detailed: bool = True,
    figures_only: bool = False,
) -> tuple[pl.DataFrame, bytes | None]:
    """``payment_lines_with_details``, and a key for its engine columns when they are made of the copies on disk
    alone (payment lines and stored tiers, none judged on the fly), as ``lines.keyed_lines`` gives for contract
    lines. None: work the digest out. ``figures_only`` (lean): only the columns the figures are made of
    (``FIGURE_SCHEMA``: the engine's and ``paid_facts``'s), the others not read.

    The lean lines come whole from the copy of every line's engine columns (``linecache.PAID``, keyed by the
    payments and tiers tokens) when there is one, the buyer names alone looked up here: the join to the tiers and
    the columns made of both cost several times reading them."""
    figures_only = figures_only and not detailed
    schema = FIGURE_SCHEMA if figures_only else _SCHEMA
    if not detailed and not from_scratch:
        # No copy (token None) while the stored tiers were built with other rules: they are judged below then.
        stored = [k for k in schema if k not in _LEAN_CONSTANTS and k != "buyer_name"]
        found = await linecache.scope_rows(session, linecache.PAID, anchor_ids, stored)
        if found.rows is not None and found.token is not None:
            if found.rows.height == 0:
                return pl.DataFrame(schema=schema), None
            rows = found.rows.lazy().with_columns(**{k: v for k, v in _LEAN_CONSTANTS.items() if k in schema})
            copied = found.token.split("-")  # the payments and tiers tokens
            key = _key(copied[0], copied[1], anchor_ids)
            if figures_only:
                return rows.select([pl.col(k).cast(v) for k, v in schema.items()]).collect(), key
            return await _with_buyer_names(session, rows, anchor_ids), key
        linecache.copy_later((await session.connection()).engine.url, found, _every_paid_line)
    raw, payments_token = await _payment_rows(session, anchor_ids, detailed=detailed, by_anchor=not detailed)
    if raw.height == 0:
        return pl.DataFrame(schema=schema), None
    # Stand-ins (redacted: 0, unmatched: negative) match no stored pair, so they stay unknown.
    joined, tiers_token = await keyed_tiers(
        session, _with_stand_ins(raw), anchor_ids, from_scratch=from_scratch, refresh=refresh, detailed=detailed
    )
    frame = await _with_buyer_names(session, _engine_columns(joined.lazy()), anchor_ids)
    frame = frame.select(list(schema))
    if payments_token is None or tiers_token is None:
        return frame, None
    return frame, _key(payments_token, tiers_token, anchor_ids)


_SCHEMA = {**INPUT_SCHEMA, **EXTRA_SCHEMA, **PAID_EXTRA_SCHEMA}
# What the figures are made of: the engine's input and what ``paid_facts`` reads.
FIGURE_SCHEMA = {
    **INPUT_SCHEMA,
    **{k: _SCHEMA[k] for k in ("file_id", "transaction_number", "influenceable", "redacted", "not_influenceable_rule")},
}


def _key(payments_token: str, tiers_token: str, anchor_ids: Sequence[int]) -> bytes:
    # The buyer names beside the lines are no engine column. Longer than any content digest, so never equal to one.
    return f"payments:{payments_token}:{tiers_token}:{list(anchor_ids)}".encode()


def _with_stand_ins(raw: pl.DataFrame) -> pl.DataFrame:
    """Each line's contracted supplier: its payee's supplier, or a stand-in (see the module's notes)."""
    stand_in = (
        pl.when(pl.col("redacted"))
        .then(pl.lit(REDACTED_SUPPLIER_ID, pl.Int64))
        .when(pl.col("payee_match_id").is_not_null())
        .then(-pl.col("payee_match_id"))
        .otherwise(-(_UNMATCHED_OFFSET + pl.col("line_id")))
    )
    return raw.with_columns(
        contracted_supplier_id=pl.coalesce(pl.when(~pl.col("redacted")).then(pl.col("matched_supplier_id")), stand_in)
    )


def _engine_columns(joined: pl.LazyFrame) -> pl.LazyFrame:
    """The lines with their tiers (``keyed_tiers``) as ``_SCHEMA`` but for the buyer name: what the copy holds."""
    month_start = (pl.col("month") + "-01").str.to_date("%Y-%m-%d", strict=False)
    title = pl.concat_str([pl.col("source_name"), pl.lit(" row "), pl.col("row_number").cast(pl.String)]) + pl.when(
        pl.col("expense_type").is_not_null()
    ).then(pl.lit(": ") + pl.col("expense_type")).otherwise(pl.lit(""))
    return (
        joined.rename({"supplier_name": "master_name"})
        .with_columns(supplier_id=pl.coalesce("effective_supplier_id", "contracted_supplier_id"))
        .with_columns(
            contract_id=pl.col("file_id"),
            supplier_name=pl.when(pl.col("redacted"))
            .then(pl.lit(REDACTED_NAME))
            .when(pl.col("supplier_id") < 0)
            .then(pl.col("payee_name") + " (payee not yet matched to a supplier)")
            .otherwise(pl.col("master_name")),
            award_date=pl.coalesce("payment_date", month_start),
            start_date=pl.lit(None, pl.Date),
            end_date=pl.lit(None, pl.Date),
            cpv_code=pl.lit(None, pl.String),
            status=pl.lit("active"),
            tier=pl.col("tier").fill_null("unknown"),
            category=pl.col("category").fill_null("unknown"),
            tier_method=pl.when(pl.col("redacted"))
            .then(pl.lit("redacted"))
            .when(pl.col("supplier_id") < 0)
            .then(pl.lit("payee not matched"))
            .otherwise(pl.col("tier_method")),
            contract_title=title,
            share_basis=pl.when(pl.col("redacted")).then(pl.lit("paid, redacted")).otherwise(pl.lit("paid")),
        )
        .select([pl.col(k).cast(v) for k, v in _SCHEMA.items() if k != "buyer_name"])
    )


async def _with_buyer_names(session: AsyncSession, lines: pl.LazyFrame, anchor_ids: Sequence[int]) -> pl.DataFrame:
    # Looked up in a column of its own: a join would copy every line's every column again. One lazy pass.
    names = await buyer_names(session, anchor_ids)
    ids, named = names["anchor_id"], names["buyer_name"]
    buyer = (
        pl.col("anchor_id").replace_strict(ids, named, default=None, return_dtype=pl.String)
        if names.height
        else pl.lit(None, pl.String)
    )
    return lines.with_columns(buyer_name=buyer).select([pl.col(k).cast(v) for k, v in _SCHEMA.items()]).collect()


# The columns that are the same on every lean line (null, or a constant): not stored in the copy, made on reading.
_LEAN_CONSTANTS: dict[str, pl.Expr] = {
    k: pl.lit(None, _SCHEMA[k])
    for k in ("start_date", "end_date", "cpv_code", "contract_title", "row_number", "tier_confidence", "tier_reason")
} | {"status": pl.lit("active", pl.String)}


async def _every_paid_line(session: AsyncSession) -> pl.DataFrame | None:
    """What the copy of the paid basis's engine lines holds: every lean payment line of every anchor with its stored
    tier, in (anchor, line) order (which ``linecache`` reads a scope's rows by), but for the buyer names and the
    columns the same on every line. None when a line's pair has no stored tier (judged on each read) or the stored
    tiers were built with other rules."""
    # Made of the copies of the payment lines and stored tiers when they are there (being written alongside, as
    # they usually are): reading every line from the database again costs several times more.
    await linecache.others_written(linecache.PAYMENTS, linecache.TIERS)
    if not await stored_tiers_usable(session):
        return None
    payments = await linecache.every_row(session, linecache.PAYMENTS)
    raw = _with_stand_ins(payments if payments is not None else await _read_payment_rows(session, None, detailed=False))
    tiers = await linecache.every_row(session, linecache.TIERS)
    tiers = tiers if tiers is not None else await stored_tiers(session, None, detailed=False)
    joined = raw.join(tiers, on=["anchor_id", "contracted_supplier_id"], how="left", maintain_order="left")
    if joined.filter((pl.col("contracted_supplier_id") > 0) & pl.col("effective_supplier_id").is_null()).height:
        return None
    every = _engine_columns(joined.lazy()).sort("anchor_id", "line_id").collect()
    made = every.with_columns(**_LEAN_CONSTANTS).select(list(_LEAN_CONSTANTS))
    if not every.select(made.columns).equals(made, null_equal=True):
        return None  # never so (lean lines): a safeguard that what is left out is made again the same
    return every.drop(made.columns)


def influenceable_only(details: pl.DataFrame) -> pl.DataFrame:
    return details.filter(pl.col("influenceable"))


@dataclass(frozen=True)
class PaidFacts:
    """What the paid figures of one period rest on, beside the engine's figures."""

    period: str
    lines: int
    transactions: int
    redacted_lines: int
    redacted_pence: int
    influenceable_only: bool
    left_out_lines: int = 0
    left_out_pence: int = 0
    left_out_by_rule: dict[str, int] = field(default_factory=dict)  # rule -> pence
    months: list[str] = field(default_factory=list)


def _period_key(periods: str) -> pl.Expr:
    """The period of each line by number (quarter, or financial year); its label is made once per period."""
    from socialvalue.periods import quarter_index_expr

    index = quarter_index_expr(pl.col("award_date"))
    return index if periods == "quarter" else index // 4


def _period_label(periods: str, key: pl.Expr) -> pl.Expr:
    return quarter_label_expr(key) if periods == "quarter" else financial_year_label_expr(key)


def _wanted_keys(periods: str, wanted: Sequence[str]) -> pl.DataFrame | None:
    """The period keys of the labels asked for (period_key, period), so only their lines are read on; None when a
    label is not one the lines' keys are labelled by (then the labels are matched as before, to none)."""
    try:
        found = [quarter_index(w) if periods == "quarter" else parse_financial_year(w) for w in wanted]
    except ValueError:
        return None
    keys = pl.DataFrame({"period_key": found}, schema={"period_key": pl.Int64}).with_columns(
        period=_period_label(periods, pl.col("period_key"))
    )
    return keys.unique("period_key", maintain_order=True) if keys["period"].to_list() == list(wanted) else None


def _within(periods: str, keys: pl.DataFrame) -> pl.Expr:
    """Whether a line is dated from the first period asked for to the last: only those are keyed by period (a
    date's period costs more than comparing it, and a period asked for is usually a small part of the lines)."""
    if keys.height == 0:
        return pl.lit(False)
    quarters = 1 if periods == "quarter" else 4
    wanted: list[int] = keys["period_key"].to_list()
    try:
        low = quarter_bounds(quarter_from_index(min(wanted) * quarters))[0]
        high = quarter_bounds(quarter_from_index((max(wanted) + 1) * quarters))[0]
    except ValueError:  # beyond the dates a period label can name: every line is keyed
        return pl.lit(True)
    return (pl.col("award_date") >= low) & (pl.col("award_date") < high)


def paid_facts(
    details: pl.DataFrame, *, periods: str, influenceable: bool, wanted: Sequence[str] | None = None
) -> list[PaidFacts]:
    """Per period: lines, transactions (split lines of one number count once), redacted lines and value, and
    (in the influenceable view) what was left out and by which rule. ``details`` is every line, before the view."""
    used = ["award_date", "currency", "value_pence", "file_id", "transaction_number", "influenceable", "redacted",
            "not_influenceable_rule"]  # fmt: skip
    # The lines the engine counts (dated, in pounds, with an amount), so these facts agree with its figures. Only
    # the columns read here are filtered (names and titles would be copied for nothing), and each period's label
    # is made once, not once per line.
    keys = _wanted_keys(periods, wanted) if wanted is not None else None
    dated = (
        details.lazy()
        .select(used)
        .filter(
            pl.col("award_date").is_not_null()
            & (pl.col("currency") == "GBP")
            & pl.col("value_pence").is_not_null()
            & (pl.lit(True) if keys is None else _within(periods, keys))
        )
        .with_columns(period_key=_period_key(periods))
    )
    if keys is None:
        dated_now = dated.collect()
        keys = dated_now.select(pl.col("period_key").unique()).with_columns(
            period=_period_label(periods, pl.col("period_key"))
        )
        if wanted is not None:
            keys = keys.filter(pl.col("period").is_in(list(wanted)))
        dated = dated_now.lazy()
    labels = list(wanted) if wanted is not None else sorted(keys["period"].to_list())
    # The transaction keys only for the periods asked for; every figure of every period in one pass.
    periods_lines = dated.join(keys.lazy(), on="period_key", how="inner", maintain_order="left").with_columns(
        transaction=pl.concat_str([pl.col("file_id").cast(pl.String), pl.col("transaction_number")], separator=":"),
        kept=pl.col("influenceable") if influenceable else pl.lit(True),
    )
    kept, value, numbered = pl.col("kept"), pl.col("value_pence"), pl.col("transaction").is_not_null()
    redacted = kept & pl.col("redacted")
    figures, by_rule = pl.collect_all(
        [
            periods_lines.group_by("period").agg(
                lines=kept.sum(),
                # Split lines of one transaction number count once; a line without a number is its own transaction.
                numbered=pl.col("transaction").filter(kept & numbered).n_unique(),
                unnumbered=(kept & ~numbered).sum(),
                redacted_lines=redacted.sum(),
                redacted_pence=value.filter(redacted).sum(),
                left_out_lines=(~kept).sum(),
                left_out_pence=value.filter(~kept).sum(),
                # Each month written once, not once per line.
                months=pl.col("award_date").filter(kept).dt.month_start().unique().dt.strftime("%Y-%m"),
            ),
            periods_lines.filter(~kept)
            .group_by("period", "not_influenceable_rule")
            .agg(pl.col("value_pence").sum())
            .sort("period", "not_influenceable_rule"),
        ]
    )
    rules: dict[str, dict[str, int]] = {}
    for period, rule, pence in by_rule.iter_rows():
        rules.setdefault(period, {})[str(rule)] = int(pence)
    found = {r["period"]: r for r in figures.iter_rows(named=True)}
    out = []
    for label in labels:
        f = found.get(label)
        out.append(
            PaidFacts(
                period=label,
                lines=int(f["lines"]) if f else 0,
                transactions=int(f["numbered"] + f["unnumbered"]) if f else 0,
                redacted_lines=int(f["redacted_lines"]) if f else 0,
                redacted_pence=int(f["redacted_pence"] or 0) if f else 0,
                influenceable_only=influenceable,
                left_out_lines=int(f["left_out_lines"]) if f else 0,
                left_out_pence=int(f["left_out_pence"] or 0) if f else 0,
                left_out_by_rule=rules.get(label, {}),
                months=sorted({m for m in f["months"] if m is not None}) if f else [],
            )
        )
    return out
