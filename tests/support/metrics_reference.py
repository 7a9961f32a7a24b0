# FROZEN copy of socialvalue/metrics.py from before the performance rework; only tests/test_metrics_equivalence.py
# uses it, as the reference the optimised module must match frame for frame. Do not edit.
"""Local-spend metrics per scope (anchor, group of anchors, all) and UK financial-year period.

Pure polars: one frame of contract-supplier lines in (``INPUT_SCHEMA``), a ``MetricsResult`` out.

Rules, in the order they are applied:

* Exclusions. Each excluded line is counted once, under the first reason that applies:
  ``withdrawn`` (status), ``non_gbp`` (currency not "GBP", or missing; never converted), ``no_value``
  (value_pence null), ``no_date`` (neither a usable start..end period nor an award date). Both bases
  include exactly the same lines, so their grand totals agree.
* Bases. ``awarded``: the whole value falls in the period of award_date; a line without award_date but
  with a usable period falls on start_date and is flagged ``award_fallback``. ``spread``: the value is
  split pro rata by day over start_date..end_date (both inclusive) into quarters, in integer pence by the
  largest-remainder rule (each part gets floor(value * days / total_days); the pence left over go one each
  to the parts with the largest remainders, ties to the earliest quarter), so the parts of a line sum to
  its value exactly. A line with no usable period (start or end missing, or end < start) stays whole on
  award_date and is flagged ``spread_fallback``.
* Years. Financial-year figures are the sums of the line's quarterly parts, so a year always equals the
  sum of its four quarters (on the spread basis no separate rounding is done per year).
* Scopes. Tier is judged per line against that line's own anchor, so every money figure of a group is
  exactly the sum of its members' figures. Counts of distinct suppliers are not additive: a supplier
  serving two members is counted once in the group.
* Suppliers. A supplier counts in a tier or category in a period if any of its lines there has it (so
  in a group a supplier can be local to one member and regional to another, and appear in both). Its
  SME / VCSE / social-enterprise status for counting is True if any line says True, else unknown if
  any line is null, else False.
* Shares are Float64, each one integer pence (or count) divided by another, unrounded; they are null
  when the denominator is 0. ``*_share_known`` divides by the value (or suppliers) whose status is
  known. Changes in share are percentage points, ``(share - prior share) * 100``.
* Periods. Each scope gets every period from the earliest to the latest period in the included data,
  empty ones with zero money. Prior-period columns are null when the prior period is before the data.
  ``new_local_suppliers`` counts local suppliers with no local line for that scope in any earlier period
  of the data (so in the first period of the data every local supplier is new).
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import polars as pl

from socialvalue.periods import (
    financial_year_label_expr,
    quarter_index_expr,
    quarter_label_expr,
    quarter_start_expr,
)

Basis = Literal["awarded", "spread"]
PeriodKind = Literal["quarter", "year"]

TIERS: tuple[str, ...] = ("local", "regional", "rest_of_uk", "outside_uk", "unknown")
CATEGORIES: tuple[str, ...] = (
    "charity",
    "cic",
    "cio",
    "registered_society",
    "other_vcse",
    "sme",
    "large",
    "unknown",
)
FLAGS: tuple[str, ...] = ("sme", "vcse", "social_enterprise")
STATUSES: tuple[str, ...] = ("active", "withdrawn")
EXCLUSION_REASONS: tuple[str, ...] = ("withdrawn", "non_gbp", "no_value", "no_date")
ALL_SCOPE = "all"

INPUT_SCHEMA: dict[str, pl.DataType] = {
    "line_id": pl.Int64(),
    "contract_id": pl.Int64(),
    "anchor_id": pl.Int64(),
    "supplier_id": pl.Int64(),
    "supplier_name": pl.String(),
    "value_pence": pl.Int64(),
    "currency": pl.String(),
    "award_date": pl.Date(),
    "start_date": pl.Date(),
    "end_date": pl.Date(),
    "cpv_code": pl.String(),
    "tier": pl.String(),
    "category": pl.String(),
    "sme": pl.Boolean(),
    "vcse": pl.Boolean(),
    "social_enterprise": pl.Boolean(),
    "status": pl.String(),
}

_INT64_MAX = 2**63 - 1
_KEY = ["scope", "period_key"]


@dataclass(frozen=True)
class MetricsResult:
    """Every frame carries scope, period (label), basis; money is Int64 pence.

    ``lines`` is one row per included line and quarter it touches (its allocated pence there), keyed by
    anchor_id rather than scope so that a line is not copied once per scope; ``scope_anchors`` says which
    anchors each scope holds and ``lines_for_scope`` gives the rows behind one scope's figures.
    ``excluded`` is one row per excluded line, scope and period it would have fallen in (period null for
    ``no_date``).
    """

    basis: str
    periods: str
    summary: pl.DataFrame
    by_tier: pl.DataFrame
    by_category: pl.DataFrame
    top_suppliers: pl.DataFrame
    by_cpv_division: pl.DataFrame
    lines: pl.DataFrame
    excluded: pl.DataFrame
    scope_anchors: pl.DataFrame

    def lines_for_scope(self, scope: str) -> pl.DataFrame:
        anchors = self.scope_anchors.filter(pl.col("scope") == scope)
        if anchors.height == 0:
            raise KeyError(f"no scope named {scope!r}")
        return self.lines.join(anchors, on="anchor_id", how="inner").select("scope", *self.lines.columns)


def validate_lines(lines: pl.DataFrame) -> None:
    """Raise ValueError unless the frame has the input schema and known codes."""
    problems = [
        f"{name}: expected {dtype}, got {lines.schema.get(name, 'missing')}"
        for name, dtype in INPUT_SCHEMA.items()
        if lines.schema.get(name) != dtype
    ]
    if problems:
        raise ValueError("lines frame does not match INPUT_SCHEMA: " + "; ".join(problems))
    for column, allowed in (("tier", TIERS), ("category", CATEGORIES), ("status", STATUSES)):
        bad = lines.filter(~pl.col(column).is_in(allowed) | pl.col(column).is_null())[column].unique()
        if bad.len():
            raise ValueError(f"unknown {column} values {bad.to_list()[:5]}; allowed: {allowed}")
    for column in ("line_id", "anchor_id", "supplier_id"):
        if lines[column].null_count():
            raise ValueError(f"{column} must not be null")
    if lines["line_id"].n_unique() != lines.height:
        raise ValueError("line_id must be unique")


def compute_metrics(
    lines: pl.DataFrame,
    *,
    basis: Basis,
    scopes: Mapping[str, Sequence[int]] | None = None,
    periods: PeriodKind = "quarter",
    top_n: int = 20,
) -> MetricsResult:
    """Metrics for every scope x period on one basis.

    ``scopes`` maps a scope name to anchor ids; None means one scope per anchor (named by its id, e.g.
    "12") plus "all".
    """
    if basis not in get_args(Basis):
        raise ValueError(f"basis must be one of {get_args(Basis)}, got {basis!r}")
    if periods not in get_args(PeriodKind):
        raise ValueError(f"periods must be one of {get_args(PeriodKind)}, got {periods!r}")
    if top_n < 1:
        raise ValueError("top_n must be at least 1")
    validate_lines(lines)
    scope_anchors = _scope_frame(lines, scopes)

    prepared = lines.with_columns(
        cpv_division=pl.col("cpv_code").str.extract(r"^(\d{2})\d{6}(?:-\d)?$", 1),
        has_period=(
            pl.col("start_date").is_not_null()
            & pl.col("end_date").is_not_null()
            & (pl.col("end_date") >= pl.col("start_date"))
        ).fill_null(False),
    ).with_columns(
        reason=pl.when(pl.col("status") == "withdrawn")
        .then(pl.lit("withdrawn"))
        .when(pl.col("currency").is_null() | (pl.col("currency") != "GBP"))
        .then(pl.lit("non_gbp"))
        .when(pl.col("value_pence").is_null())
        .then(pl.lit("no_value"))
        .when(~pl.col("has_period") & pl.col("award_date").is_null())
        .then(pl.lit("no_date"))
    )
    included = prepared.filter(pl.col("reason").is_null()).drop("reason")
    excluded_lines = prepared.filter(pl.col("reason").is_not_null())
    _check_overflow(included)

    included = included.with_columns(bits=_bits())
    alloc = _allocate(included, basis).with_columns(period_key=_period_key(periods))
    excluded = _excluded_frame(excluded_lines, basis, periods, scope_anchors)

    grid = _period_grid(pl.concat([alloc["period_key"], excluded["period_key"]]), scope_anchors)
    value_sums, cpv, suppliers = pl.collect_all(
        [
            _value_sums(alloc.lazy(), scope_anchors, periods),
            _cpv_sums(alloc.lazy(), scope_anchors, periods),
            _supplier_frame(alloc.lazy(), scope_anchors),
        ]
    )
    names = included.group_by("supplier_id").agg(pl.col("supplier_name").min())
    supplier_counts, first_local, top = pl.collect_all(
        [
            _supplier_counts(suppliers.lazy()),
            _new_local_counts(suppliers.lazy()),
            _top_suppliers(suppliers.lazy(), top_n).join(names.lazy(), on="supplier_id", how="left"),
        ]
    )
    exclusion_counts = _exclusion_counts(excluded)

    summary = _summary(grid, value_sums, supplier_counts, first_local, exclusion_counts, periods)
    labels = _period_labels(periods)
    with_labels = [pl.col("scope"), labels.alias("period"), pl.lit(basis).alias("basis")]

    summary = summary.with_columns(*with_labels[1:]).select(
        "scope", "period", "basis", pl.exclude("scope", "period", "basis", "period_key")
    )
    by_tier = _long_by(summary, "tier", TIERS, "tier_unknown", lambda t: "tier_unknown" if t == "unknown" else t)
    by_category = _long_by(summary, "category", CATEGORIES, "category_unknown", lambda c: f"category_{c}")
    totals = summary.select("scope", "period", "total_pence")
    top = (
        top.with_columns(*with_labels)
        .join(totals, on=["scope", "period"], how="left")
        .with_columns(share=_ratio(pl.col("value_pence"), pl.col("total_pence")))
        .select(
            "scope",
            "period",
            "basis",
            "rank",
            "supplier_id",
            "supplier_name",
            "tier",
            "category",
            "value_pence",
            "share",
        )
        .sort("scope", "period", "rank")
    )
    by_cpv = (
        cpv.with_columns(*with_labels)
        .join(totals, on=["scope", "period"], how="left")
        .with_columns(
            share=_ratio(pl.col("value_pence"), pl.col("total_pence")),
            local_share=_ratio(pl.col("local_pence"), pl.col("value_pence")),
        )
        .select(
            "scope", "period", "basis", "cpv_division", "lines", "value_pence", "share", "local_pence", "local_share"
        )
        .sort("scope", "period", "cpv_division", nulls_last=True)
    )
    lines_out = alloc.with_columns(
        labels.alias("period"), quarter_label_expr(pl.col("quarter_idx")).alias("quarter"), pl.lit(basis).alias("basis")
    ).select(
        "line_id",
        "contract_id",
        "anchor_id",
        "supplier_id",
        "supplier_name",
        "period",
        "quarter",
        "basis",
        "allocated_pence",
        "days_in_period",
        "days_total",
        "value_pence",
        "spread_fallback",
        "award_fallback",
        "tier",
        "category",
        "sme",
        "vcse",
        "social_enterprise",
        "cpv_division",
        "award_date",
        "start_date",
        "end_date",
    )
    return MetricsResult(
        basis=basis,
        periods=periods,
        summary=summary.sort("scope", "period"),
        by_tier=by_tier,
        by_category=by_category,
        top_suppliers=top,
        by_cpv_division=by_cpv,
        lines=lines_out,
        excluded=excluded.with_columns(period=pl.when(pl.col("period_key").is_not_null()).then(labels))
        .with_columns(pl.lit(basis).alias("basis"))
        .select("scope", "period", "basis", "line_id", "anchor_id", "reason", "currency", "value_pence")
        .sort("scope", "period", "line_id", nulls_last=True),
        scope_anchors=scope_anchors,
    )


def _scope_frame(lines: pl.DataFrame, scopes: Mapping[str, Sequence[int]] | None) -> pl.DataFrame:
    schema = {"scope": pl.String, "anchor_id": pl.Int64}
    if scopes is None:
        anchors = lines["anchor_id"].unique().sort()
        own = pl.DataFrame({"scope": anchors.cast(pl.String), "anchor_id": anchors}, schema=schema)
        everyone = pl.DataFrame({"scope": ALL_SCOPE, "anchor_id": anchors}, schema=schema)
        return pl.concat([own, everyone])
    rows = [(name, int(a)) for name, ids in scopes.items() for a in ids]
    if any(not name for name, _ in rows) or any(not ids for ids in scopes.values()):
        raise ValueError("every scope needs a non-empty name and at least one anchor id")
    # A repeated anchor id would count its lines twice.
    return pl.DataFrame(rows, schema=schema, orient="row").unique(maintain_order=True)


def _check_overflow(included: pl.DataFrame) -> None:
    if included.height == 0:
        return
    biggest = included["value_pence"].abs().max()
    span = included.select((pl.col("end_date") - pl.col("start_date")).dt.total_days().max()).item()
    days = (span or 0) + 1
    if isinstance(biggest, int) and biggest * days > _INT64_MAX:
        raise ValueError("value_pence x contract days would overflow Int64; split such a line first")


_BIT = {
    **{f"tier_{t}": i for i, t in enumerate(TIERS)},
    **{f"category_{c}": len(TIERS) + i for i, c in enumerate(CATEGORIES)},
    **{f"{f}_{state}": len(TIERS) + len(CATEGORIES) + 2 * i + j for i, f in enumerate(FLAGS) for j, state in
       enumerate(("true", "null"))},
}  # fmt: skip


def _bits() -> pl.Expr:
    """One Int32 bit set per line: its tier, its category, and which flags are True / unknown."""
    parts = [
        *[pl.when(pl.col("tier") == t).then(1 << _BIT[f"tier_{t}"]).otherwise(0) for t in TIERS],
        *[pl.when(pl.col("category") == c).then(1 << _BIT[f"category_{c}"]).otherwise(0) for c in CATEGORIES],
        *[pl.when(pl.col(f)).then(1 << _BIT[f"{f}_true"]).otherwise(0) for f in FLAGS],
        *[pl.when(pl.col(f).is_null()).then(1 << _BIT[f"{f}_null"]).otherwise(0) for f in FLAGS],
    ]
    return pl.sum_horizontal(parts).cast(pl.Int32)


def _has(bit: str, column: str = "bits") -> pl.Expr:
    return (pl.col(column) & (1 << _BIT[bit])) != 0


_LINE_COLUMNS = [
    "line_id", "contract_id", "anchor_id", "supplier_id", "supplier_name", "value_pence", "tier", "category", "sme",
    "vcse", "social_enterprise", "cpv_division", "award_date", "start_date", "end_date", "bits", "has_period",
]  # fmt: skip


def _allocate(included: pl.DataFrame, basis: Basis) -> pl.DataFrame:
    """One row per line and quarter with its allocated pence (see module docstring)."""
    if basis == "awarded":
        return included.select(
            _LINE_COLUMNS,
            quarter_idx=quarter_index_expr(
                pl.coalesce("award_date", pl.when(pl.col("has_period")).then(pl.col("start_date")))
            ),
            allocated_pence=pl.col("value_pence"),
            days_in_period=pl.lit(None, pl.Int64),
            days_total=pl.lit(None, pl.Int64),
            spread_fallback=pl.lit(False),
            award_fallback=pl.col("award_date").is_null(),
            first_in_year=pl.lit(True),
        )
    parts = _spread_parts(included)
    lines = included.select(_LINE_COLUMNS, spread_fallback=~pl.col("has_period"), award_fallback=pl.lit(False))
    out = pl.concat([parts, lines.select(pl.all().gather(parts["r"]))], how="horizontal")
    return out.with_columns(
        days_in_period=pl.when(pl.col("spread_fallback")).then(None).otherwise(pl.col("days_in_period")),
        days_total=pl.when(pl.col("spread_fallback")).then(None).otherwise(pl.col("days_total")),
    ).drop("r")


def _spread_parts(included: pl.DataFrame) -> pl.DataFrame:
    """Largest-remainder split of each line over the quarters of its period, without per-line windows.

    Returns r (row of ``included``), quarter_idx, allocated_pence, days_in_period, days_total, first_in_year.
    """
    on_period = pl.col("has_period")
    start = pl.when(on_period).then(pl.col("start_date")).otherwise(pl.col("award_date"))
    end = pl.when(on_period).then(pl.col("end_date")).otherwise(pl.col("award_date"))
    spans = included.select(
        value=pl.col("value_pence"),
        s_day=start.cast(pl.Int64),
        e_day=end.cast(pl.Int64),
        qs=quarter_index_expr(start),
        qe=quarter_index_expr(end),
    ).with_columns(count=pl.col("qe") - pl.col("qs") + 1, days_total=pl.col("e_day") - pl.col("s_day") + 1)
    spans = spans.with_columns(first_row=pl.col("count").cum_sum() - pl.col("count"))
    if spans.height == 0:
        schema = {"r": pl.UInt32, "quarter_idx": pl.Int64, "allocated_pence": pl.Int64, "days_in_period": pl.Int64,
                  "days_total": pl.Int64, "first_in_year": pl.Boolean}  # fmt: skip
        return pl.DataFrame(schema=schema)
    rows = (
        spans.with_row_index("r").select("r", quarter_idx=pl.int_ranges("qs", pl.col("qe") + 1)).explode("quarter_idx")
    )
    low = int(spans["qs"].min())  # type: ignore[arg-type]
    high = int(spans["qe"].max())  # type: ignore[arg-type]
    starts = pl.select(quarter_start_expr(pl.int_range(low, high + 2, dtype=pl.Int64)).cast(pl.Int64)).to_series()
    rows = pl.concat(
        [rows, spans.select(pl.col("value", "s_day", "e_day", "qs", "days_total", "first_row").gather(rows["r"]))],
        how="horizontal",
    )
    offset = pl.col("quarter_idx") - low
    rows = rows.with_columns(
        days_in_period=pl.min_horizontal("e_day", pl.lit(starts).gather(offset + 1) - 1)
        - pl.max_horizontal("s_day", pl.lit(starts).gather(offset))
        + 1
    ).with_columns(exact=pl.col("value") * pl.col("days_in_period"))
    rows = rows.with_columns(floor=pl.col("exact") // pl.col("days_total")).with_columns(
        remainder=pl.col("exact") - pl.col("floor") * pl.col("days_total")
    )
    # Pence left over per line = value - sum of its floors; the rows of a line are contiguous.
    cum_floor = rows["floor"].cum_sum()
    last_rows = spans["first_row"] + spans["count"] - 1
    at_last = cum_floor.gather(last_rows)
    leftover = spans["value"] - (at_last - at_last.shift(1, fill_value=0))
    # Order each line's parts by remainder, largest first; the stable sort keeps ties in quarter order.
    # remainder < days_total < 2**32 because dates are 32-bit day numbers.
    key = pl.col("r").cast(pl.Int64) * (1 << 32) + ((1 << 32) - 1 - pl.col("remainder"))
    order = rows.select(pl.int_range(pl.len(), dtype=pl.UInt32).sort_by(key, maintain_order=True)).to_series()
    sorted_r = rows["r"].gather(order)
    position = pl.int_range(0, rows.height, eager=True, dtype=pl.Int64) - spans["first_row"].gather(sorted_r)
    bump_sorted = (position < leftover.gather(sorted_r)).cast(pl.Int64)
    bump = pl.zeros(rows.height, pl.Int64, eager=True).scatter(order, bump_sorted)
    return rows.select(
        "r",
        "quarter_idx",
        allocated_pence=pl.col("floor") + bump,
        days_in_period="days_in_period",
        days_total="days_total",
        first_in_year=(pl.col("quarter_idx") == pl.col("qs")) | (pl.col("quarter_idx") % 4 == 0),
    )


def _period_key(periods: PeriodKind) -> pl.Expr:
    return pl.col("quarter_idx") if periods == "quarter" else pl.col("quarter_idx") // 4


def _period_labels(periods: PeriodKind) -> pl.Expr:
    return _labels_of(pl.col("period_key"), periods)


def _excluded_frame(
    excluded_lines: pl.DataFrame, basis: Basis, periods: PeriodKind, scope_anchors: pl.DataFrame
) -> pl.DataFrame:
    dated = pl.col("has_period") | pl.col("award_date").is_not_null()
    placeable = excluded_lines.filter(dated)
    # Only the periods matter here, so allocate a zero value (the real one may be foreign or missing).
    placed = (
        _allocate(placeable.with_columns(value_pence=pl.lit(0, pl.Int64), bits=pl.lit(0, pl.Int32)), basis)
        .with_columns(period_key=_period_key(periods))
        .select("line_id", "period_key")
        .unique()
    )
    rows = placeable.join(placed, on="line_id", how="left")
    undated = excluded_lines.filter(~dated).with_columns(period_key=pl.lit(None, pl.Int64))
    cols = ["line_id", "anchor_id", "reason", "currency", "value_pence", "period_key"]
    return pl.concat([rows.select(cols), undated.select(cols)]).join(scope_anchors, on="anchor_id", how="inner")


def _period_grid(keys: pl.Series, scope_anchors: pl.DataFrame) -> pl.DataFrame:
    """Every scope x every period from the first to the last one any line (included or excluded) falls in."""
    scopes = scope_anchors.select("scope").unique(maintain_order=True)
    low, high = keys.min(), keys.max()
    if not isinstance(low, int) or not isinstance(high, int):
        return scopes.with_columns(period_key=pl.lit(None, pl.Int64)).clear()
    return scopes.join(pl.DataFrame({"period_key": pl.int_range(low, high + 1, eager=True)}), how="cross")


def _to_scopes(
    per_anchor: pl.LazyFrame, scope_anchors: pl.DataFrame, keys: list[str], aggs: list[pl.Expr]
) -> pl.LazyFrame:
    """Roll anchor-level rows up to scopes; a one-anchor scope needs no second aggregation."""
    sizes = scope_anchors.group_by("scope").agg(pl.len().alias("size"))
    single = scope_anchors.join(sizes.filter(pl.col("size") == 1), on="scope").select("scope", "anchor_id")
    several = scope_anchors.join(sizes.filter(pl.col("size") > 1), on="scope").select("scope", "anchor_id")
    joined_single = per_anchor.join(single.lazy(), on="anchor_id", how="inner").drop("anchor_id")
    joined_several = per_anchor.join(several.lazy(), on="anchor_id", how="inner").group_by("scope", *keys).agg(aggs)
    return pl.concat([joined_single, joined_several], how="diagonal_relaxed")


def _value_sums(alloc: pl.LazyFrame, scope_anchors: pl.DataFrame, periods: PeriodKind) -> pl.LazyFrame:
    pence = pl.col("allocated_pence")

    def masked(condition: pl.Expr) -> pl.Expr:
        return pl.when(condition).then(pence).otherwise(0)

    line_counted = pl.lit(True) if periods == "quarter" else pl.col("first_in_year")
    columns = [
        pence.alias("total_pence"),
        line_counted.cast(pl.Int64).alias("lines"),
        *[masked(_has(f"tier_{t}")).alias(_tier_col(t) + "_pence") for t in TIERS],
        *[masked(_has(f"category_{c}")).alias(f"category_{c}_pence") for c in CATEGORIES],
        *[masked(_has(f"{f}_true")).alias(f"{f}_pence") for f in FLAGS],
        *[masked(_has(f"{f}_null")).alias(f"{f}_unknown_pence") for f in FLAGS],
        # a fallback line sits whole in one period, so its rows count lines
        *[pl.col(flag).cast(pl.Int64).alias(f"{flag}_lines") for flag in ("spread_fallback", "award_fallback")],
        *[masked(pl.col(flag)).alias(f"{flag}_pence") for flag in ("spread_fallback", "award_fallback")],
    ]
    per_anchor = (
        alloc.select("anchor_id", "period_key", *columns).group_by("anchor_id", "period_key").agg(pl.all().sum())
    )
    # Every column is additive over anchors (a line belongs to exactly one anchor).
    return _to_scopes(per_anchor, scope_anchors, ["period_key"], [pl.exclude("anchor_id", *_KEY).sum()])


def _cpv_sums(alloc: pl.LazyFrame, scope_anchors: pl.DataFrame, periods: PeriodKind) -> pl.LazyFrame:
    pence = pl.col("allocated_pence")
    line_counted = pl.lit(True) if periods == "quarter" else pl.col("first_in_year")
    per_anchor = (
        alloc.select(
            "anchor_id",
            "period_key",
            pl.col("cpv_division").cast(pl.Int8).alias("division"),
            line_counted.cast(pl.Int64).alias("lines"),
            pence.alias("value_pence"),
            pl.when(_has("tier_local")).then(pence).otherwise(0).alias("local_pence"),
        )
        .group_by("anchor_id", "period_key", "division")
        .agg(pl.all().sum())
    )
    sums = _to_scopes(per_anchor, scope_anchors, ["period_key", "division"], [pl.col("lines", "value_pence",
                                                                                    "local_pence").sum()])  # fmt: skip
    return sums.with_columns(cpv_division=pl.col("division").cast(pl.String).str.zfill(2)).drop("division")


def _supplier_frame(alloc: pl.LazyFrame, scope_anchors: pl.DataFrame) -> pl.LazyFrame:
    """One row per scope, period and supplier: its value and the union of its lines' bits."""
    aggs = [pl.col("value_pence").sum(), pl.col("bits").bitwise_or()]
    per_anchor = (
        alloc.select("anchor_id", "period_key", "supplier_id", pl.col("allocated_pence").alias("value_pence"), "bits")
        .group_by("anchor_id", "period_key", "supplier_id")
        .agg(aggs)
    )
    return _to_scopes(per_anchor, scope_anchors, ["period_key", "supplier_id"], aggs)


