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
from dataclasses import dataclass, replace
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

    has_period = (
        pl.col("start_date").is_not_null()
        & pl.col("end_date").is_not_null()
        & (pl.col("end_date") >= pl.col("start_date"))
    ).fill_null(False)
    reason = (
        pl.when(pl.col("status") == "withdrawn")
        .then(pl.lit("withdrawn"))
        .when(pl.col("currency").is_null() | (pl.col("currency") != "GBP"))
        .then(pl.lit("non_gbp"))
        .when(pl.col("value_pence").is_null())
        .then(pl.lit("no_value"))
        .when(~has_period & pl.col("award_date").is_null())
        .then(pl.lit("no_date"))
    )
    marks = lines.select(reason.alias("reason"), has_period.alias("has_period"))
    is_included = marks["reason"].is_null()
    included = pl.concat([lines, marks.select("has_period")], how="horizontal").filter(is_included)
    included = included.with_columns(
        cpv_division=pl.col("cpv_code").str.extract(r"^(\d{2})\d{6}(?:-\d)?$", 1), bits=_bits()
    )
    excluded_lines = pl.concat([lines, marks], how="horizontal").filter(~is_included)
    _check_overflow(included)

    alloc = _allocate(included, basis, periods)
    excluded = _excluded_frame(excluded_lines, basis, periods, scope_anchors)

    first_key = alloc.first_quarter if periods == "quarter" else alloc.first_quarter // 4
    span_keys = pl.Series([] if alloc.quarter_range is None else list(alloc.quarter_range), dtype=pl.Int64)
    span_keys = span_keys if periods == "quarter" else span_keys // 4
    grid = _period_grid(pl.concat([span_keys, excluded["period_key"]]), scope_anchors)
    rows = alloc.facts.lazy()
    line_facts = included.lazy().select("anchor_id", "supplier_id", "tier", first_key=first_key)
    packing = _Packing.of(alloc.facts, scope_anchors)
    value_sums, cpv, suppliers, first_local = pl.collect_all(
        [
            _value_sums(rows, scope_anchors, packing),
            _cpv_sums(rows, scope_anchors, packing),
            _supplier_frame(rows, packing),
            _new_local_counts(line_facts, scope_anchors),
        ],
        engine="streaming",
    )
    supplier_counts, top = pl.collect_all(
        [_supplier_counts(suppliers.lazy(), packing), _top_suppliers(suppliers.lazy(), packing, top_n)],
        engine="streaming",
    )
    names = (
        included.lazy()
        .select("supplier_id", "supplier_name")
        .join(top.lazy().select("supplier_id").unique(), on="supplier_id", how="semi")
        .group_by("supplier_id")
        .agg(pl.col("supplier_name").min())
        .collect()
    )
    top = top.join(names, on="supplier_id", how="left")
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
    lines_out = _lines_frame(included, alloc, basis, periods)
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


def _span(basis: Basis) -> tuple[pl.Expr, pl.Expr]:
    """First and last day a line's value is placed on under this basis."""
    if basis == "awarded":
        day = pl.coalesce("award_date", pl.when(pl.col("has_period")).then(pl.col("start_date")))
        return day, day
    on_period = pl.col("has_period")
    start = pl.when(on_period).then(pl.col("start_date")).otherwise(pl.col("award_date"))
    end = pl.when(on_period).then(pl.col("end_date")).otherwise(pl.col("award_date"))
    return start, end


@dataclass(frozen=True)
class _Allocation:
    """Rows of (included line, quarter): ``r`` is the row of ``included`` (None: one row per line, in order),
    ``parts`` its allocation columns, ``facts`` the narrow per-row columns the metrics group."""

    r: pl.Series | None
    parts: pl.DataFrame
    facts: pl.DataFrame
    first_quarter: pl.Series
    quarter_range: tuple[int, int] | None


