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

    alloc = _allocate(included, basis).with_columns(period_key=_period_key(periods))
    excluded = _excluded_frame(excluded_lines, basis, periods, scope_anchors)

    grid = _period_grid(pl.concat([alloc["period_key"], excluded["period_key"]]), scope_anchors)
    value_sums, cpv, suppliers = pl.collect_all(
        [
            _value_sums(alloc.lazy(), scope_anchors.lazy()),
            _cpv_sums(alloc.lazy(), scope_anchors.lazy()),
            _supplier_frame(alloc.lazy(), scope_anchors.lazy()),
        ]
    )
    supplier_counts, first_local, top = pl.collect_all(
        [
            _supplier_counts(suppliers.lazy()),
            _new_local_counts(suppliers.lazy()),
            _top_suppliers(suppliers.lazy(), top_n),
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
        .select("scope", "period", "basis", "rank", "supplier_id", "supplier_name", "tier", "category",
                "value_pence", "share")
        .sort("scope", "period", "rank")
    )
    by_cpv = (
        cpv.with_columns(*with_labels)
        .join(totals, on=["scope", "period"], how="left")
        .with_columns(
            share=_ratio(pl.col("value_pence"), pl.col("total_pence")),
            local_share=_ratio(pl.col("local_pence"), pl.col("value_pence")),
        )
        .select("scope", "period", "basis", "cpv_division", "lines", "value_pence", "share", "local_pence",
                "local_share")
        .sort("scope", "period", "cpv_division", nulls_last=True)
    )
    lines_out = alloc.with_columns(
        labels.alias("period"), quarter_label_expr(pl.col("quarter_idx")).alias("quarter"), pl.lit(basis).alias("basis")
    ).select(
        "line_id", "contract_id", "anchor_id", "supplier_id", "supplier_name", "period", "quarter", "basis",
        "allocated_pence", "days_in_period", "days_total", "value_pence", "spread_fallback", "award_fallback",
        "tier", "category", "sme", "vcse", "social_enterprise", "cpv_division", "award_date", "start_date",
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


def _allocate(included: pl.DataFrame, basis: Basis) -> pl.DataFrame:
    """One row per line and quarter with its allocated pence (see module docstring)."""
    if basis == "awarded":
        on = pl.coalesce("award_date", "start_date")
        return included.with_columns(
            quarter_idx=quarter_index_expr(on),
            allocated_pence=pl.col("value_pence"),
            days_in_period=pl.lit(None, pl.Int64),
            days_total=pl.lit(None, pl.Int64),
            spread_fallback=pl.lit(False),
            award_fallback=pl.col("award_date").is_null(),
        )
    start = pl.when(pl.col("has_period")).then(pl.col("start_date")).otherwise(pl.col("award_date"))
    end = pl.when(pl.col("has_period")).then(pl.col("end_date")).otherwise(pl.col("award_date"))
    spans = included.with_columns(
        s_day=start.cast(pl.Int64),
        e_day=end.cast(pl.Int64),
        quarter_idx=pl.int_ranges(quarter_index_expr(start), quarter_index_expr(end) + 1),
        spread_fallback=~pl.col("has_period"),
        award_fallback=pl.lit(False),
    )
    single = spans.filter(pl.col("quarter_idx").list.len() == 1)
    multi = spans.filter(pl.col("quarter_idx").list.len() > 1)
    single = single.with_columns(
        quarter_idx=pl.col("quarter_idx").list.first(),
        allocated_pence=pl.col("value_pence"),
        days_total=pl.col("e_day") - pl.col("s_day") + 1,
    ).with_columns(days_in_period=pl.col("days_total"))
    multi = (
        multi.explode("quarter_idx")
        .with_columns(
            q_start=quarter_start_expr(pl.col("quarter_idx")).cast(pl.Int64),
            q_end=quarter_start_expr(pl.col("quarter_idx") + 1).cast(pl.Int64) - 1,
            days_total=pl.col("e_day") - pl.col("s_day") + 1,
        )
        .with_columns(
            days_in_period=pl.min_horizontal("e_day", "q_end") - pl.max_horizontal("s_day", "q_start") + 1
        )
        .with_columns(exact=pl.col("value_pence") * pl.col("days_in_period"))
        .with_columns(floor=pl.col("exact") // pl.col("days_total"))
        .with_columns(remainder=pl.col("exact") - pl.col("floor") * pl.col("days_total"))
        .with_columns(
            leftover=pl.col("value_pence") - pl.col("floor").sum().over("line_id"),
            # ordinal rank breaks ties by position, and the quarters of a line are in date order
            order=pl.col("remainder").rank("ordinal", descending=True).over("line_id"),
        )
        .with_columns(allocated_pence=pl.col("floor") + (pl.col("order") <= pl.col("leftover")).cast(pl.Int64))
        .drop("q_start", "q_end", "exact", "floor", "remainder", "leftover", "order")
    )
    out = pl.concat([single, multi], how="diagonal_relaxed")
    return out.with_columns(
        days_in_period=pl.when(pl.col("spread_fallback")).then(None).otherwise(pl.col("days_in_period")),
        days_total=pl.when(pl.col("spread_fallback")).then(None).otherwise(pl.col("days_total")),
    ).drop("s_day", "e_day")


def _period_key(periods: PeriodKind) -> pl.Expr:
    return pl.col("quarter_idx") if periods == "quarter" else pl.col("quarter_idx") // 4


def _period_labels(periods: PeriodKind) -> pl.Expr:
    return _labels_of(pl.col("period_key"), periods)


def _excluded_frame(
    excluded_lines: pl.DataFrame, basis: Basis, periods: PeriodKind, scope_anchors: pl.DataFrame
) -> pl.DataFrame:
    placeable = excluded_lines.filter(pl.col("reason") != "no_date")
    # Only the periods matter here, so allocate a zero value (the real one may be foreign or missing).
    placed = (
        _allocate(placeable.with_columns(value_pence=pl.lit(0, pl.Int64)), basis)
        .with_columns(period_key=_period_key(periods))
        .select("line_id", "period_key")
        .unique()
    )
    rows = placeable.join(placed, on="line_id", how="left")
    undated = excluded_lines.filter(pl.col("reason") == "no_date").with_columns(period_key=pl.lit(None, pl.Int64))
    cols = ["line_id", "anchor_id", "reason", "currency", "value_pence", "period_key"]
    return pl.concat([rows.select(cols), undated.select(cols)]).join(scope_anchors, on="anchor_id", how="inner")


def _period_grid(keys: pl.Series, scope_anchors: pl.DataFrame) -> pl.DataFrame:
    """Every scope x every period from the first to the last one any line (included or excluded) falls in."""
    scopes = scope_anchors.select("scope").unique(maintain_order=True)
    low, high = keys.min(), keys.max()
    if not isinstance(low, int) or not isinstance(high, int):
        return scopes.with_columns(period_key=pl.lit(None, pl.Int64)).clear()
    return scopes.join(pl.DataFrame({"period_key": pl.int_range(low, high + 1, eager=True)}), how="cross")


def _value_sums(alloc: pl.LazyFrame, scope_anchors: pl.LazyFrame) -> pl.LazyFrame:
    pence = pl.col("allocated_pence")
    aggs = [
        pence.sum().alias("total_pence"),
        pl.col("line_id").n_unique().alias("lines"),
        *[pence.filter(pl.col("tier") == t).sum().alias(_tier_col(t) + "_pence") for t in TIERS],
        *[pence.filter(pl.col("category") == c).sum().alias(f"category_{c}_pence") for c in CATEGORIES],
        *[pence.filter(pl.col(f)).sum().alias(f"{f}_pence") for f in FLAGS],
        *[pence.filter(pl.col(f).is_null()).sum().alias(f"{f}_unknown_pence") for f in FLAGS],
        *[
            expr
            for flag in ("spread_fallback", "award_fallback")
            for expr in (
                pl.col("line_id").filter(pl.col(flag)).n_unique().alias(f"{flag}_lines"),
                pence.filter(pl.col(flag)).sum().alias(f"{flag}_pence"),
            )
        ],
    ]
    per_anchor = alloc.group_by("anchor_id", "period_key").agg(aggs)
    # Every column is additive over anchors (a line belongs to exactly one anchor).
    return (
        per_anchor.join(scope_anchors, on="anchor_id", how="inner")
        .group_by(_KEY)
        .agg(pl.exclude("anchor_id", *_KEY).sum())
    )


def _cpv_sums(alloc: pl.LazyFrame, scope_anchors: pl.LazyFrame) -> pl.LazyFrame:
    pence = pl.col("allocated_pence")
    per_anchor = alloc.group_by("anchor_id", "period_key", "cpv_division").agg(
        pl.col("line_id").n_unique().alias("lines"),
        pence.sum().alias("value_pence"),
        pence.filter(pl.col("tier") == "local").sum().alias("local_pence"),
    )
    return (
        per_anchor.join(scope_anchors, on="anchor_id", how="inner")
        .group_by(*_KEY, "cpv_division")
        .agg(pl.col("lines").sum().cast(pl.Int64), pl.col("value_pence", "local_pence").sum())
    )


def _supplier_flags() -> list[pl.Expr]:
    return [
        *[(pl.col("tier") == t).any().alias(f"has_tier_{t}") for t in TIERS],
        *[(pl.col("category") == c).any().alias(f"has_category_{c}") for c in CATEGORIES],
        *[pl.col(f).any().alias(f"{f}_true") for f in FLAGS],
        *[pl.col(f).is_null().any().alias(f"{f}_null") for f in FLAGS],
    ]


def _supplier_frame(alloc: pl.LazyFrame, scope_anchors: pl.LazyFrame) -> pl.LazyFrame:
    """One row per scope, period and supplier, with its value and any-line flags."""
    per_anchor = alloc.group_by("anchor_id", "period_key", "supplier_id").agg(
        pl.col("allocated_pence").sum().alias("value_pence"),
        pl.col("supplier_name").min(),
        *_supplier_flags(),
    )
    return (
        per_anchor.join(scope_anchors, on="anchor_id", how="inner")
        .group_by(*_KEY, "supplier_id")
        .agg(pl.col("value_pence").sum(), pl.col("supplier_name").min(), pl.col(_flag_names()).any())
    )


def _flag_names() -> list[str]:
    return (
        [f"has_tier_{t}" for t in TIERS]
        + [f"has_category_{c}" for c in CATEGORIES]
        + [f"{f}_true" for f in FLAGS]
        + [f"{f}_null" for f in FLAGS]
    )


def _supplier_counts(suppliers: pl.LazyFrame) -> pl.LazyFrame:
    known_tier = pl.any_horizontal([pl.col(f"has_tier_{t}") for t in TIERS if t != "unknown"])
    known_category = pl.any_horizontal([pl.col(f"has_category_{c}") for c in CATEGORIES if c != "unknown"])
    return suppliers.group_by(_KEY).agg(
        pl.len().cast(pl.Int64).alias("suppliers"),
        *[pl.col(f"has_tier_{t}").sum().cast(pl.Int64).alias(_tier_col(t) + "_suppliers") for t in TIERS],
        known_tier.sum().cast(pl.Int64).alias("known_tier_suppliers"),
        *[pl.col(f"has_category_{c}").sum().cast(pl.Int64).alias(f"category_{c}_suppliers") for c in CATEGORIES],
        known_category.sum().cast(pl.Int64).alias("known_category_suppliers"),
        *[pl.col(f"{f}_true").sum().cast(pl.Int64).alias(f"{f}_suppliers") for f in FLAGS],
        *[
            (~pl.col(f"{f}_true") & pl.col(f"{f}_null")).sum().cast(pl.Int64).alias(f"{f}_unknown_suppliers")
            for f in FLAGS
        ],
    )


def _new_local_counts(suppliers: pl.LazyFrame) -> pl.LazyFrame:
    return (
        suppliers.filter(pl.col("has_tier_local"))
        .group_by("scope", "supplier_id")
        .agg(pl.col("period_key").min())
        .group_by(_KEY)
        .agg(pl.len().cast(pl.Int64).alias("new_local_suppliers"))
    )


def _top_suppliers(suppliers: pl.LazyFrame, top_n: int) -> pl.LazyFrame:
    def single_or_mixed(prefix: str, codes: tuple[str, ...]) -> pl.Expr:
        flags = [pl.col(f"has_{prefix}_{c}") for c in codes]
        expr: pl.Expr = pl.lit("mixed")
        for code, flag in zip(codes, flags, strict=True):
            expr = pl.when(pl.sum_horizontal(flags) == 1).then(
                pl.when(flag).then(pl.lit(code)).otherwise(expr)
            ).otherwise(pl.lit("mixed"))
        return expr

    ranked = suppliers.with_columns(
        rank=pl.struct(pl.col("value_pence"), -pl.col("supplier_id"))
        .rank("ordinal", descending=True)
        .over(_KEY)
        .cast(pl.Int64)
    ).filter(pl.col("rank") <= top_n)
    return ranked.select(
        *_KEY,
        "rank",
        "supplier_id",
        "supplier_name",
        single_or_mixed("tier", TIERS).alias("tier"),
        single_or_mixed("category", CATEGORIES).alias("category"),
        "value_pence",
    )


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