def _supplier_counts(suppliers: pl.LazyFrame) -> pl.LazyFrame:
    known_tier = pl.any_horizontal([_has(f"tier_{t}") for t in TIERS if t != "unknown"])
    known_category = pl.any_horizontal([_has(f"category_{c}") for c in CATEGORIES if c != "unknown"])
    counts = [
        pl.lit(1).alias("suppliers"),
        *[_has(f"tier_{t}").alias(_tier_col(t) + "_suppliers") for t in TIERS],
        known_tier.alias("known_tier_suppliers"),
        *[_has(f"category_{c}").alias(f"category_{c}_suppliers") for c in CATEGORIES],
        known_category.alias("known_category_suppliers"),
        *[_has(f"{f}_true").alias(f"{f}_suppliers") for f in FLAGS],
        *[(~_has(f"{f}_true") & _has(f"{f}_null")).alias(f"{f}_unknown_suppliers") for f in FLAGS],
    ]
    return suppliers.select(*_KEY, *[c.cast(pl.Int64) for c in counts]).group_by(_KEY).agg(pl.all().sum())


def _new_local_counts(suppliers: pl.LazyFrame) -> pl.LazyFrame:
    return (
        suppliers.filter(_has("tier_local"))
        .group_by("scope", "supplier_id")
        .agg(pl.col("period_key").min())
        .group_by(_KEY)
        .agg(pl.len().cast(pl.Int64).alias("new_local_suppliers"))
    )