def _allocate(included: pl.DataFrame, basis: Basis, periods: PeriodKind) -> _Allocation:
    """One row per line and quarter with its allocated pence (see module docstring)."""
    start, end = _span(basis)
    spans = included.select(qs=quarter_index_expr(start), qe=quarter_index_expr(end))
    low, high = spans["qs"].min(), spans["qe"].max()
    quarter_range = (low, high) if isinstance(low, int) and isinstance(high, int) else None
    line_facts = included.select(
        "anchor_id",
        "supplier_id",
        "bits",
        division=pl.col("cpv_division").cast(pl.Int8),
        spread_fallback=~pl.col("has_period") if basis == "spread" else pl.lit(False),
        award_fallback=pl.col("award_date").is_null() if basis == "awarded" else pl.lit(False),
    )
    if basis == "awarded":
        parts = included.select(
            quarter_idx=spans["qs"],
            allocated_pence=pl.col("value_pence"),
            days_in_period=pl.lit(None, pl.Int64),
            days_total=pl.lit(None, pl.Int64),
            first_in_year=pl.lit(True),
        )
        r = None
        per_row = line_facts
    else:
        raw = _spread_parts(included, spans)
        r = raw["r"]
        fallback = line_facts["spread_fallback"].gather(r)
        parts = raw.select(
            "quarter_idx",
            "allocated_pence",
            days_in_period=pl.when(fallback).then(None).otherwise(pl.col("days_in_period")),
            days_total=pl.when(fallback).then(None).otherwise(pl.col("days_total")),
            first_in_year="first_in_year",
        )
        per_row = line_facts[r]
    line_counted = pl.lit(True) if periods == "quarter" else pl.col("first_in_year")
    own = parts.select("allocated_pence", line_counted.cast(pl.Int64).alias("counted"), period_key=_period_key(periods))
    facts = pl.concat([per_row, own], how="horizontal")
    return _Allocation(r=r, parts=parts, facts=facts, first_quarter=spans["qs"], quarter_range=quarter_range)


def _spread_parts(included: pl.DataFrame, quarters: pl.DataFrame) -> pl.DataFrame:
    """Largest-remainder split of each line over the quarters of its period, without per-line windows.

    Returns r (row of ``included``), quarter_idx, allocated_pence, days_in_period, days_total, first_in_year.
    """
    start, end = _span("spread")
    days = included.select(value=pl.col("value_pence"), s_day=start.cast(pl.Int64), e_day=end.cast(pl.Int64))
    spans = pl.concat([days, quarters], how="horizontal")
    spans = spans.with_columns(
        count=pl.col("qe") - pl.col("qs") + 1, days_total=pl.col("e_day") - pl.col("s_day") + 1
    ).with_columns(first_row=pl.col("count").cum_sum() - pl.col("count"))
    if spans.height == 0:
        schema = {"r": pl.UInt32, "quarter_idx": pl.Int64, "allocated_pence": pl.Int64, "days_in_period": pl.Int64,
                  "days_total": pl.Int64, "first_in_year": pl.Boolean}  # fmt: skip
        return pl.DataFrame(schema=schema)
    total = int(spans["count"].sum())
    # Every line has at least one quarter, so a line's first row is where the row number steps up.
    steps = pl.zeros(total, pl.UInt32, eager=True).scatter(spans["first_row"].slice(1), 1)
    r = steps.cum_sum().alias("r")
    rows = spans.select("value", "s_day", "e_day", "qs", "days_total", "first_row")[r]
    position = pl.int_range(0, total, eager=True, dtype=pl.Int64) - rows["first_row"]
    rows = rows.with_columns(r, quarter_idx=pl.col("qs") + position, position=position)
    low = int(spans["qs"].min())  # type: ignore[arg-type]
    high = int(spans["qe"].max())  # type: ignore[arg-type]
    starts = pl.select(quarter_start_expr(pl.int_range(low, high + 2, dtype=pl.Int64)).cast(pl.Int64)).to_series()
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
    rank = _remainder_rank(rows, spans)
    bump = (rank < leftover.gather(r)).cast(pl.Int64)
    return rows.select(
        "r",
        "quarter_idx",
        allocated_pence=pl.col("floor") + bump,
        days_in_period="days_in_period",
        days_total="days_total",
        first_in_year=(pl.col("quarter_idx") == pl.col("qs")) | (pl.col("quarter_idx") % 4 == 0),
    )


