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

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import polars as pl
from sqlalchemy.ext.asyncio import AsyncSession

from procurement.db import fetch_frame
from procurement.metrics.lines import EXTRA_SCHEMA, buyer_names, id_list, with_tiers
from socialvalue.metrics import INPUT_SCHEMA
from socialvalue.periods import financial_year_label_expr, quarter_label_expr

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
    "expense_type": pl.String,
    "row_number": pl.Int64,
    "influenceable": pl.Boolean,
    "not_influenceable_rule": pl.String,
    "source_name": pl.String,
}


async def _payment_rows(session: AsyncSession, anchor_ids: Sequence[int]) -> pl.DataFrame:
    """The payment lines of the active files with the stored tier of each named payee, read as columns."""
    sql = f"""
    SELECT p.id, p.file_id, p.anchor_id, p.supplier_id, pm.id, p.payee_name, p.amount_pence, p.currency,
        p.payment_date, p.month, p.redacted, p.transaction_number, p.expense_type, p.row_number, p.influenceable,
        p.not_influenceable_rule, f.source_name
    FROM payment_line p JOIN spend_file f ON f.id = p.file_id
    LEFT JOIN payee_match pm ON pm.anchor_id = p.anchor_id AND pm.payee_key = p.payee_key
    WHERE p.anchor_id IN ({id_list(anchor_ids)}) AND f.status = 'active'
    ORDER BY p.id"""  # noqa: S608 (only integers made here and fixed words)
    return cast(pl.DataFrame, await fetch_frame(session, sql, _PAYMENT_SCHEMA))


async def payment_lines_with_details(
    session: AsyncSession, anchor_ids: Sequence[int], *, from_scratch: bool = False, refresh: bool = False
) -> pl.DataFrame:
    """``INPUT_SCHEMA`` + ``EXTRA_SCHEMA`` + ``PAID_EXTRA_SCHEMA``: one row per payment line of the active files."""
    schema = {**INPUT_SCHEMA, **EXTRA_SCHEMA, **PAID_EXTRA_SCHEMA}
    raw = await _payment_rows(session, anchor_ids)
    if raw.height == 0:
        return pl.DataFrame(schema=schema)
    stand_in = (
        pl.when(pl.col("redacted"))
        .then(pl.lit(REDACTED_SUPPLIER_ID, pl.Int64))
        .when(pl.col("payee_match_id").is_not_null())
        .then(-pl.col("payee_match_id"))
        .otherwise(-(_UNMATCHED_OFFSET + pl.col("line_id")))
    )
    raw = raw.with_columns(
        contracted_supplier_id=pl.coalesce(pl.when(~pl.col("redacted")).then(pl.col("matched_supplier_id")), stand_in)
    )
    # Stand-ins (redacted: 0, unmatched: negative) match no stored pair, so they stay unknown.
    joined = await with_tiers(session, raw, anchor_ids, from_scratch=from_scratch, refresh=refresh)
    names = await buyer_names(session, anchor_ids)
    joined = joined.join(names, on="anchor_id", how="left", maintain_order="left").rename(
        {"supplier_name": "master_name"}
    )
    joined = joined.with_columns(supplier_id=pl.coalesce("effective_supplier_id", "contracted_supplier_id"))
    month_start = (pl.col("month") + "-01").str.to_date("%Y-%m-%d", strict=False)
    frame = joined.with_columns(
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
        contract_title=pl.concat_str([pl.col("source_name"), pl.lit(" row "), pl.col("row_number").cast(pl.String)])
        + pl.when(pl.col("expense_type").is_not_null())
        .then(pl.lit(": ") + pl.col("expense_type"))
        .otherwise(pl.lit("")),
        share_basis=pl.when(pl.col("redacted")).then(pl.lit("paid, redacted")).otherwise(pl.lit("paid")),
    )
    return frame.select([pl.col(k).cast(v) for k, v in schema.items()])


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


def _period_expr(periods: str) -> pl.Expr:
    from socialvalue.periods import quarter_index_expr

    index = quarter_index_expr(pl.col("award_date"))
    return quarter_label_expr(index) if periods == "quarter" else financial_year_label_expr(index // 4)


def paid_facts(
    details: pl.DataFrame, *, periods: str, influenceable: bool, wanted: Sequence[str] | None = None
) -> list[PaidFacts]:
    """Per period: lines, transactions (split lines of one number count once), redacted lines and value, and
    (in the influenceable view) what was left out and by which rule. ``details`` is every line, before the view."""
    from importers.spend import transaction_count

    # The lines the engine counts (dated, in pounds, with an amount), so these facts agree with its figures.
    dated = details.filter(
        pl.col("award_date").is_not_null() & (pl.col("currency") == "GBP") & pl.col("value_pence").is_not_null()
    ).with_columns(
        period=_period_expr(periods),
        transaction=pl.concat_str([pl.col("file_id").cast(pl.String), pl.col("transaction_number")], separator=":"),
    )
    labels = list(wanted) if wanted is not None else sorted(set(dated["period"].to_list()))
    out = []
    for label in labels:
        part = dated.filter(pl.col("period") == label)
        kept = part.filter(pl.col("influenceable")) if influenceable else part
        left = part.filter(~pl.col("influenceable")) if influenceable else part.clear()
        by_rule = (
            left.group_by("not_influenceable_rule").agg(pl.col("value_pence").sum()).sort("not_influenceable_rule")
        )
        redacted = kept.filter(pl.col("redacted"))
        out.append(
            PaidFacts(
                period=label,
                lines=kept.height,
                transactions=transaction_count(kept.select("transaction")),
                redacted_lines=redacted.height,
                redacted_pence=int(redacted["value_pence"].sum() or 0),
                influenceable_only=influenceable,
                left_out_lines=left.height,
                left_out_pence=int(left["value_pence"].sum() or 0),
                left_out_by_rule={str(r): int(v) for r, v in by_rule.iter_rows()},
                months=sorted({d.strftime("%Y-%m") for d in kept["award_date"].to_list() if isinstance(d, dt.date)}),
            )
        )
    return out