def _top_suppliers(suppliers: pl.LazyFrame, top_n: int) -> pl.LazyFrame:
    def single_or_mixed(prefix: str, codes: tuple[str, ...]) -> pl.Expr:
        # a supplier whose lines here carry exactly one code shows it, otherwise "mixed"
        expr: pl.Expr = pl.lit("mixed")
        for code in codes:
            expr = (
                pl.when((pl.col("bits") & _mask(prefix, codes)) == (1 << _BIT[f"{prefix}_{code}"]))
                .then(pl.lit(code))
                .otherwise(expr)
            )
        return expr

    top = suppliers.group_by(_KEY).agg(
        pl.col("supplier_id", "value_pence", "bits").top_k_by(["value_pence", "supplier_id"], top_n,
                                                              reverse=[False, True])
    ).explode("supplier_id", "value_pence", "bits")  # fmt: skip
    return top.with_columns(
        rank=pl.struct(pl.col("value_pence"), -pl.col("supplier_id"))
        .rank("ordinal", descending=True)
        .over(_KEY)
        .cast(pl.Int64),
        tier=single_or_mixed("tier", TIERS),
        category=single_or_mixed("category", CATEGORIES),
    )


def _mask(prefix: str, codes: tuple[str, ...]) -> int:
    return sum(1 << _BIT[f"{prefix}_{c}"] for c in codes)