_PACKED_KEY_BITS = 63


def _remainder_rank(rows: pl.DataFrame, spans: pl.DataFrame) -> pl.Series:
    """Each row's place among its line's parts by remainder, largest first, ties to the earlier quarter."""
    # remainder < days_total and position < count, so (r, -remainder, position) packs into one unique
    # Int64 when the widths allow; sorting those plain values is much cheaper than a stable arg-sort.
    rem_bits = int(spans["days_total"].max()).bit_length()  # type: ignore[arg-type]
    pos_bits = max(int(spans["count"].max()) - 1, 1).bit_length()  # type: ignore[arg-type]
    r_bits = max(spans.height - 1, 1).bit_length()
    first_row = spans["first_row"]
    if rem_bits + pos_bits + r_bits <= _PACKED_KEY_BITS:
        top = (1 << rem_bits) - 1
        key = rows.select(
            (pl.col("r").cast(pl.Int64) * (1 << (rem_bits + pos_bits)))
            + (top - pl.col("remainder")) * (1 << pos_bits)
            + pl.col("position")
        ).to_series()
        ordered = key.sort()
        sorted_r = ordered // (1 << (rem_bits + pos_bits))
        line_start = first_row.gather(sorted_r)
        target = line_start + ordered % (1 << pos_bits)
        place = pl.int_range(0, rows.height, eager=True, dtype=pl.Int64) - line_start
        return pl.zeros(rows.height, pl.Int64, eager=True).scatter(target, place)
    key_expr = pl.col("r").cast(pl.Int64) * (1 << 32) + ((1 << 32) - 1 - pl.col("remainder"))
    order = rows.select(pl.int_range(pl.len(), dtype=pl.UInt32).sort_by(key_expr, maintain_order=True)).to_series()
    sorted_r = rows["r"].gather(order)
    place = pl.int_range(0, rows.height, eager=True, dtype=pl.Int64) - first_row.gather(sorted_r)
    return pl.zeros(rows.height, pl.Int64, eager=True).scatter(order, place)


_LINE_OUTPUT = [
    "line_id", "contract_id", "anchor_id", "supplier_id", "supplier_name", "period", "quarter", "basis",
    "allocated_pence", "days_in_period", "days_total", "value_pence", "spread_fallback", "award_fallback", "tier",
    "category", "sme", "vcse", "social_enterprise", "cpv_division", "award_date", "start_date", "end_date",
]  # fmt: skip


def _lines_frame(included: pl.DataFrame, alloc: _Allocation, basis: Basis, periods: PeriodKind) -> pl.DataFrame:
    per_line = included.select(c for c in _LINE_OUTPUT if c in included.columns)
    per_row = per_line if alloc.r is None else per_line[alloc.r]
    # Labels come from a small table of the quarters present rather than being formatted per row.
    if alloc.quarter_range is None:
        quarter = pl.Series("quarter", [], pl.String)
        period = pl.Series("period", [], pl.String)
    else:
        low, high = alloc.quarter_range
        span = pl.int_range(low, high + 1, dtype=pl.Int64)
        key = span if periods == "quarter" else span // 4
        table = pl.select(q=quarter_label_expr(span), p=_labels_of(key, periods))
        offset = alloc.parts["quarter_idx"] - low
        quarter = table["q"].gather(offset).alias("quarter")
        period = table["p"].gather(offset).alias("period")
    extra = alloc.parts.select(
        "allocated_pence",
        "days_in_period",
        "days_total",
        basis=pl.lit(basis),
        award_fallback=alloc.facts["award_fallback"],
        spread_fallback=alloc.facts["spread_fallback"],
    )
    return pl.concat([per_row, extra, pl.DataFrame([quarter, period])], how="horizontal").select(_LINE_OUTPUT)