def _exclusion_counts(excluded: pl.DataFrame) -> pl.DataFrame:
    placed = excluded.filter(pl.col("period_key").is_not_null())
    return placed.group_by(_KEY).agg(
        pl.col("line_id").filter(pl.col("reason") == r).n_unique().cast(pl.Int64).alias(f"excluded_{r}_lines")
        for r in EXCLUSION_REASONS
        if r != "no_date"
    )


def _tier_col(tier: str) -> str:
    return "tier_unknown" if tier == "unknown" else tier


def _ratio(numerator: pl.Expr, denominator: pl.Expr) -> pl.Expr:
    return pl.when(denominator != 0).then(numerator.cast(pl.Float64) / denominator.cast(pl.Float64))


def _summary(
    grid: pl.DataFrame,
    value_sums: pl.DataFrame,
    supplier_counts: pl.DataFrame,
    new_local: pl.DataFrame,
    exclusion_counts: pl.DataFrame,
    periods: PeriodKind,
) -> pl.DataFrame:
    frame = (
        grid.join(value_sums, on=_KEY, how="left")
        .join(supplier_counts, on=_KEY, how="left")
        .join(new_local, on=_KEY, how="left")
        .join(exclusion_counts, on=_KEY, how="left")
    )
    counts = [c for c in frame.columns if c not in _KEY]
    frame = frame.with_columns(pl.col(counts).fill_null(0).cast(pl.Int64))
    total = pl.col("total_pence")
    suppliers = pl.col("suppliers")
    shares: list[pl.Expr] = []
    for t in TIERS:
        name = _tier_col(t)
        shares += [
            _ratio(pl.col(f"{name}_pence"), total).alias(f"{name}_share"),
            _ratio(pl.col(f"{name}_suppliers"), suppliers).alias(f"{name}_supplier_share"),
        ]
        if t != "unknown":
            shares += [
                _ratio(pl.col(f"{name}_pence"), total - pl.col("tier_unknown_pence")).alias(f"{name}_share_known"),
                _ratio(pl.col(f"{name}_suppliers"), pl.col("known_tier_suppliers")).alias(
                    f"{name}_supplier_share_known"
                ),
            ]
    for c in CATEGORIES:
        name = f"category_{c}"
        shares += [
            _ratio(pl.col(f"{name}_pence"), total).alias(f"{name}_share"),
            _ratio(pl.col(f"{name}_suppliers"), suppliers).alias(f"{name}_supplier_share"),
        ]
        if c != "unknown":
            shares += [
                _ratio(pl.col(f"{name}_pence"), total - pl.col("category_unknown_pence")).alias(f"{name}_share_known"),
                _ratio(pl.col(f"{name}_suppliers"), pl.col("known_category_suppliers")).alias(
                    f"{name}_supplier_share_known"
                ),
            ]
    for f in FLAGS:
        shares += [
            _ratio(pl.col(f"{f}_pence"), total).alias(f"{f}_share"),
            _ratio(pl.col(f"{f}_unknown_pence"), total).alias(f"{f}_unknown_share"),
            _ratio(pl.col(f"{f}_pence"), total - pl.col(f"{f}_unknown_pence")).alias(f"{f}_share_known"),
            _ratio(pl.col(f"{f}_suppliers"), suppliers).alias(f"{f}_supplier_share"),
            _ratio(pl.col(f"{f}_unknown_suppliers"), suppliers).alias(f"{f}_unknown_supplier_share"),
            _ratio(pl.col(f"{f}_suppliers"), suppliers - pl.col(f"{f}_unknown_suppliers")).alias(
                f"{f}_supplier_share_known"
            ),
        ]
    frame = frame.with_columns(shares)

    prior = frame.select(*_KEY, "total_pence", "local_pence", "local_share")
    year_back = 4 if periods == "quarter" else 1
    for suffix, offset in (("prev", 1), ("yoy", year_back)):
        old = {c: f"_{c}_{suffix}" for c in ("total_pence", "local_pence", "local_share")}
        shifted = prior.with_columns(pl.col("period_key") + offset).rename(old)
        present = pl.col(old["total_pence"]).is_not_null()
        frame = (
            frame.join(shifted, on=_KEY, how="left")
            .with_columns(
                pl.when(present).then(_labels_of(pl.col("period_key") - offset, periods)).alias(f"{suffix}_period"),
                (total - pl.col(old["total_pence"])).alias(f"total_change_pence_{suffix}"),
                (pl.col("local_pence") - pl.col(old["local_pence"])).alias(f"local_change_pence_{suffix}"),
                ((pl.col("local_share") - pl.col(old["local_share"])) * 100).alias(f"local_share_change_pp_{suffix}"),
            )
            .drop(old.values())
        )
    return frame


def _labels_of(key: pl.Expr, periods: PeriodKind) -> pl.Expr:
    return quarter_label_expr(key) if periods == "quarter" else financial_year_label_expr(key)


def _long_by(
    summary: pl.DataFrame, kind: str, codes: tuple[str, ...], unknown: str, name_of: Callable[[str], str]
) -> pl.DataFrame:
    """Reshape one family of summary columns to one row per scope, period and code."""
    parts = []
    for code in codes:
        name = name_of(code)
        known = code != "unknown"
        parts.append(
            summary.select(
                "scope",
                "period",
                "basis",
                pl.lit(code).alias(kind),
                pl.col(f"{name}_pence").alias("value_pence"),
                pl.col(f"{name}_share").alias("share"),
                (pl.col(f"{name}_share_known") if known else pl.lit(None, pl.Float64)).alias("share_known"),
                pl.col(f"{unknown}_share").alias("unknown_share"),
                pl.col(f"{name}_suppliers").alias("suppliers"),
                pl.col(f"{name}_supplier_share").alias("supplier_share"),
                (pl.col(f"{name}_supplier_share_known") if known else pl.lit(None, pl.Float64)).alias(
                    "supplier_share_known"
                ),
            )
        )
    order = pl.Enum(list(codes))
    return (
        pl.concat(parts)
        .with_columns(pl.col(kind).cast(order))
        .sort("scope", "period", kind)
        .with_columns(pl.col(kind).cast(pl.String))
    )