def _period_key(periods: PeriodKind) -> pl.Expr:
    return pl.col("quarter_idx") if periods == "quarter" else pl.col("quarter_idx") // 4


def _period_labels(periods: PeriodKind) -> pl.Expr:
    return _labels_of(pl.col("period_key"), periods)


def _excluded_frame(
    excluded_lines: pl.DataFrame, basis: Basis, periods: PeriodKind, scope_anchors: pl.DataFrame
) -> pl.DataFrame:
    dated = pl.col("has_period") | pl.col("award_date").is_not_null()
    start, end = _span(basis)
    cols = ["line_id", "anchor_id", "reason", "currency", "value_pence"]
    placeable = excluded_lines.filter(dated).with_columns(first=quarter_index_expr(start), last=quarter_index_expr(end))
    if periods == "year":
        placeable = placeable.with_columns(pl.col("first") // 4, pl.col("last") // 4)
    rows = placeable.select(*cols, period_key=pl.int_ranges("first", pl.col("last") + 1)).explode("period_key")
    undated = excluded_lines.filter(~dated).select(*cols, period_key=pl.lit(None, pl.Int64))
    return pl.concat([rows, undated]).join(scope_anchors, on="anchor_id", how="inner")


def _period_grid(keys: pl.Series, scope_anchors: pl.DataFrame) -> pl.DataFrame:
    """Every scope x every period from the first to the last one any line (included or excluded) falls in."""
    scopes = scope_anchors.select("scope").unique(maintain_order=True)
    low, high = keys.min(), keys.max()
    if not isinstance(low, int) or not isinstance(high, int):
        return scopes.with_columns(period_key=pl.lit(None, pl.Int64)).clear()
    return scopes.join(pl.DataFrame({"period_key": pl.int_range(low, high + 1, eager=True)}), how="cross")


_SUPPLIER_KEY_BITS = 62  # packed supplier-level keys stay clear of the Int64 sign bit


@dataclass(frozen=True)
class _Packing:
    """Integer codes packed into one Int64 so that supplier-level grouping is on a single integer key.

    A row of the per-anchor grouping is ``(period * suppliers + supplier) * anchors + anchor`` and a row of
    a scope's grouping ``(scope * periods + period) * suppliers + supplier``, each part an offset from its
    minimum (or a dense rank when the ids are too spread out to pack).
    """

    period_low: int
    periods: int
    supplier_ids: pl.Series | None  # None: code = supplier_id - supplier_low
    supplier_low: int
    suppliers: int
    anchor_ids: pl.Series | None
    anchor_low: int
    anchors: int
    scopes: pl.Series  # scope name of each scope code
    scope_codes: pl.DataFrame  # scope_code, anchor_code, single (the scope has one anchor)

    @staticmethod
    def of(facts: pl.DataFrame, scope_anchors: pl.DataFrame) -> "_Packing":
        bounds = facts.select(
            p_low=pl.col("period_key").min(),
            p_high=pl.col("period_key").max(),
            s_low=pl.col("supplier_id").min(),
            s_high=pl.col("supplier_id").max(),
        ).row(0)
        p_low = bounds[0] or 0
        periods = (bounds[1] - p_low + 1) if bounds[1] is not None else 1
        known_anchors = pl.concat([facts["anchor_id"].unique(), scope_anchors["anchor_id"]]).unique().sort()
        a_low, a_high = int(known_anchors.min() or 0), int(known_anchors.max() or 0)  # type: ignore[arg-type]
        scopes = scope_anchors["scope"].unique(maintain_order=True)
        s_low = bounds[2] or 0
        suppliers = (bounds[3] - s_low + 1) if bounds[3] is not None else 1
        anchors = a_high - a_low + 1
        supplier_ids: pl.Series | None = None
        anchor_ids: pl.Series | None = None

        def too_wide() -> bool:
            widest = max(
                periods * suppliers * max(anchors, scopes.len()),
                (max(anchors, scopes.len()) * periods) << len(_BIT),
            )
            return widest.bit_length() > _SUPPLIER_KEY_BITS

        if too_wide():
            supplier_ids = facts["supplier_id"].unique().sort()
            anchor_ids = known_anchors
            s_low, a_low = 0, 0
            suppliers, anchors = max(supplier_ids.len(), 1), max(anchor_ids.len(), 1)
        if too_wide():
            raise ValueError("too many periods x suppliers x anchors to pack into one Int64 key")
        packing = _Packing(
            period_low=p_low,
            periods=periods,
            supplier_ids=supplier_ids,
            supplier_low=s_low,
            suppliers=suppliers,
            anchor_ids=anchor_ids,
            anchor_low=a_low,
            anchors=anchors,
            scopes=scopes,
            scope_codes=pl.DataFrame(),
        )
        sizes = scope_anchors.group_by("scope").agg(pl.len().alias("size"))
        codes = (
            scope_anchors.join(sizes, on="scope")
            .join(pl.DataFrame({"scope": scopes, "scope_code": pl.int_range(scopes.len(), eager=True)}), on="scope")
            .select("scope_code", anchor_code=packing.anchor_code(pl.col("anchor_id")), single=pl.col("size") == 1)
        )
        return replace(packing, scope_codes=codes)

    def anchor_code(self, anchor_id: pl.Expr) -> pl.Expr:
        if self.anchor_ids is None:
            return anchor_id - self.anchor_low
        return anchor_id.replace_strict(self.anchor_ids, pl.int_range(self.anchor_ids.len(), eager=True))

    def anchor_id(self, code: pl.Expr) -> pl.Expr:
        if self.anchor_ids is None:
            return code + self.anchor_low
        return pl.lit(self.anchor_ids).gather(code)

    def anchor_period(self) -> pl.Expr:
        """``anchor_code * periods + period`` of a row."""
        return self.anchor_code(pl.col("anchor_id")) * self.periods + (pl.col("period_key") - self.period_low)

    def anchor_period_columns(self, anchor_period: pl.Expr) -> list[pl.Expr]:
        return [
            self.anchor_id(anchor_period // self.periods).alias("anchor_id"),
            (anchor_period % self.periods + self.period_low).alias("period_key"),
        ]

    def supplier_code(self, supplier_id: pl.Expr) -> pl.Expr:
        if self.supplier_ids is None:
            return supplier_id - self.supplier_low
        return supplier_id.replace_strict(self.supplier_ids, pl.int_range(self.supplier_ids.len(), eager=True))

    def supplier_id(self, code: pl.Expr) -> pl.Expr:
        if self.supplier_ids is None:
            return code + self.supplier_low
        return pl.lit(self.supplier_ids).gather(code)

    def scope_key(self, scope_period: pl.Expr) -> list[pl.Expr]:
        """scope and period_key from ``scope_code * periods + period``."""
        return [
            pl.lit(self.scopes).gather(scope_period // self.periods).alias("scope"),
            (scope_period % self.periods + self.period_low).alias("period_key"),
        ]


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


def _value_sums(rows: pl.LazyFrame, scope_anchors: pl.DataFrame, packing: _Packing) -> pl.LazyFrame:
    pence = pl.col("allocated_pence")

    def masked(condition: pl.Expr) -> pl.Expr:
        return pl.when(condition).then(pence).otherwise(0)

    columns = [
        pence.alias("total_pence"),
        pl.col("counted").alias("lines"),
        *[masked(_has(f"tier_{t}")).alias(_tier_col(t) + "_pence") for t in TIERS],
        *[masked(_has(f"category_{c}")).alias(f"category_{c}_pence") for c in CATEGORIES],
        *[masked(_has(f"{f}_true")).alias(f"{f}_pence") for f in FLAGS],
        *[masked(_has(f"{f}_null")).alias(f"{f}_unknown_pence") for f in FLAGS],
        # a fallback line sits whole in one period, so its rows count lines
        *[pl.col(flag).cast(pl.Int64).alias(f"{flag}_lines") for flag in ("spread_fallback", "award_fallback")],
        *[masked(pl.col(flag)).alias(f"{flag}_pence") for flag in ("spread_fallback", "award_fallback")],
    ]
    per_anchor = (
        rows.select(packing.anchor_period().alias("key"), *columns)
        .group_by("key")
        .agg(pl.all().sum())
        .select(*packing.anchor_period_columns(pl.col("key")), pl.exclude("key"))
    )
    # Every column is additive over anchors (a line belongs to exactly one anchor).
    return _to_scopes(per_anchor, scope_anchors, ["period_key"], [pl.exclude("anchor_id", *_KEY).sum()])


def _cpv_sums(rows: pl.LazyFrame, scope_anchors: pl.DataFrame, packing: _Packing) -> pl.LazyFrame:
    pence = pl.col("allocated_pence")
    no_division = 127  # divisions are two digits
    key = packing.anchor_period() * 128 + pl.col("division").cast(pl.Int64).fill_null(no_division)
    per_anchor = (
        rows.select(
            key.alias("key"),
            pl.col("counted").alias("lines"),
            pence.alias("value_pence"),
            pl.when(_has("tier_local")).then(pence).otherwise(0).alias("local_pence"),
        )
        .group_by("key")
        .agg(pl.all().sum())
        .select(
            *packing.anchor_period_columns(pl.col("key") // 128),
            division=pl.when(pl.col("key") % 128 != no_division).then((pl.col("key") % 128).cast(pl.Int8)),
            lines="lines",
            value_pence="value_pence",
            local_pence="local_pence",
        )
    )
    sums = _to_scopes(per_anchor, scope_anchors, ["period_key", "division"], [pl.col("lines", "value_pence",
                                                                                    "local_pence").sum()])  # fmt: skip
    return sums.with_columns(cpv_division=pl.col("division").cast(pl.String).str.zfill(2)).drop("division")


def _supplier_frame(rows: pl.LazyFrame, packing: _Packing) -> pl.LazyFrame:
    """One row per scope, period and supplier: key (see ``_Packing``), its value and the union of its lines' bits."""
    aggs = [pl.col("value_pence").sum(), pl.col("bits").bitwise_or()]
    p = packing
    anchor_key = (
        (pl.col("period_key") - p.period_low) * p.suppliers + p.supplier_code(pl.col("supplier_id"))
    ) * p.anchors + p.anchor_code(pl.col("anchor_id"))
    per_anchor = (
        rows.select(key=anchor_key, value_pence=pl.col("allocated_pence"), bits=pl.col("bits"))
        .group_by("key")
        .agg(aggs)
        .with_columns(anchor_code=pl.col("key") % p.anchors, key=pl.col("key") // p.anchors)
    )
    # key is now period * suppliers + supplier; the scope goes on top.
    scope_key = pl.col("scope_code") * (p.periods * p.suppliers) + pl.col("key")
    codes = p.scope_codes.lazy()
    singles = p.scope_codes.filter("single")
    if p.anchors > 1 << 20 or singles["anchor_code"].is_duplicated().any():
        single = per_anchor.join(singles.lazy(), on="anchor_code", how="inner")
    else:
        # Each anchor heads at most one one-anchor scope: look its scope up by position rather than join.
        own_scope = pl.Series([None] * p.anchors, dtype=pl.Int64).scatter(singles["anchor_code"], singles["scope_code"])
        single = per_anchor.with_columns(scope_code=pl.lit(own_scope).gather("anchor_code")).drop_nulls("scope_code")
    single = single.select(key=scope_key, value_pence="value_pence", bits="bits")
    several = (
        per_anchor.join(codes.filter(~pl.col("single")), on="anchor_code", how="inner")
        .select(key=scope_key, value_pence="value_pence", bits="bits")
        .group_by("key")
        .agg(aggs)
    )
    return pl.concat([single, several])


def _supplier_counts(suppliers: pl.LazyFrame, packing: _Packing) -> pl.LazyFrame:
    # Suppliers of a scope and period share few distinct tier, category and flag bit sets, so count those
    # (one family of bits at a time keeps the sets few) and expand the small results rather than testing
    # every bit on every supplier row.
    known_tier = pl.any_horizontal([_has(f"tier_{t}") for t in TIERS if t != "unknown"])
    known_category = pl.any_horizontal([_has(f"category_{c}") for c in CATEGORIES if c != "unknown"])
    families = [
        (
            ("tier_",),
            [
                pl.lit(True).alias("suppliers"),
                *[_has(f"tier_{t}").alias(_tier_col(t) + "_suppliers") for t in TIERS],
                known_tier.alias("known_tier_suppliers"),
            ],
        ),
        (
            ("category_",),
            [
                *[_has(f"category_{c}").alias(f"category_{c}_suppliers") for c in CATEGORIES],
                known_category.alias("known_category_suppliers"),
            ],
        ),
        (
            tuple(f"{f}_" for f in FLAGS),
            [
                *[_has(f"{f}_true").alias(f"{f}_suppliers") for f in FLAGS],
                *[(~_has(f"{f}_true") & _has(f"{f}_null")).alias(f"{f}_unknown_suppliers") for f in FLAGS],
            ],
        ),
    ]
    scope_period = pl.col("key") // packing.suppliers
    n = pl.col("n")
    parts = []
    for prefixes, counts in families:
        positions = [b for name, b in _BIT.items() if name.startswith(prefixes)]
        low, width = min(positions), 1 << len(positions)
        part = (pl.col("bits").cast(pl.Int64) // (1 << low)) % width
        parts.append(
            suppliers.group_by(scope_period * width + part)
            .len()
            .select(sp=pl.col("key") // width, bits=pl.col("key") % width * (1 << low), n=pl.col("len").cast(pl.Int64))
            .group_by("sp")
            .agg(pl.when(c).then(n).otherwise(0).sum().alias(c.meta.output_name()) for c in counts)
        )
    tiers, categories, flags = parts
    return (
        tiers.join(categories, on="sp", how="left")
        .join(flags, on="sp", how="left")
        .select(*packing.scope_key(pl.col("sp")), pl.exclude("sp"))
    )


def _new_local_counts(line_facts: pl.LazyFrame, scope_anchors: pl.DataFrame) -> pl.LazyFrame:
    # A line has a row in every period from its first one on, so a supplier's first local period in a scope
    # is the earliest first period of its local lines there; no need to look at the per-period rows.
    per_anchor = (
        line_facts.filter(pl.col("tier") == "local")
        .group_by("anchor_id", "supplier_id")
        .agg(pl.col("first_key").min().alias("period_key"))
    )
    return (
        _to_scopes(per_anchor, scope_anchors, ["supplier_id"], [pl.col("period_key").min()])
        .group_by(_KEY)
        .agg(pl.len().cast(pl.Int64).alias("new_local_suppliers"))
    )


def _top_suppliers(suppliers: pl.LazyFrame, packing: _Packing, top_n: int) -> pl.LazyFrame:
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

    # The n-th largest value of each scope and period bounds the candidates; only those few are ranked.
    suppliers = suppliers.with_columns(sp=pl.col("key") // packing.suppliers)
    floors = suppliers.group_by("sp").agg(pl.col("value_pence").top_k(top_n).min().alias("floor"))
    candidates = (
        suppliers.join(floors, on="sp", how="inner").filter(pl.col("value_pence") >= pl.col("floor")).drop("floor")
    )
    # Within one scope and period the key orders suppliers as supplier_id does.
    ranked = candidates.with_columns(
        rank=pl.struct(pl.col("value_pence"), -pl.col("key")).rank("ordinal", descending=True).over("sp").cast(pl.Int64)
    ).filter(pl.col("rank") <= top_n)
    return ranked.select(
        *packing.scope_key(pl.col("sp")),
        supplier_id=packing.supplier_id(pl.col("key") % packing.suppliers),
        value_pence="value_pence",
        bits="bits",
        rank="rank",
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
