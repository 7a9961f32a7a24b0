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
  award_date and is flagged ``spread_fallback``. ``paid``: payment lines, placed like ``awarded`` with the
  payment date in award_date (payments have no contract period, so no line ever falls back).
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

How (for speed on a million lines): the included lines become a few integer codes each (anchor, supplier,
period, a bit set of tier / category / flags); on the spread basis each line then gets one row per quarter
with its pence, worked out without sorting from a few figures per line (``_spread_rows``). Money is summed
per anchor and period and rolled up to scopes; suppliers are grouped per scope only where needed (a
supplier with one line for an anchor is a group by itself there); ``lines`` is only built when read. Where
a key's values are few enough to index an array (money per anchor, period and tier / category / flags /
CPV division; the suppliers of a scope of several anchors, or of one anchor with several lines, per
period; supplier counts), rows are added into that array (numpy) instead of being grouped by hashing,
which costs several times more; polars groups them otherwise. A line's rows are consecutive, one per
period from its first to its last, so per-row keys are made by running sums along each line rather than
looked up row by row (``_runs``).
"""

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import Any, Literal, TypeVar, get_args

import numpy as np
import numpy.typing as npt
import polars as pl

from socialvalue.periods import (
    financial_year_label_expr,
    parse_financial_year,
    parse_quarter,
    quarter_index_expr,
    quarter_label_expr,
    quarter_start_expr,
)

Basis = Literal["awarded", "spread", "paid"]
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
_INT64_MIN = -(2**63)
_EPOCH = date(1970, 1, 1)
_DATES = ["award_date", "start_date", "end_date"]
_KEY = ["scope", "period_key"]


@dataclass(frozen=True)
class MetricsResult:
    """Every frame carries scope, period (label), basis; money is Int64 pence.

    ``lines`` is one row per included line and quarter it touches (its allocated pence there), keyed by
    anchor_id rather than scope so that a line is not copied once per scope; ``scope_anchors`` says which
    anchors each scope holds and ``lines_for_scope`` gives the rows behind one scope's figures. Only
    downloads and statements read it, so it is built on first use and then kept.
    ``excluded`` is one row per excluded line, scope and period it would have fallen in (period null for
    ``no_date``); likewise read only by downloads and statements, and built on first use.
    """

    basis: str
    periods: str
    summary: pl.DataFrame
    by_tier: pl.DataFrame
    by_category: pl.DataFrame
    top_suppliers: pl.DataFrame
    by_cpv_division: pl.DataFrame
    scope_anchors: pl.DataFrame
    _build_lines: Callable[[], pl.DataFrame] = field(repr=False, compare=False)
    _build_spans: Callable[[], pl.DataFrame] = field(repr=False, compare=False)
    _build_excluded: Callable[[], pl.DataFrame] = field(repr=False, compare=False)
    # The included lines whose span touches the days from the first to before the second (``_lines_dated``).
    _build_dated: Callable[[date, date], pl.DataFrame] | None = field(default=None, repr=False, compare=False)

    @cached_property
    def lines(self) -> pl.DataFrame:
        return self._build_lines()

    @cached_property
    def excluded(self) -> pl.DataFrame:
        return self._build_excluded()

    @cached_property
    def _spans(self) -> pl.DataFrame:
        return self._build_spans()

    def rests_on(self, scope: str, period: str, *, only: bool = False) -> pl.DataFrame:
        """contract_id, supplier_id and supplier_name of each line behind one scope's figures for one period
        (label): the lines of ``lines_for_scope(scope)`` in that period, one row per line. Read from each
        line's first and last period, so no line is spread into its quarters (which costs more than the
        figures themselves on a large scope). ``only``: the one period the caller asks about, so its lines are
        picked by their first and last day instead (working out every line's periods, kept for later periods,
        cost a cold answer of one period about a tenth of the engine's time on a large scope)."""
        anchors = self.scope_anchors.filter(pl.col("scope") == scope)
        if anchors.height == 0:
            raise KeyError(f"no scope named {scope!r}")
        if self.periods == "quarter":
            year, quarter = parse_quarter(period)
            key = year * 4 + quarter - 1
        else:
            key = parse_financial_year(period)
        days = _key_days(key, self.periods) if only and self._build_dated and "_spans" not in self.__dict__ else None
        if days is not None and self._build_dated is not None:
            # A line touches the period when its first day is before the next period's and its last is not
            # before the period's first day: the same lines as its first and last period keys pick.
            return (
                self._build_dated(*days)
                .filter(pl.col("anchor_id").is_in(anchors["anchor_id"].implode()))
                .select("contract_id", "supplier_id", "supplier_name")
            )
        return self._spans.filter(
            pl.col("anchor_id").is_in(anchors["anchor_id"].implode()),
            pl.col("first") <= key,
            pl.col("last") >= key,
        ).select("contract_id", "supplier_id", "supplier_name")

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
    codes = (("tier", TIERS), ("category", CATEGORIES), ("status", STATUSES))
    # a few comparisons per value cost several times less than looking strings up in a set (is_in)
    known = lines.select(
        pl.any_horizontal(pl.col(column) == code for code in allowed).fill_null(False).all().alias(column)
        for column, allowed in codes
    ).row(0)
    for (column, allowed), all_known in zip(codes, known, strict=True):
        if not all_known:
            bad = lines.filter(~pl.col(column).is_in(allowed) | pl.col(column).is_null())[column].unique()
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

    facts, excluded_lines = _split(lines, basis, periods)
    # The exclusions and the new local suppliers are polars work that needs nothing else here: they run on a
    # second thread while the numpy steps below, which hold one core, run on this one. Steps that need only
    # what is already made run beside each other too.
    with ThreadPoolExecutor(max_workers=2) as pool:
        beside = pool.submit(_beside, facts, excluded_lines, scope_anchors, periods)
        codes = _Codes.of(facts, scope_anchors, periods)
        facts = _in_pair_order(facts, codes, basis)
        line_keys = pool.submit(_line_keys, facts, codes, periods)
        rows = _period_rows(facts, basis, periods, codes)
        keys = line_keys.result()
        money = pool.submit(_money_sums, rows, keys, codes, scope_anchors, basis)
        grouped, dense = _supplier_rows(rows, keys, codes)
        counts = pool.submit(_supplier_counts, keys, grouped, dense, codes)
        top = _top_suppliers(rows, keys, grouped, dense, codes, top_n)
        supplier_counts = counts.result()
        value_sums, cpv = money.result()
        del rows, keys, grouped, dense
        exclusion_counts, first_local = beside.result()

    span_keys = pl.Series([] if codes.periods == 0 else [codes.period_low, codes.period_low + codes.periods - 1])
    scoped = excluded_lines.filter(pl.col("anchor_id").is_in(scope_anchors["anchor_id"].implode()))
    excluded_keys = pl.concat([scoped["first"], scoped["last"]]).drop_nulls()
    grid = _period_grid(pl.concat([span_keys.cast(pl.Int64), excluded_keys.cast(pl.Int64)]), scope_anchors)
    names = (
        lines.lazy()
        .filter(pl.col("supplier_id").is_in(top["supplier_id"].unique().implode()))
        .with_columns(has_period=_has_period())
        .filter(_is_included())
        .group_by("supplier_id")
        .agg(pl.col("supplier_name").min())
        .collect()
    )
    top = top.join(names, on="supplier_id", how="left")

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
    return MetricsResult(
        basis=basis,
        periods=periods,
        summary=summary.sort("scope", "period"),
        by_tier=by_tier,
        by_category=by_category,
        top_suppliers=top,
        by_cpv_division=by_cpv,
        scope_anchors=scope_anchors,
        _build_lines=lambda: _lines_frame(lines, basis, periods),
        _build_spans=lambda: _line_spans(lines, basis, periods),
        _build_excluded=lambda: _excluded_output(_excluded_frame(excluded_lines, scope_anchors, periods), basis),
        _build_dated=lambda low, high: _lines_dated(lines, basis, low, high),
    )


def _beside(
    facts: pl.DataFrame, excluded_lines: pl.DataFrame, scope_anchors: pl.DataFrame, periods: PeriodKind
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The excluded lines' counts per scope and period, and the new local suppliers."""
    return _exclusion_counts(excluded_lines, scope_anchors), _new_local_counts(facts, scope_anchors, periods)


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


def _has_period() -> pl.Expr:
    return (
        pl.col("start_date").is_not_null()
        & pl.col("end_date").is_not_null()
        & (pl.col("end_date") >= pl.col("start_date"))
    ).fill_null(False)


def _reason() -> pl.Expr:
    """The exclusion reason of a line, null when it is included (needs the has_period column)."""
    return (
        pl.when(pl.col("status") == "withdrawn")
        .then(pl.lit("withdrawn"))
        .when(pl.col("currency").is_null() | (pl.col("currency") != "GBP"))
        .then(pl.lit("non_gbp"))
        .when(pl.col("value_pence").is_null())
        .then(pl.lit("no_value"))
        .when(~pl.col("has_period") & pl.col("award_date").is_null())
        .then(pl.lit("no_date"))
    )


def _marked(lines: pl.LazyFrame) -> pl.LazyFrame:
    """The lines with has_period and reason (null: included) columns added."""
    return lines.with_columns(has_period=_has_period()).with_columns(reason=_reason())


_BIT = {
    **{f"tier_{t}": i for i, t in enumerate(TIERS)},
    **{f"category_{c}": len(TIERS) + i for i, c in enumerate(CATEGORIES)},
    **{f"{f}_{state}": len(TIERS) + len(CATEGORIES) + 2 * i + j for i, f in enumerate(FLAGS) for j, state in
       enumerate(("true", "null"))},
}  # fmt: skip


def _bits() -> pl.Expr:
    """One Int32 bit set per line: its tier, its category, and which flags are True / unknown (from the
    tier, category and flags codes)."""
    flag_bits = [
        sum(1 << _BIT[f"{f}_{('true', 'null')[state - 1]}"] for f, state in zip(FLAGS, states, strict=True) if state)
        for states in ((a, b, c) for a in range(3) for b in range(3) for c in range(3))
    ]
    tier_bits = [1 << _BIT[f"tier_{t}"] for t in TIERS]
    category_bits = [1 << _BIT[f"category_{c}"] for c in CATEGORIES]
    return (
        pl.lit(pl.Series(tier_bits, dtype=pl.Int32)).gather("tier")
        + pl.lit(pl.Series(category_bits, dtype=pl.Int32)).gather("category")
        + pl.lit(pl.Series(flag_bits, dtype=pl.Int32)).gather("flags")
    )


def _has(bit: str, column: str = "bits") -> pl.Expr:
    return (pl.col(column) & (1 << _BIT[bit])) != 0


def _span(basis: Basis) -> tuple[pl.Expr, pl.Expr]:
    """First and last day a line's value is placed on under this basis."""
    if basis != "spread":
        day = pl.coalesce("award_date", pl.when(pl.col("has_period")).then(pl.col("start_date")))
        return day, day
    on_period = pl.col("has_period")
    start = pl.when(on_period).then(pl.col("start_date")).otherwise(pl.col("award_date"))
    end = pl.when(on_period).then(pl.col("end_date")).otherwise(pl.col("award_date"))
    return start, end


def _period_key(quarter: pl.Expr, periods: PeriodKind) -> pl.Expr:
    return quarter if periods == "quarter" else quarter // 4


def _split(lines: pl.DataFrame, basis: Basis, periods: PeriodKind) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Narrow facts of the included lines (in input order) and the excluded lines with their first and last
    period (null for ``no_date``).

    Only what the metrics group by travels on, as small integer codes: the wide input is read once.
    """
    start, end = _span(basis)
    quarter_of = _quarter_lookup(lines)
    with_period = lines.lazy().with_columns(has_period=_has_period())
    included = with_period.filter(_is_included())
    first = quarter_of(start)
    flags = [pl.when(pl.col(f)).then(1).when(pl.col(f).is_null()).then(2).otherwise(0) for f in FLAGS]
    facts = included.select(
        "anchor_id",
        "supplier_id",
        "value_pence",
        first_day=start,
        last_day=end,
        # Int32 quarter indices (and Int8 codes below): the facts are copied whole when put in pair order
        qs=first.cast(pl.Int32),
        qe=(first if basis != "spread" else quarter_of(end)).cast(pl.Int32),
        fallback=~pl.col("has_period") if basis == "spread" else pl.col("award_date").is_null(),
        tier=_position("tier", TIERS),
        category=_position("category", CATEGORIES),
        flags=(flags[0] * 9 + flags[1] * 3 + flags[2]).cast(pl.Int8),
        division=_cpv_division().cast(pl.Int8),
    ).with_columns(bits=_bits())
    extremes = included.select(
        biggest=pl.col("value_pence").abs().max(),
        span=(pl.col("end_date") - pl.col("start_date")).dt.total_days().max(),
    )
    excluded = (
        with_period.filter(~_is_included())
        .with_columns(reason=_reason())
        .select(
            "line_id",
            "anchor_id",
            "reason",
            "currency",
            "value_pence",
            **_first_last(start, end, periods, quarter_of),
        )
    )
    facts_frame, extremes_frame, excluded_lines = pl.collect_all([facts, extremes, excluded])
    _check_overflow(*extremes_frame.row(0))
    # Left in chunks: _in_pair_order copies the facts into one piece anyway.
    return facts_frame, excluded_lines


def _is_included() -> pl.Expr:
    """No exclusion reason applies (the same test as ``_reason`` being null; needs has_period)."""
    return (
        (pl.col("status") != "withdrawn")
        & (pl.col("currency") == "GBP").fill_null(False)
        & pl.col("value_pence").is_not_null()
        & (pl.col("has_period") | pl.col("award_date").is_not_null())
    )


def _quarter_of(day: pl.Expr) -> pl.Expr:
    """Financial quarter index of a date (``quarter_index_expr``): a financial quarter starts one calendar
    quarter later."""
    return day.dt.year().cast(pl.Int64) * 4 + day.dt.quarter().cast(pl.Int64) - 2


_DAY_TABLE_LIMIT = 1 << 20  # days (about 2,900 years)


def _quarter_lookup(lines: pl.DataFrame) -> Callable[[pl.Expr], pl.Expr]:
    """``_quarter_of`` for the dates of these lines: looked up in a table of their days when they span few
    enough (much cheaper than taking dates apart line by line)."""
    span = lines.select(first=pl.min_horizontal(pl.col(_DATES).min()), last=pl.max_horizontal(pl.col(_DATES).max()))
    dates = span.row(0)
    low, high = (d if d is None else (d - _EPOCH).days for d in dates)
    if low is None or high is None or high - low >= _DAY_TABLE_LIMIT:
        return _quarter_of
    table = pl.select(_quarter_of(pl.date_range(dates[0], dates[1], eager=False))).to_series()

    def lookup(day: pl.Expr) -> pl.Expr:
        return pl.lit(table).gather(day.cast(pl.Int32) - low)

    return lookup


def _position(column: str, names: tuple[str, ...]) -> pl.Expr:
    """Index of a validated code in ``names``."""
    expr: pl.Expr = pl.lit(len(names) - 1, pl.Int8)
    for i in reversed(range(len(names) - 1)):
        expr = pl.when(pl.col(column) == names[i]).then(pl.lit(i, pl.Int8)).otherwise(expr)
    return expr


def _cpv_division() -> pl.Expr:
    """The two-digit CPV division of a well-formed code (8 digits, optional check digit), else null."""
    code = pl.col("cpv_code")
    return pl.when(code.str.contains(r"^\d{8}(?:-\d)?$")).then(code.str.slice(0, 2))


def _check_overflow(biggest: int | None, span: int | None) -> None:
    days = (span if isinstance(span, int) else 0) + 1
    if isinstance(biggest, int) and biggest * days > _INT64_MAX:
        raise ValueError("value_pence x contract days would overflow Int64; split such a line first")


_CODE_BITS = 62  # packed grouping keys stay clear of the Int64 sign bit


@dataclass(frozen=True)
class _Codes:
    """Small integer codes for periods, anchors, suppliers and scopes, so that every grouping key is one Int64.

    A period's code is its key minus the first one; an anchor's, its place among the sorted anchor ids; a
    supplier's, its id minus the smallest (or its place among the sorted ids when that would be too wide).
    """

    period_low: int
    periods: int
    anchor_ids: pl.Series
    supplier_low: int
    supplier_ids: pl.Series | None
    suppliers: int
    scopes: pl.Series  # scope name of each scope code
    single: pl.DataFrame  # anchor_code, scope_code of the scopes with one anchor
    several: pl.DataFrame  # anchor_code, scope_code of the scopes with several anchors

    @staticmethod
    def of(facts: pl.DataFrame, scope_anchors: pl.DataFrame, periods: PeriodKind) -> "_Codes":
        bounds = facts.select(
            p_low=_period_key(pl.col("qs"), periods).min(),
            p_high=_period_key(pl.col("qe"), periods).max(),
            s_low=pl.col("supplier_id").min(),
            s_high=pl.col("supplier_id").max(),
        ).row(0)
        p_low, p_high, s_low, s_high = (b if isinstance(b, int) else 0 for b in bounds)
        period_count = p_high - p_low + 1 if facts.height else 0
        anchor_ids = pl.concat([facts["anchor_id"].unique(), scope_anchors["anchor_id"]]).unique().sort()
        scopes = scope_anchors["scope"].unique(maintain_order=True)
        sizes = scope_anchors.group_by("scope").agg(pl.len().alias("size"))
        members = (
            scope_anchors.join(sizes, on="scope")
            .join(pl.DataFrame({"scope": scopes, "scope_code": pl.int_range(scopes.len(), eager=True)}), on="scope")
            .select(
                anchor_code=pl.col("anchor_id").replace_strict(anchor_ids, pl.int_range(anchor_ids.len(), eager=True)),
                scope_code="scope_code",
                single=pl.col("size") == 1,
            )
        )
        widest = max(anchor_ids.len(), scopes.len(), 1) * max(period_count, 1)
        supplier_ids = None
        suppliers = s_high - s_low + 1
        if (widest * suppliers).bit_length() > _CODE_BITS or (widest << len(_BIT)).bit_length() > _CODE_BITS:
            supplier_ids = facts["supplier_id"].unique().sort()
            s_low, suppliers = 0, max(supplier_ids.len(), 1)
        if (widest * suppliers).bit_length() > _CODE_BITS or (widest << len(_BIT)).bit_length() > _CODE_BITS:
            raise ValueError("too many periods x suppliers x anchors to pack into one Int64 key")
        return _Codes(
            period_low=p_low,
            periods=period_count,
            anchor_ids=anchor_ids,
            supplier_low=s_low,
            supplier_ids=supplier_ids,
            suppliers=suppliers,
            scopes=scopes,
            single=members.filter("single").drop("single"),
            several=members.filter(~pl.col("single")).drop("single"),
        )

    @property
    def anchors(self) -> int:
        return self.anchor_ids.len()

    def scope_of(self, members: pl.DataFrame) -> pl.Series | None:
        """Scope code of each anchor code in ``members`` (null if none); None when an anchor has several."""
        if members["anchor_code"].is_duplicated().any():
            return None
        return pl.Series([None] * self.anchors, dtype=pl.Int64).scatter(members["anchor_code"], members["scope_code"])

    def anchor_code(self, anchor_id: pl.Expr) -> pl.Expr:
        return anchor_id.replace_strict(self.anchor_ids, pl.int_range(self.anchors, eager=True))

    def anchor_id(self, code: pl.Expr) -> pl.Expr:
        return pl.lit(self.anchor_ids).gather(code)

    def supplier_code(self, supplier_id: pl.Expr) -> pl.Expr:
        if self.supplier_ids is None:
            return supplier_id - self.supplier_low
        return supplier_id.replace_strict(self.supplier_ids, pl.int_range(self.supplier_ids.len(), eager=True))

    def supplier_id(self, code: pl.Expr) -> pl.Expr:
        if self.supplier_ids is None:
            return code + self.supplier_low
        return pl.lit(self.supplier_ids).gather(code)

    def scope_period(self, scope_period: pl.Expr) -> list[pl.Expr]:
        """scope and period_key from ``scope_code * periods + period code``."""
        periods = max(self.periods, 1)
        return [
            pl.lit(self.scopes).gather(scope_period // periods).alias("scope"),
            (scope_period % periods + self.period_low).alias("period_key"),
        ]


def _period_rows(facts: pl.DataFrame, basis: Basis, periods: PeriodKind, codes: _Codes) -> pl.DataFrame:
    """One row per included line and period it has money in: r (row of ``facts``), p (period code), pence.

    Every grouping after this point works on these rows and per-line keys looked up by r.
    """
    if basis != "spread":
        return facts.select(
            r=pl.int_range(pl.len(), dtype=pl.UInt32),
            p=(_period_key(pl.col("qs"), periods) - codes.period_low).cast(pl.Int32),
            pence=pl.col("value_pence"),
        )
    if periods == "quarter":
        return _spread_rows(facts, codes.period_low).select("r", p="q", pence="allocated_pence").collect()
    parts = _spread_rows(facts, 0)
    # A line's quarters are contiguous and in order, so its years are runs of rows: sum each run.
    year = pl.col("q") // 4 - codes.period_low
    key = pl.col("r").cast(pl.Int64) * max(codes.periods, 1) + year
    return (
        parts.select(key=key, pence="allocated_pence")
        .collect(engine="streaming")
        .with_columns(pl.col("key").set_sorted())
        .group_by("key", maintain_order=True)
        .agg(pl.col("pence").sum())
        .select(
            r=(pl.col("key") // max(codes.periods, 1)).cast(pl.UInt32),
            p=(pl.col("key") % max(codes.periods, 1)).cast(pl.Int32),
            pence="pence",
        )
    )


def _spread_parts(spans: pl.DataFrame, *, detail: bool) -> pl.LazyFrame:
    """Largest-remainder split of each line over the quarters of its first_day..last_day, without sorting.

    Returns r (row of ``spans``), quarter_idx, allocated_pence and, with ``detail``, days_in_period and
    days_total: one row per line and quarter, in line order.

    A line's parts are its first quarter, its last one and the whole quarters between, and a whole quarter's
    days (so its floor and remainder) depend only on its length, 90, 91 or 92. So a line has at most five
    distinct remainders, and which of its parts get the left-over pence is settled once per line (see
    ``_with_bump_thresholds``); each row then needs only a few lookups in a small table of quarters.
    """
    schema: dict[str, type[pl.DataType]] = {"r": pl.UInt32, "quarter_idx": pl.Int64, "allocated_pence": pl.Int64}
    if detail:
        schema |= {"days_in_period": pl.Int64, "days_total": pl.Int64}
    low, high = spans["qs"].min(), spans["qe"].max()
    if not isinstance(low, int) or not isinstance(high, int):
        return pl.LazyFrame(schema=schema)
    quarters = _quarter_table(low, high)
    # A whole quarter's threshold is compared with a count of quarters, so this many bits hold it; the
    # three (one per length) and the first and last part's flags then pack into one Int64 if they fit.
    bits = (high - low + 2).bit_length()
    width = bits if 3 * bits + 2 <= _PACKED_KEY_BITS else None
    bumps = ["thresholds"] if width is not None else ["first_bump", "last_bump", "t90", "t91", "t92"]
    lines = _with_bump_thresholds(spans.lazy().with_row_index("r"), quarters, low, width).select(
        "r",
        *bumps,
        s=pl.col("first_day").cast(pl.Int32),
        e=pl.col("last_day").cast(pl.Int32),
        value=pl.col("value_pence"),
        # quarters as offsets from low index the quarter table directly
        o=pl.int_ranges(pl.col("qs") - low, pl.col("qe") - low + 1, dtype=pl.UInt32),
    )
    o = pl.col("o")
    q_start = pl.lit(quarters["start"].cast(pl.Int32)).gather(o)
    q_end = pl.lit(quarters["end"].cast(pl.Int32)).gather(o)
    if width is None:
        length = pl.lit(quarters["length"]).gather(o)
        threshold = pl.when(length == 90).then("t90").when(length == 91).then("t91").otherwise("t92")
        whole_bump = threshold > pl.lit(quarters["earlier"]).gather(o)
        first_bump, last_bump = pl.col("first_bump"), pl.col("last_bump")
    else:
        shifts = [2 + width * (length - 90) for length in quarters["length"]]
        mask = pl.Series([((1 << width) - 1) << shift for shift in shifts])
        shifted = pl.Series([earlier << shift for earlier, shift in zip(quarters["earlier"], shifts, strict=True)])
        whole_bump = (pl.col("thresholds") & pl.lit(mask).gather(o)) > pl.lit(shifted).gather(o)
        first_bump, last_bump = (pl.col("thresholds") & 1) != 0, (pl.col("thresholds") & 2) != 0
    days = pl.min_horizontal("e", q_end) - pl.max_horizontal("s", q_start) + 1
    bump = (
        pl.when(pl.col("s") >= q_start)
        .then(first_bump)
        .when(pl.col("e") <= q_end)
        .then(last_bump)
        .otherwise(whole_bump)
    )
    total = pl.col("e") - pl.col("s") + 1
    allocated = pl.col("value") * days.cast(pl.Int64) // total.cast(pl.Int64) + bump.cast(pl.Int64)
    columns = {
        "r": pl.col("r"),
        "quarter_idx": pl.col("o").cast(pl.Int64) + low,
        "allocated_pence": allocated,
        "days_in_period": days.cast(pl.Int64),
        "days_total": total.cast(pl.Int64),
    }
    return lines.explode("o").select(**{name: columns[name] for name in schema})


_ROW_BLOCK = 1 << 16  # rows per block of the numpy steps over rows (a block's buffers stay in cache)


def _spread_rows(spans: pl.DataFrame, quarter_base: int) -> pl.LazyFrame:
    """``_spread_parts(spans, detail=False)`` with q (Int32: quarter_idx - quarter_base) for quarter_idx: the
    same pence, made with numpy from each line's parts (its first and last part, and the floor and threshold
    of each length of whole quarter), so that no row needs a division, only a few lookups in small tables.

    Lines go in blocks (``_line_blocks``) rather than exploding every line's columns to all its rows first,
    and each block works in the same few buffers and writes straight into the output: fresh memory is paid for
    by the first run in a process (page faults), so only the output is as long as all the rows.
    """
    schema = {"r": pl.UInt32, "q": pl.Int32, "allocated_pence": pl.Int64}
    low, high = spans["qs"].min(), spans["qe"].max()
    if not isinstance(low, int) or not isinstance(high, int):
        return pl.LazyFrame(schema=schema)
    quarters = _quarter_table(low, high)
    parts = (
        _with_bump_thresholds(spans.lazy(), quarters, low, None)
        .select(
            # Int32 where a count of quarters will do: these columns are made, and copied into one chunk, in
            # fresh memory (page faults) on every call
            qs=(pl.col("qs").cast(pl.Int64) - low).cast(pl.Int32),
            count=(pl.col("qe") - pl.col("qs") + 1).cast(pl.Int32),
            first=pl.col("f_first") + pl.col("first_bump").cast(pl.Int64),
            last=pl.col("f_last") + pl.col("last_bump").cast(pl.Int64),
            **{f"f{d}": f"f_{d}" for d in _LENGTHS},
            **{f"t{d}": pl.col(f"t{d}").cast(pl.Int32) for d in _LENGTHS},
        )
        # streaming: a few morsels of lines at a time hold the thirty-odd columns of the steps, not all the lines
        .collect(engine="streaming")
    )
    qs, count, first, last = (_numpy_of(parts[c]) for c in ("qs", "count", "first", "last"))
    floor_of = [_numpy_of(parts[f"f{d}"]) for d in _LENGTHS]
    threshold_of = [_numpy_of(parts[f"t{d}"]) for d in _LENGTHS]
    kind = np.searchsorted(np.array(_LENGTHS), quarters["length"].to_numpy()).astype(np.int64)
    earlier = quarters["earlier"].to_numpy()
    blocks = _line_blocks(count.astype(np.int64))
    total = blocks[-1].row_high if blocks else 0
    r = np.empty(total, dtype=np.uint32)
    quarter = np.empty(total, dtype=np.int32)
    pence = np.empty(total, dtype=np.int64)

    def fill(blocks: list[_Block]) -> None:
        """The output rows of these blocks, in buffers of this call's own."""
        longest = max((b.row_high - b.row_low for b in blocks), default=0)
        widest = max((b.stop - b.start for b in blocks), default=0)
        line_buffer, o_buffer, at_buffer, a_buffer, b_buffer = (np.empty(longest, dtype=np.int64) for _ in range(5))
        bump_buffer = np.empty(longest, dtype=np.bool_)
        # per line of a block, the floor and the threshold of each length side by side, so that a row finds its
        # own by one index
        floors = np.empty((widest, len(_LENGTHS)), np.int64)
        thresholds = np.empty((widest, len(_LENGTHS)), np.int64)
        for block in blocks:
            lines, rows = slice(block.start, block.stop), slice(block.row_low, block.row_high)
            size, width = block.row_high - block.row_low, block.stop - block.start
            line = _runs(block, np.arange(width, dtype=np.int64), 0, line_buffer)
            o = _runs(block, qs[lines], 1, o_buffer)
            for i in range(len(_LENGTHS)):
                floors[:width, i] = floor_of[i][lines]
                thresholds[:width, i] = threshold_of[i][lines]
            at = np.multiply(line, len(_LENGTHS), out=at_buffer[:size])
            at += np.take(kind, o, out=a_buffer[:size], mode="clip")
            # (mode "clip": with "raise", take writes to a temporary first; the indices are all in range)
            part = np.take(floors[:width].ravel(), at, out=pence[rows], mode="clip")
            bump = np.less(
                np.take(earlier, o, out=a_buffer[:size], mode="clip"),
                np.take(thresholds[:width].ravel(), at, out=b_buffer[:size], mode="clip"),
                out=bump_buffer[:size],
            )
            np.add(part, bump, out=part)
            part[block.heads] = first[lines]
            several = block.n > 1
            part[block.ends[several] - (block.row_low + 1)] = last[lines][several]
            np.add(line, block.start, out=r[rows], casting="unsafe")
            np.add(o, low - quarter_base, out=quarter[rows], casting="unsafe")

    _in_halves(fill, blocks)
    return pl.LazyFrame({"r": r, "q": quarter, "allocated_pence": pence}, schema=schema)


def _numpy_of(column: pl.Series) -> npt.NDArray[Any]:
    """A column without nulls as one numpy array. Its chunks are copied into numpy's memory rather than first
    into one polars chunk: polars' fresh memory costs a page fault per 4 KiB, numpy's large arrays get huge
    pages."""
    chunks = column.get_chunks()
    if len(chunks) <= 1:
        return column.to_numpy()
    return np.concatenate([chunk.to_numpy() for chunk in chunks])


_PACKED_KEY_BITS = 63
_LENGTHS = (90, 91, 92)  # days in a whole quarter


def _quarter_table(low: int, high: int) -> pl.DataFrame:
    """Quarters low..high: first and last day (day numbers), length in days, and ``earlier``, how many
    quarters from low before it have the same length."""
    index = pl.int_range(low, high + 2, dtype=pl.Int64)
    table = pl.select(start=quarter_start_expr(index).cast(pl.Int64)).with_columns(
        end=pl.col("start").shift(-1) - 1, length=pl.col("start").shift(-1) - pl.col("start")
    )[:-1]
    if not set(table["length"].unique()) <= set(_LENGTHS):
        raise AssertionError("a quarter is 90, 91 or 92 days")
    return table.with_columns(earlier=pl.int_range(pl.len(), dtype=pl.Int64).over("length"))


def _with_bump_thresholds(spans: pl.LazyFrame, quarters: pl.DataFrame, low: int, width: int | None) -> pl.LazyFrame:
    """Per line, which of its parts get one of the left-over pence (largest remainder first, ties to the
    earlier quarter).

    The first part's remainder, the last part's and those of whole quarters of each length are ranked
    against each other, weighted by how many parts have each, which gives the first and last part a yes or
    no and each length a count of its whole quarters that get a penny: the earliest ones. That count becomes
    a threshold on ``earlier`` of the quarter table (the line's first whole quarter of that length has
    ``earlier`` = the number of such quarters before it). Whole quarters of two lengths have equal
    remainders only when value * 1 or value * 2 is a multiple of the days, and that remainder is then 0,
    which never gets a penny, so such ties need no ordering between lengths.

    With ``width``: one Int64 ``thresholds``, bit 0 the first part, bit 1 the last, then a ``width``-bit
    threshold for each length in turn; otherwise columns first_bump, last_bump, t90, t91, t92.
    """
    before = {d: pl.concat([pl.Series([0]), (quarters["length"] == d).cast(pl.Int64).cum_sum()]) for d in _LENGTHS}
    s, e = pl.col("first_day").cast(pl.Int64), pl.col("last_day").cast(pl.Int64)
    several = pl.col("qe") > pl.col("qs")
    stage = spans.with_columns(
        v=pl.col("value_pence"),
        total=e - s + 1,
        several=several,
        first_days=pl.min_horizontal(e, pl.lit(quarters["end"]).gather(pl.col("qs") - low)) - s + 1,
        last_days=e - pl.lit(quarters["start"]).gather(pl.col("qe") - low) + 1,
        **{
            f"n{d}": pl.when(several)
            .then(pl.lit(before[d]).gather(pl.col("qe") - low) - pl.lit(before[d]).gather(pl.col("qs") - low + 1))
            .otherwise(0)
            for d in _LENGTHS
        },
        **{f"o{d}": pl.lit(before[d]).gather(pl.col("qs") - low + 1) for d in _LENGTHS},
    )
    kinds = {
        "first": pl.col("first_days"),
        "last": pl.col("last_days"),
        **{str(d): pl.lit(d, pl.Int64) for d in _LENGTHS},
    }
    stage = stage.with_columns(
        **{f"f_{k}": pl.col("v") * days // pl.col("total") for k, days in kinds.items()}
    ).with_columns(**{f"r_{k}": pl.col("v") * days - pl.col(f"f_{k}") * pl.col("total") for k, days in kinds.items()})
    n = {str(d): pl.col(f"n{d}") for d in _LENGTHS}
    r = {k: pl.col(f"r_{k}") for k in kinds}
    stage = stage.with_columns(
        left=pl.col("v")
        - pl.col("f_first")
        - pl.when("several").then(pl.col("f_last")).otherwise(0)
        - pl.sum_horizontal(n[k] * pl.col(f"f_{k}") for k in n)
    )

    def above(rho: pl.Expr) -> pl.Expr:
        """How many of the line's parts have a larger remainder than rho."""
        last = (pl.col("several") & (r["last"] > rho)).cast(pl.Int64)
        return (
            (r["first"] > rho).cast(pl.Int64) + last + pl.sum_horizontal(n[k] * (r[k] > rho).cast(pl.Int64) for k in n)
        )

    def tied(rho: pl.Expr) -> pl.Expr:
        return (r["first"] == rho).cast(pl.Int64)

    left = pl.col("left")
    ties_before_last = tied(r["last"]) + pl.sum_horizontal(n[k] * (r[k] == r["last"]).cast(pl.Int64) for k in n)
    result = stage.with_columns(
        first_bump=above(r["first"]) < left,
        last_bump=pl.col("several") & (above(r["last"]) + ties_before_last < left),
        **{
            f"t{k}": pl.col(f"o{k}") + pl.min_horizontal(n[k], pl.max_horizontal(0, left - above(r[k]) - tied(r[k])))
            for k in n
        },
    )
    if width is not None:
        result = result.with_columns(
            thresholds=pl.col("first_bump").cast(pl.Int64)
            + 2 * pl.col("last_bump").cast(pl.Int64)
            + 4 * (pl.col("t90") + pl.col("t91") * 2**width + pl.col("t92") * 2 ** (2 * width))
        )
    return result


def _in_pair_order(facts: pl.DataFrame, codes: _Codes, basis: Basis) -> pl.DataFrame:
    """The lines with anchor and supplier codes (a, x), in (anchor, supplier) order: each anchor's rows then
    come together, which keeps the money sums' groups few at a time, and a supplier's lines for one anchor
    are neighbours. Only the columns read later travel (the ids are now in a and x; the days only on the
    spread basis)."""
    a, x = codes.anchor_code(pl.col("anchor_id")), codes.supplier_code(pl.col("supplier_id"))
    dropped = ["anchor_id", "supplier_id"] + ([] if basis == "spread" else ["first_day", "last_day"])
    facts = facts.select(pl.exclude(dropped), a=a, x=x)
    pair = facts.select(pl.col("a") * codes.suppliers + pl.col("x")).to_series().to_numpy()
    if pair.size < 2 or bool((pair[1:] >= pair[:-1]).all()):
        # One chunk per column: looking rows up by position in a chunked column is several times slower.
        return facts.rechunk()
    index_bits = max(facts.height - 1, 1).bit_length()
    if (int(pair.max()) << index_bits).bit_length() <= _PACKED_KEY_BITS:
        # sorting plain integers with the row number packed in is much cheaper than an arg-sort (numpy's
        # vectorised sort several times cheaper than polars' here)
        packed = pair << index_bits
        packed |= np.arange(pair.size, dtype=np.int64)
        packed.sort()
        packed &= (1 << index_bits) - 1
        return _gathered(facts, packed)
    return _gathered(facts, pl.Series(pair).arg_sort().to_numpy())


def _gathered(frame: pl.DataFrame, index: npt.NDArray[Any]) -> pl.DataFrame:
    """``frame[index]`` in one chunk per column. Integer columns without nulls are gathered by numpy: a
    polars gather (of a column made one chunk first, or it is several times slower) writes into polars'
    fresh memory at a page fault per 4 KiB, numpy's large arrays get huge pages."""
    columns = {}
    for column in frame.get_columns():
        if column.dtype.is_integer() and column.null_count() == 0:
            columns[column.name] = pl.Series(column.name, np.take(_numpy_of(column), index), dtype=column.dtype)
        else:
            columns[column.name] = column.rechunk().gather(index)
    return pl.DataFrame(columns)


def _line_keys(facts: pl.DataFrame, codes: _Codes, periods: PeriodKind) -> pl.DataFrame:
    """Per included line (``facts`` from ``_in_pair_order``): the anchor-level part of each grouping key
    (the period goes on top per row), anchor and supplier codes, bits, first and last period code, the
    one-anchor scope its anchor makes up (``own``) and the scope of several anchors it belongs to
    (``several``), each null if none or if there are more than one, and whether it is the only line of its
    anchor and supplier in its own scope (``alone``)."""
    a = pl.col("a")
    local = (pl.col("tier") == TIERS.index("local")).cast(pl.Int64)
    pair = a * codes.suppliers + pl.col("x")

    def scope(members: pl.DataFrame) -> pl.Expr:
        scope_of = codes.scope_of(members)
        return pl.lit(None, pl.Int64) if scope_of is None else pl.lit(scope_of).gather("a")

    keys = facts.select(
        tc=(a * len(TIERS) + pl.col("tier")) * len(CATEGORIES) + pl.col("category"),
        fl=(a * 27 + pl.col("flags")) * 2 + pl.col("fallback").cast(pl.Int64),
        cpv=(a * 128 + pl.col("division").cast(pl.Int64).fill_null(_NO_DIVISION)) * 2 + local,
        a=a,
        x="x",
        bits="bits",
        first=_period_key(pl.col("qs").cast(pl.Int64), periods) - codes.period_low,
        last=_period_key(pl.col("qe").cast(pl.Int64), periods) - codes.period_low,
    ).with_columns(own=scope(codes.single), several=scope(codes.several))
    alone = (pair != pair.shift(1)).fill_null(True) & (pair != pair.shift(-1)).fill_null(True)
    # one chunk per column: rows look these up by position, which is slower across chunks
    return keys.with_columns(alone=alone & pl.col("own").is_not_null()).rechunk()


_NO_DIVISION = 127  # divisions are two digits
_TC = len(TIERS) * len(CATEGORIES)
_FL = 27 * 2
_CPV = 128 * 2


def _row_sums(rows: pl.DataFrame, keys: pl.DataFrame, codes: _Codes) -> tuple[pl.DataFrame, ...]:
    """Pence and rows per period and each of the line keys tc, fl and cpv (key: period code * the key's range
    per period + the line's key), in no particular order.

    The keys are narrow (a few hundred thousand values at most per period for cpv), so the sums go straight
    into arrays indexed by key; a hash grouping costs several times more. Wider ones are grouped."""
    widths = _key_widths(codes)
    if not _fits_dense(rows, codes):
        period = pl.col("p").cast(pl.Int64)
        aggs = [pl.col("pence").sum(), pl.len().cast(pl.Int64).alias("lines")]
        return tuple(
            # One at a time: run together they compete for the same two cores and caches.
            rows.lazy()
            .select("pence", key=period * width + pl.lit(keys[name]).gather("r"))
            .group_by("key")
            .agg(aggs)
            .collect(engine="streaming")
            .rename({"key": name})
            for name, width in widths.items()
        )
    frames = []
    for name, (sums, lines) in _dense_sums(rows, keys, codes).items():
        found = np.flatnonzero(lines)
        frames.append(pl.DataFrame({name: found, "pence": sums[found], "lines": lines[found]}))
    return tuple(frames)


def _key_widths(codes: _Codes) -> dict[str, int]:
    return {"tc": codes.anchors * _TC, "fl": codes.anchors * _FL, "cpv": codes.anchors * _CPV}


def _fits_dense(rows: pl.DataFrame, codes: _Codes) -> bool:
    return rows.height > 0 and max(codes.periods, 1) * max(_key_widths(codes).values()) <= _DENSE_LIMIT


def _dense_sums(
    rows: pl.DataFrame, keys: pl.DataFrame, codes: _Codes
) -> dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]]:
    """Per line key tc, fl and cpv: pence and rows per period code * the key's width + key, as arrays
    (``_row_sums`` when they fit)."""
    widths = _key_widths(codes)
    periods = max(codes.periods, 1)
    pence = rows["pence"].to_numpy()
    sums = {name: np.zeros(periods * width, dtype=np.int64) for name, width in widths.items()}
    line_keys = {name: keys[name].to_numpy() for name in widths}
    blocks, first, count = _period_runs(keys, rows.height)
    buffer = np.empty(max((b.row_high - b.row_low for b in blocks), default=0), dtype=np.int64)
    for block in blocks:
        in_block = slice(block.start, block.stop)
        for name, width in widths.items():
            # a line's key in its first period, then one period (width) further at each of its rows
            key = _runs(block, line_keys[name][in_block] + first[in_block] * width, width, buffer)
            np.add.at(sums[name], key, pence[block.row_low : block.row_high])
    slots = np.empty(first.size, dtype=np.int64)
    return {
        name: (sums[name], _lines_per_period(line_keys[name], first, count, width, periods, slots))
        for name, width in widths.items()
    }


@dataclass(frozen=True)
class _Block:
    """A block of consecutive lines and their rows: lines start:stop, rows row_low:row_high; n, the rows of
    each line, and ends, where each line's rows end (counted from row 0)."""

    start: int
    stop: int
    row_low: int
    row_high: int
    n: npt.NDArray[np.int64]
    ends: npt.NDArray[np.int64]

    @property
    def heads(self) -> npt.NDArray[np.int64]:
        """Where each line's rows begin, counted from row_low (made when read: as many as the lines, and cheap)."""
        heads = self.ends - self.n
        heads -= self.row_low
        return heads

    @cached_property
    def one_row_each(self) -> bool:
        """Every line of the block has one row (so a line's rows are just the line)."""
        return self.row_high - self.row_low == self.stop - self.start

    @cached_property
    def later_heads(self) -> npt.NDArray[np.int64]:
        """``heads`` but the first; kept, as every ``_runs`` over the block needs them."""
        return self.ends[:-1] - self.row_low

    @cached_property
    def extra_rows(self) -> npt.NDArray[np.int64]:
        """Rows of each line but the last, less one; kept like ``later_heads``."""
        return self.n[:-1] - 1


def _line_blocks(count: npt.NDArray[np.int64]) -> list[_Block]:
    """Blocks of consecutive lines with ``count`` rows each, the rows in line order: as many lines as keep a
    block within ``_ROW_BLOCK`` rows (at least one line).

    Work on rows goes a block at a time so that its temporaries stay small (in cache) and are reused rather
    than each being an array as long as all the rows."""
    ends = np.cumsum(count)
    blocks = []
    start, row_low = 0, 0
    while start < count.size:
        stop = max(int(np.searchsorted(ends, row_low + _ROW_BLOCK, side="right")), start + 1)
        row_high = int(ends[stop - 1])
        n = count[start:stop]
        blocks.append(_Block(start, stop, row_low, row_high, n, ends[start:stop]))
        start, row_low = stop, row_high
    return blocks


def _in_halves(work: Callable[[list[_Block]], None], blocks: list[_Block]) -> None:
    """``work`` on the first half of the blocks in a second thread and on the rest in this one: its numpy steps let
    go of the GIL, and the other core is mostly idle meanwhile."""
    if len(blocks) < 4:
        work(blocks)
        return
    half = len(blocks) // 2
    with ThreadPoolExecutor(max_workers=1) as pool:
        done = pool.submit(work, blocks[:half])
        work(blocks[half:])
        done.result()


_Int = TypeVar("_Int", np.int64, np.int32)


def _runs(block: _Block, first: npt.NDArray[Any], step: int, out: npt.NDArray[_Int]) -> npt.NDArray[_Int]:
    """Per row of the block, ``first`` of its line plus ``step`` times its place among the line's rows (a
    line's own value repeated with step 0), made by a cumulative sum: a gather or np.repeat per row costs
    several times more. In ``out`` (its dtype)."""
    out = out[: block.row_high - block.row_low]
    if block.one_row_each:
        # each row is its line's first (every block on the bases that place a line in one period)
        np.copyto(out, first, casting="unsafe")
        return out
    out.fill(step)
    change = np.subtract(first[1:], first[:-1])
    if step:
        change -= block.extra_rows if step == 1 else block.extra_rows * step
    out[block.later_heads] = change
    out[0] = first[0]
    return np.cumsum(out, out=out, dtype=out.dtype)


def _period_runs(keys: pl.DataFrame, rows: int) -> tuple[list[_Block], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The line blocks of ``_period_rows`` (one row per line and period from its first to its last, in line
    order), each line's first period code and its count of rows."""
    first = keys["first"].to_numpy()
    count = keys["last"].to_numpy() - first
    count += 1
    if int(count.sum()) != rows:
        raise AssertionError("a line has one row per period from its first to its last")
    return _line_blocks(count), first, count


def _lines_per_period(
    line_key: npt.NDArray[np.int64],
    first: npt.NDArray[np.int64],
    count: npt.NDArray[np.int64],
    width: int,
    periods: int,
    slots: npt.NDArray[np.int64],
) -> npt.NDArray[np.int64]:
    """Rows per period and line key (period code * width + key), from the lines (their first period code and
    count of rows; ``slots``, a buffer as long): a line has one row in each period from its first to its last,
    so count +1 at its first and -1 after its last, and run the sums."""
    size = width * (periods + 1)
    # period-major (period * width + key), so that the running sums along the periods leave the counts in place
    slot = np.multiply(first, width, out=slots)
    slot += line_key
    changes = np.bincount(slot, minlength=size)
    slot = np.add(first, count, out=slots)
    slot *= width
    slot += line_key
    changes -= np.bincount(slot, minlength=size)
    held = changes.reshape(periods + 1, width)
    np.cumsum(held, axis=0, out=held)
    return changes[: periods * width].astype(np.int64, copy=False)


def _money_sums(
    rows: pl.DataFrame, keys: pl.DataFrame, codes: _Codes, scope_anchors: pl.DataFrame, basis: Basis
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Value sums per scope and period (summary columns) and per CPV division."""
    if _fits_dense(rows, codes):
        # the arrays are rolled up to scopes along their anchor axis
        members = pl.concat([codes.single, codes.several]).group_by("scope_code").agg("anchor_code").sort("scope_code")
        groups = _Groups("scope", codes.scopes.gather(members["scope_code"]), members["anchor_code"].to_list())
        value_frame, per_division = _dense_anchor_sums(_dense_sums(rows, keys, codes), codes, basis, groups)
        cpv_frame = per_division.with_columns(cpv_division=pl.col("division").cast(pl.String).str.zfill(2)).drop(
            "division"
        )
        return value_frame, cpv_frame
    tc, fl, cpv = _row_sums(rows, keys, codes)
    per_anchor, per_division = _grouped_anchor_sums(tc, fl, cpv, codes, basis)
    value_sums = _to_scopes(per_anchor.lazy(), scope_anchors, ["period_key"], [pl.exclude("anchor_id", *_KEY).sum()])
    by_cpv = (
        _to_scopes(
            per_division.lazy(),
            scope_anchors,
            ["period_key", "division"],
            [pl.col("lines", "value_pence", "local_pence").sum()],
        )
        .with_columns(cpv_division=pl.col("division").cast(pl.String).str.zfill(2))
        .drop("division")
    )
    value_frame, cpv_frame = pl.collect_all([value_sums, by_cpv])
    return value_frame, cpv_frame


@dataclass(frozen=True)
class _Groups:
    """Groups of anchors to sum over: the key column's name, its value for each group and each group's anchor
    codes."""

    key: str
    names: pl.Series
    members: list[list[int]]

    @staticmethod
    def anchors(codes: _Codes) -> "_Groups":
        return _Groups("anchor_id", codes.anchor_ids, [[a] for a in range(codes.anchors)])

    def roll(self, per_anchor: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """An array (period, anchor, ...) summed to (period, group, ...)."""
        single = [g for g, m in enumerate(self.members) if len(m) == 1]
        out = np.empty((per_anchor.shape[0], len(self.members), *per_anchor.shape[2:]), dtype=np.int64)
        out[:, single] = per_anchor[:, [self.members[g][0] for g in single]]
        for g, m in enumerate(self.members):
            if len(m) == 1:
                continue
            # member by member into the group's slice: no copy of the members' part of the array
            group = out[:, g]
            np.copyto(group, per_anchor[:, m[0]])
            for a in m[1:]:
                group += per_anchor[:, a]
        return out


_FALLBACK_FOR: dict[str, Callable[[Basis], bool]] = {
    "spread_fallback": lambda basis: basis == "spread",
    "award_fallback": lambda basis: basis != "spread",
}


def _dense_anchor_sums(
    sums: dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]],
    codes: _Codes,
    basis: Basis,
    groups: _Groups | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``_grouped_anchor_sums`` from the arrays of ``_dense_sums``: each key's parts are axes of its array,
    so every column is a sum over some of them. With ``groups``, per group of anchors instead of per anchor
    (the group's key column in place of anchor_id)."""
    groups = groups or _Groups.anchors(codes)
    periods, anchors = max(codes.periods, 1), codes.anchors
    tc, tc_lines = (groups.roll(a.reshape(periods, anchors, len(TIERS), len(CATEGORIES))) for a in sums["tc"])
    # flags: the sme, vcse and social_enterprise state (0 False, 1 True, 2 unknown), then the fallback
    fl, fl_lines = (groups.roll(a.reshape(periods, anchors, 3, 3, 3, 2)) for a in sums["fl"])
    lines = tc_lines.sum(axis=(2, 3))
    period, anchor = np.nonzero(lines)
    ap = (period, anchor)
    by_flag = [fl.sum(axis=tuple(d for d in (2, 3, 4, 5) if d != 2 + i)) for i in range(3)]
    columns: dict[str, pl.Series | npt.NDArray[np.int64]] = {
        groups.key: groups.names.gather(anchor),
        "period_key": period.astype(np.int64) + codes.period_low,
        "total_pence": tc.sum(axis=(2, 3))[ap],
        "lines": lines[ap],
        **{_tier_col(t) + "_pence": tc[:, :, i].sum(axis=2)[ap] for i, t in enumerate(TIERS)},
        **{f"category_{c}_pence": tc[:, :, :, i].sum(axis=2)[ap] for i, c in enumerate(CATEGORIES)},
        **{f"{f}_pence": by_flag[i][:, :, 1][ap] for i, f in enumerate(FLAGS)},
        **{f"{f}_unknown_pence": by_flag[i][:, :, 2][ap] for i, f in enumerate(FLAGS)},
    }
    fallback = {"lines": fl_lines[..., 1].sum(axis=(2, 3, 4))[ap], "pence": fl[..., 1].sum(axis=(2, 3, 4))[ap]}
    for what in ("lines", "pence"):
        for k, on in _FALLBACK_FOR.items():
            # as the grouped sums make them: a basis without this fallback has Int32 zeros
            columns[f"{k}_{what}"] = fallback[what] if on(basis) else pl.Series(np.zeros(len(period), np.int32))
    per_anchor = pl.DataFrame(columns)
    # cpv: the division (_NO_DIVISION: none), then whether the line is local
    cpv, cpv_lines = (groups.roll(a.reshape(periods, anchors, 128, 2)) for a in sums["cpv"])
    division_lines = cpv_lines.sum(axis=3)
    apd = np.nonzero(division_lines)
    per_division = pl.DataFrame(
        {
            groups.key: groups.names.gather(apd[1]),
            "period_key": apd[0].astype(np.int64) + codes.period_low,
            "division": apd[2].astype(np.int8),
            "lines": division_lines[apd],
            "value_pence": cpv.sum(axis=3)[apd],
            "local_pence": cpv[..., 1][apd],
        }
    ).with_columns(division=pl.when(pl.col("division") != _NO_DIVISION).then("division"))
    return per_anchor, per_division


def _grouped_anchor_sums(
    tc: pl.DataFrame, fl: pl.DataFrame, cpv: pl.DataFrame, codes: _Codes, basis: Basis
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per anchor and period, the summary's money columns; per anchor, period and CPV division, lines, value
    and local value."""

    def anchor_period(anchor_period: pl.Expr) -> list[pl.Expr]:
        return [
            codes.anchor_id(anchor_period % codes.anchors).alias("anchor_id"),
            (anchor_period // codes.anchors + codes.period_low).alias("period_key"),
        ]

    def where(condition: pl.Expr, column: str = "pence") -> pl.Expr:
        return pl.when(condition).then(pl.col(column)).otherwise(0).sum()

    tier, category = pl.col("tc") % _TC // len(CATEGORIES), pl.col("tc") % len(CATEGORIES)
    by_tc = tc.group_by(ap=pl.col("tc") // _TC).agg(
        pl.col("pence").sum().alias("total_pence"),
        pl.col("lines").sum(),
        *[where(tier == i).alias(_tier_col(t) + "_pence") for i, t in enumerate(TIERS)],
        *[where(category == i).alias(f"category_{c}_pence") for i, c in enumerate(CATEGORIES)],
    )
    state = [pl.col("fl") % _FL // 2 // 9, pl.col("fl") % _FL // 2 // 3 % 3, pl.col("fl") % _FL // 2 % 3]
    fallback = pl.col("fl") % 2 == 1
    fallback_for = {k: on(basis) for k, on in _FALLBACK_FOR.items()}
    by_fl = fl.group_by(ap=pl.col("fl") // _FL).agg(
        *[where(state[i] == 1).alias(f"{f}_pence") for i, f in enumerate(FLAGS)],
        *[where(state[i] == 2).alias(f"{f}_unknown_pence") for i, f in enumerate(FLAGS)],
        *[(where(fallback, "lines") if on else pl.lit(0)).alias(f"{k}_lines") for k, on in fallback_for.items()],
        *[(where(fallback) if on else pl.lit(0)).alias(f"{k}_pence") for k, on in fallback_for.items()],
    )
    per_anchor = by_tc.join(by_fl, on="ap").select(*anchor_period(pl.col("ap")), pl.exclude("ap"))
    local = pl.col("cpv") % 2 == 1
    per_division = (
        cpv.group_by(apd=pl.col("cpv") // 2)
        .agg(pl.col("lines").sum(), pl.col("pence").sum().alias("value_pence"), where(local).alias("local_pence"))
        .select(
            *anchor_period(pl.col("apd") // 128),
            division=pl.when(pl.col("apd") % 128 != _NO_DIVISION).then((pl.col("apd") % 128).cast(pl.Int8)),
            lines="lines",
            value_pence="value_pence",
            local_pence="local_pence",
        )
    )
    return per_anchor, per_division


_DENSE_LIMIT = 1 << 23  # cells of an array summed by key (_Dense, _row_sums, _supplier_counts): ~100 MB at most


@dataclass(frozen=True)
class _Dense:
    """The suppliers of the scopes of several anchors, as arrays of (scope and period, supplier) cells filled in
    place from the rows: several times cheaper than grouping the rows by hashing, as each row only adds to its
    cell. Columns are only the suppliers with a line in these scopes.

    ``value`` is the supplier's pence there, ``bits`` the union of its lines' bits (0: no row there, as every
    line has a tier bit); ``sp`` is the scope code * periods + period code of each row of the arrays and ``x``
    the supplier code of each column.
    """

    sp: npt.NDArray[np.int64]
    x: npt.NDArray[np.int64]
    value: npt.NDArray[np.int64]
    bits: npt.NDArray[np.int32]

    @staticmethod
    def of(rows: pl.DataFrame, keys: pl.DataFrame, codes: _Codes) -> "_Dense | None":
        """None when an anchor is in more than one scope of several anchors (its rows would go to several
        cells) or the arrays would be too big."""
        if codes.several.height == 0 or rows.height == 0 or codes.scope_of(codes.several) is None:
            return None
        several = keys["several"].fill_null(-1).to_numpy()
        member = several >= 0
        x = keys["x"].to_numpy()
        if codes.suppliers <= _DENSE_LIMIT:
            used = np.zeros(codes.suppliers, dtype=np.bool_)
            used[x[member]] = True
            columns = np.flatnonzero(used)
            column = (np.cumsum(used, dtype=np.int64) - 1)[x]
        else:
            # supplier codes too sparse for a table of them (a column of a line outside these scopes is unused)
            columns = np.unique(x[member])
            column = np.searchsorted(columns, x)
        scope_codes = np.flatnonzero(np.bincount(several[member], minlength=codes.scopes.len()))
        periods = max(codes.periods, 1)
        width = columns.size
        size = scope_codes.size * periods * width
        # counts() makes a row of 256 (the most sets of one family of bits) per row of the arrays
        if size == 0 or max(size, scope_codes.size * periods * 256) > _DENSE_LIMIT:
            return None
        scope_row = np.zeros(codes.scopes.len(), dtype=np.int64)
        scope_row[scope_codes] = np.arange(scope_codes.size)
        # A row's cell is its line's cell in the line's first period plus one period (``stride`` cells) per row
        # after, so cells are made per block of rows by running sums (rows are in line order, one per period
        # from the line's first to its last). A line outside these scopes goes to one spare column, dropped after.
        spare = not member.all()
        stride = width + spare
        line_cell = column  # a fresh array of this step's own
        if spare:
            line_cell[~member] = width
        if scope_codes.size > 1:
            line_cell += scope_row[np.where(member, several, 0)] * (periods * stride)
        line_cell += keys["first"].to_numpy() * stride
        line_bits = keys["bits"].to_numpy()
        pence = rows["pence"].to_numpy()
        value = np.zeros(scope_codes.size * periods * stride, dtype=np.int64)
        union = np.zeros(value.size, dtype=np.int32)
        blocks, _, _ = _period_runs(keys, rows.height)
        longest = max(b.row_high - b.row_low for b in blocks)
        cell_buffer, bits_buffer = np.empty(longest, dtype=np.int64), np.empty(longest, dtype=np.int32)
        for block in blocks:
            lines = slice(block.start, block.stop)
            cell = _runs(block, line_cell[lines], stride, cell_buffer)
            np.add.at(value, cell, pence[block.row_low : block.row_high])
            np.bitwise_or.at(union, cell, _runs(block, line_bits[lines], 0, bits_buffer))
        sp = (scope_codes[:, None] * periods + np.arange(periods, dtype=np.int64)).ravel()
        return _Dense(
            sp=sp, x=columns, value=value.reshape(-1, stride)[:, :width], bits=union.reshape(-1, stride)[:, :width]
        )

    def counts(self, low: int, width: int) -> npt.NDArray[np.int64]:
        """Suppliers per row of the arrays (sp) and set of the ``width`` bits from bit ``low`` on."""
        rows, columns = self.bits.shape
        n = np.empty((rows, width), dtype=np.int64)
        # a few rows at a time, in one buffer: the sets of all the cells at once would be as big again as bits
        step = max(1, _ROW_BLOCK // max(columns, 1))
        buffer = np.empty((min(step, rows), columns), dtype=np.int64)
        offsets = np.arange(buffer.shape[0], dtype=np.int64)[:, None] * width
        for low_row in range(0, rows, step):
            chunk = self.bits[low_row : low_row + step]
            part = buffer[: chunk.shape[0]]
            np.right_shift(chunk, low, out=part)
            part &= width - 1
            part += offsets[: chunk.shape[0]]
            n[low_row : low_row + step] = np.bincount(part.ravel(), minlength=part.shape[0] * width).reshape(-1, width)
        # cells with no row fell in the empty set
        n[:, 0] -= columns - np.count_nonzero(self.bits, axis=1)
        return n

    def candidates(self, top_n: int) -> pl.LazyFrame:
        """sp, x, value, bits of the suppliers that can rank: the top_n largest values of each sp and some
        below them (``_top_suppliers`` ranks them exactly)."""
        present = self.bits != 0
        # The top_n-th largest among every _SAMPLE-th supplier is at most the one among all of them, and much
        # cheaper to find.
        sample = np.where(present[:, ::_SAMPLE], self.value[:, ::_SAMPLE], _INT64_MIN)
        if sample.shape[1] > top_n:
            floor = np.partition(sample, -top_n, axis=1)[:, -top_n]
            present &= self.value >= floor[:, None]
        row, column = np.nonzero(present)
        return pl.LazyFrame(
            {"sp": self.sp[row], "x": self.x[column], "value": self.value[row, column], "bits": self.bits[row, column]},
            schema={"sp": pl.Int64, "x": pl.Int64, "value": pl.Int64, "bits": pl.Int32},
        )


def _supplier_rows(rows: pl.DataFrame, keys: pl.DataFrame, codes: _Codes) -> tuple[pl.DataFrame, _Dense | None]:
    """Suppliers per scope and period: sp (scope code * periods + period code), x (supplier code), value and
    the union of its lines' bits.

    In a one-anchor scope a supplier with a single line for that anchor (most of them) is a group by itself;
    the rows of such lines (``alone``) are left out here (the counts and the ranking take them from the lines
    and the rows directly), and only the other suppliers are grouped. The scopes of several anchors go to a
    ``_Dense`` instead when it can hold them.
    """
    x_count, p_count = codes.suppliers, max(codes.periods, 1)
    dense = _Dense.of(rows, keys, codes)

    def line(name: str) -> pl.Expr:
        return pl.lit(keys[name]).gather("r")

    fields = {"x": line("x"), "p": pl.col("p").cast(pl.Int64), "value": pl.col("pence"), "bits": line("bits")}
    frame = rows.lazy()
    to_group, done = [], []
    for members, scope_column in ((codes.single, "own"), (codes.several, "several")):
        if members.height == 0 or (scope_column == "several" and dense is not None):
            continue
        if codes.scope_of(members) is None:
            # an anchor in several of these scopes: its rows count in each
            joined = frame.select(a=line("a"), **fields).join(members.lazy().rename({"anchor_code": "a"}), on="a")
            to_group.append(joined.drop("a"))
            continue
        own = _own_groups(rows, keys, codes) if scope_column == "own" else None
        if own is not None:
            done.append(own)
            continue
        # in a one-anchor scope, the rows of alone lines are suppliers as they are
        chosen = frame.filter(~line("alone")) if scope_column == "own" else frame
        to_group.append(chosen.select(scope_code=line(scope_column), **fields).drop_nulls("scope_code"))
    sp = pl.col("scope_code") * p_count + pl.col("p")
    grouped = [
        part.group_by(key=sp * x_count + pl.col("x"))
        .agg(pl.col("value").sum(), pl.col("bits").bitwise_or())
        .select(sp=pl.col("key") // x_count, x=pl.col("key") % x_count, value="value", bits="bits")
        .collect(engine="streaming")
        for part in to_group
    ]
    schema = {"sp": pl.Int64, "x": pl.Int64, "value": pl.Int64, "bits": pl.Int32}
    return pl.concat([pl.DataFrame(schema=schema), *done, *grouped]), dense


def _own_groups(rows: pl.DataFrame, keys: pl.DataFrame, codes: _Codes) -> pl.DataFrame | None:
    """``_supplier_rows`` for the one-anchor scopes (each anchor in at most one): sp, x, value, bits of the
    suppliers with more than one line for the anchor, summed in place in an array rather than grouped by
    hashing (None when the array would be too big or mostly empty).

    Lines are in (anchor, supplier) order, so each such pair's lines are a run; it gets one cell per period
    from its earliest period to its latest, and its lines' rows add into those.
    """
    if rows.height == keys.height:
        return None  # one row per line: the cells would mostly be empty (see below)
    p_count = max(codes.periods, 1)
    schema = {"sp": pl.Int64, "x": pl.Int64, "value": pl.Int64, "bits": pl.Int32}
    chosen = (~keys["alone"] & keys["own"].is_not_null()).to_numpy()
    lines = np.flatnonzero(chosen)
    if lines.size == 0:
        return pl.DataFrame(schema=schema)
    x = keys["x"].to_numpy()
    pair = keys["a"].to_numpy()[lines]
    pair *= codes.suppliers
    pair += x[lines]
    head = np.ones(lines.size, dtype=np.bool_)
    np.not_equal(pair[1:], pair[:-1], out=head[1:])
    del pair
    heads = np.flatnonzero(head)
    line_first, line_last = keys["first"].to_numpy(), keys["last"].to_numpy()
    chosen_first = line_first[lines]
    first = np.minimum.reduceat(chosen_first, heads)
    last = np.maximum.reduceat(line_last[lines], heads)
    span = last - first + 1
    offset = np.cumsum(span) - span
    size = int(offset[-1] + span[-1])
    # where each line's rows end: a line has one row per period from its first to its last, in order
    ends = line_last - line_first
    ends += 1
    np.cumsum(ends, out=ends)
    n = line_last[lines] - chosen_first + 1
    # Cells between a pair's lines can be empty: where they outnumber the rows (lines with one period each,
    # far apart) grouping the rows costs less.
    if size > min(_DENSE_LIMIT, 2 * int(n.sum())) or int(ends[-1]) != rows.height:
        return None
    # a chosen line's rows, and its cells, are runs of consecutive indices
    line_row = ends[lines] - n
    del ends
    cell_start = (offset - first)[np.cumsum(head) - 1]
    cell_start += chosen_first
    value, union = _add_lines(size, n, line_row, cell_start, keys["bits"].to_numpy()[lines], rows["pence"].to_numpy())
    # a cell with rows has bits (every line has a tier bit)
    found = np.flatnonzero(union)
    # the pair whose cells hold each found one (pairs' cells are consecutive, from offset on)
    group = np.searchsorted(offset, found, side="right") - 1
    pair_line = lines[heads]
    sp = keys["own"].gather(pair_line).to_numpy()[group]
    sp *= p_count
    sp += found
    sp -= offset[group]
    sp += first[group]
    return pl.DataFrame(
        {
            "sp": sp,
            "x": x[pair_line][group],
            "value": value[found],
            "bits": union[found],
        },
        schema=schema,
    )


def _add_lines(
    size: int,
    n: npt.NDArray[np.int64],
    line_row: npt.NDArray[np.int64],
    cell_start: npt.NDArray[np.int64],
    line_bits: npt.NDArray[np.int32],
    pence: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]]:
    """Pence and the union of bits per cell (of ``size``) from lines whose ``n`` rows begin at ``line_row`` of
    ``pence`` and go to consecutive cells from ``cell_start``: a block of the lines' rows at a time, in the same
    few buffers."""
    value = np.zeros(size, dtype=np.int64)
    union = np.zeros(size, dtype=np.int32)
    blocks = _line_blocks(n)
    longest = max(b.row_high - b.row_low for b in blocks)
    row_buffer, cell_buffer, pence_buffer = (np.empty(longest, dtype=np.int64) for _ in range(3))
    bits_buffer = np.empty(longest, dtype=np.int32)
    for block in blocks:
        lines = slice(block.start, block.stop)
        row = _runs(block, line_row[lines], 1, row_buffer)
        cell = _runs(block, cell_start[lines], 1, cell_buffer)
        np.add.at(value, cell, np.take(pence, row, out=pence_buffer[: row.size], mode="clip"))
        np.bitwise_or.at(union, cell, _runs(block, line_bits[lines], 0, bits_buffer))
    return value, union


def _supplier_counts(keys: pl.DataFrame, grouped: pl.DataFrame, dense: _Dense | None, codes: _Codes) -> pl.DataFrame:
    """Distinct suppliers per scope and period, in total and per tier, category and flag.

    Suppliers of a scope and period share few distinct tier, category and flag bit sets, so count those
    (one family of bits at a time keeps the sets few) and expand the small results rather than testing every
    bit on every supplier row. A line alone for its anchor and supplier is one supplier in its one-anchor
    scope in each period it spans: those are counted from the lines, +1 at the first period and -1 after the
    last, with no per-period rows.
    """
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
    p_count = max(codes.periods, 1)
    sp_count = codes.scopes.len() * p_count
    widths = [1 << sum(name.startswith(prefixes) for name in _BIT) for prefixes, _ in families]
    if sp_count * max(widths) * 2 > _DENSE_LIMIT:
        parts = _count_by_grouping(keys, grouped, dense, codes, families)
    else:
        parts = []
        # only the columns read here: a filter copies each column it keeps into fresh memory
        alone = keys.select("own", "bits", "first", "last").filter(keys["alone"])
        scope, line_bits = alone["own"].to_numpy(), alone["bits"].to_numpy()
        first = alone["first"].to_numpy()
        count = alone["last"].to_numpy() - first
        count += 1
        slots, bit_sets = np.empty(first.size, dtype=np.int64), np.empty(first.size, dtype=np.int32)
        grouped_sp, grouped_bits = grouped["sp"].to_numpy(), grouped["bits"].to_numpy()
        for prefixes, counts in families:
            low = min(b for name, b in _BIT.items() if name.startswith(prefixes))
            width = 1 << sum(name.startswith(prefixes) for name in _BIT)
            # An alone line: +1 at its first period and -1 after its last for its scope and bits; the count in
            # a period is then the running sum.
            size = codes.scopes.len() * width * (p_count + 1)
            # in place in one buffer: these are as long as the alone lines
            part = np.right_shift(line_bits, low, out=bit_sets)
            part &= width - 1
            slot = np.multiply(scope, width, out=slots)
            slot += part
            slot *= p_count + 1
            slot += first
            changes = np.bincount(slot, minlength=size)
            slot += count
            changes -= np.bincount(slot, minlength=size)
            held = changes.reshape(-1, p_count + 1)
            np.cumsum(held, axis=1, out=held)
            held = held[:, :p_count]
            n = held.reshape(-1, width, p_count).transpose(0, 2, 1).reshape(sp_count, width)
            part = (grouped_bits >> low) & (width - 1)
            n += np.bincount(grouped_sp * width + part, minlength=sp_count * width).reshape(sp_count, width)
            if dense is not None:
                n[dense.sp] += dense.counts(low, width)
            sp, found = np.nonzero(n)
            parts.append(
                pl.LazyFrame(
                    {"sp": sp, "bits": found << low, "n": n[sp, found]},
                    schema=dict.fromkeys(("sp", "bits", "n"), pl.Int64),
                )
                .group_by("sp")
                .agg(pl.when(c).then(pl.col("n")).otherwise(0).sum().alias(c.meta.output_name()) for c in counts)
            )
    tiers, categories, flags = pl.collect_all(parts, engine="streaming")
    return (
        tiers.join(categories, on="sp", how="left")
        .join(flags, on="sp", how="left")
        .select(*codes.scope_period(pl.col("sp")), pl.exclude("sp"))
    )


def _count_by_grouping(
    keys: pl.DataFrame,
    grouped: pl.DataFrame,
    dense: _Dense | None,
    codes: _Codes,
    families: list[tuple[tuple[str, ...], list[pl.Expr]]],
) -> list[pl.LazyFrame]:
    """``_supplier_counts`` by grouping, for when its arrays would be too big."""
    p_count = max(codes.periods, 1)
    alone = keys.lazy().filter("alone").select(s="own", bits="bits", first="first", stop=pl.col("last") + 1)
    one_period = pl.col("stop") == pl.col("first") + 1
    n = pl.col("n")
    parts = []
    for prefixes, counts in families:
        positions = [b for name, b in _BIT.items() if name.startswith(prefixes)]
        low, width = min(positions), 1 << len(positions)
        part = (pl.col("bits").cast(pl.Int64) // (1 << low)) % width
        # For a line over several periods: +1 at its first and -1 after its last (p_count + 1 slots keep that
        # inside the scope); the count in a period is then the running sum, held until the next change.
        group = pl.col("s") * width + part
        spans = alone.filter(~one_period)
        changes = (
            pl.concat(
                [
                    spans.select(key=group * (p_count + 1) + pl.col("first"), n=pl.lit(1, pl.Int64)),
                    spans.select(key=group * (p_count + 1) + pl.col("stop"), n=pl.lit(-1, pl.Int64)),
                ]
            )
            .group_by("key")
            .agg(n.sum())
            .sort("key")
            .select(group=pl.col("key") // (p_count + 1), p=pl.col("key") % (p_count + 1), n=n)
        )
        held = changes.select(
            "group",
            "p",
            n=n.cum_sum().over("group"),
            until=pl.col("p").shift(-1).over("group").fill_null(p_count).clip(upper_bound=p_count),
        ).filter(n != 0)
        scope, bits = pl.col("group") // width, pl.col("group") % width
        from_spans = held.select(
            key=(scope * p_count + pl.int_ranges("p", "until", dtype=pl.Int64)) * width + bits, n="n"
        ).explode("key")
        from_one = alone.filter(one_period).select(
            key=(pl.col("s") * p_count + pl.col("first")) * width + part, n=pl.lit(1, pl.Int64)
        )
        from_lines = pl.concat([from_spans, from_one])
        from_groups = grouped.lazy().group_by(key=pl.col("sp") * width + part).agg(n=pl.len().cast(pl.Int64))
        from_dense = [] if dense is None else [_dense_count_frame(dense, low, width)]
        parts.append(
            pl.concat([from_lines, from_groups, *from_dense])
            .group_by("key")
            .agg(n.sum())
            .select(sp=pl.col("key") // width, bits=pl.col("key") % width * (1 << low), n=n)
            .group_by("sp")
            .agg(pl.when(c).then(n).otherwise(0).sum().alias(c.meta.output_name()) for c in counts)
        )
    return parts


def _dense_count_frame(dense: _Dense, low: int, width: int) -> pl.LazyFrame:
    """``_Dense.counts`` as rows (key: sp * width + set of bits, n) for ``_count_by_grouping``."""
    n = dense.counts(low, width)
    row, found = np.nonzero(n)
    return pl.LazyFrame({"key": dense.sp[row] * width + found, "n": n[row, found]})


_SAMPLE = 16  # one supplier in this many (alone ones by code, _Dense by column) helps set the ranking floor


def _top_suppliers(
    rows: pl.DataFrame,
    keys: pl.DataFrame,
    grouped: pl.DataFrame,
    dense: _Dense | None,
    codes: _Codes,
    top_n: int,
) -> pl.DataFrame:
    """The top_n suppliers by value per scope and period (ties to the lower supplier id)."""

    def single_or_mixed(prefix: str, names: tuple[str, ...]) -> pl.Expr:
        # a supplier whose lines here carry exactly one code shows it, otherwise "mixed"
        expr: pl.Expr = pl.lit("mixed")
        for name in names:
            expr = (
                pl.when((pl.col("bits") & _mask(prefix, names)) == (1 << _BIT[f"{prefix}_{name}"]))
                .then(pl.lit(name))
                .otherwise(expr)
            )
        return expr

    def nth_largest(frame: pl.LazyFrame) -> pl.Series:
        """Per sp, the n-th largest value (or the smallest Int64 where there are fewer than n)."""
        nth = frame.group_by("sp").agg(
            floor=pl.when(pl.len() >= top_n).then(pl.col("value").top_k(top_n).min()).otherwise(_INT64_MIN)
        )
        found = nth.collect(engine="streaming")
        every = pl.Series([_INT64_MIN] * max(codes.scopes.len() * codes.periods, 1), dtype=pl.Int64)
        return every.scatter(found["sp"], found["floor"])

    def line(name: str) -> pl.Expr:
        return pl.lit(keys[name]).gather("r")

    # The rows of lines alone for their anchor and supplier are suppliers of one-anchor scopes as they are.
    alone_sp = line("own") * max(codes.periods, 1) + pl.col("p")
    sample = rows.lazy().filter(line("alone") & (line("x") % _SAMPLE == 0)).select(sp=alone_sp, value="pence")
    # The n-th largest value among some of a scope-period's suppliers is at most its n-th largest overall, so
    # only suppliers at or above it can rank. The grouped suppliers and a sample of the alone ones give such a
    # floor cheaply; the exact one then comes from the few suppliers above it.
    floor = pl.lit(nth_largest(pl.concat([grouped.lazy().select("sp", "value"), sample]))).gather("sp")
    alone = (
        rows.lazy()
        .filter(line("alone"))
        .select("r", sp=alone_sp, value="pence")
        .filter(pl.col("value") >= floor)
        .select("sp", x=line("x"), value="value", bits=line("bits"))
    )
    from_dense = [] if dense is None else [dense.candidates(top_n)]
    candidates = (
        pl.concat([grouped.lazy().filter(pl.col("value") >= floor), alone, *from_dense])
        .collect(engine="streaming")
        .lazy()
    )
    ranked = (
        candidates.filter(pl.col("value") >= pl.lit(nth_largest(candidates)).gather("sp"))
        .sort("sp", "value", "x", descending=[False, True, False])
        .with_columns(rank=pl.int_range(pl.len(), dtype=pl.Int64).over("sp") + 1)
        .filter(pl.col("rank") <= top_n)
    )
    return ranked.select(
        *codes.scope_period(pl.col("sp")),
        supplier_id=codes.supplier_id(pl.col("x")),
        value_pence="value",
        bits="bits",
        rank="rank",
        tier=single_or_mixed("tier", TIERS),
        category=single_or_mixed("category", CATEGORIES),
    ).collect()


def _mask(prefix: str, names: tuple[str, ...]) -> int:
    return sum(1 << _BIT[f"{prefix}_{c}"] for c in names)


def _new_local_counts(facts: pl.DataFrame, scope_anchors: pl.DataFrame, periods: PeriodKind) -> pl.DataFrame:
    # A line has a row in every period from its first one on, so a supplier's first local period in a scope
    # is the earliest first period of its local lines there; no need to look at the per-period rows.
    per_anchor = (
        facts.lazy()
        .filter(pl.col("tier") == TIERS.index("local"))
        .group_by("anchor_id", "supplier_id")
        .agg(_period_key(pl.col("qs"), periods).min().cast(pl.Int64).alias("period_key"))
    )
    return (
        _to_scopes(per_anchor, scope_anchors, ["supplier_id"], [pl.col("period_key").min()])
        .group_by(_KEY)
        .agg(pl.len().cast(pl.Int64).alias("new_local_suppliers"))
        .collect()
    )


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


def _excluded_frame(excluded_lines: pl.DataFrame, scope_anchors: pl.DataFrame, periods: PeriodKind) -> pl.DataFrame:
    """One row per excluded line, scope and period it would have fallen in (period_key and period null for
    no_date), in output order: scope, period label, line_id, null periods last."""
    cols = ["line_id", "anchor_id", "reason", "currency", "value_pence"]
    ordered = excluded_lines.sort("line_id").with_row_index("line_rank")
    dated = pl.col("first").is_not_null()
    rows = ordered.filter(dated).select("line_rank", *cols, period_key=pl.int_ranges("first", pl.col("last") + 1))
    undated = ordered.filter(~dated).select("line_rank", *cols, period_key=pl.lit(None, pl.Int64))
    scopes = scope_anchors.with_columns(scope_rank=pl.col("scope").rank("dense").cast(pl.Int64))
    frame = pl.concat([rows.explode("period_key"), undated]).join(scopes, on="anchor_id", how="inner")
    # Sorting on two string columns and line_id is slow; their ranks pack into one integer instead.
    low, high = frame["period_key"].min(), frame["period_key"].max()
    if isinstance(low, int) and isinstance(high, int):
        table = pl.select(label=_labels_of(pl.int_range(low, high + 1, dtype=pl.Int64), periods)).with_columns(
            rank=pl.col("label").rank("ordinal").cast(pl.Int64)
        )
    else:
        low, table = 0, pl.DataFrame(schema={"label": pl.String, "rank": pl.Int64})
    offset = pl.col("period_key") - low
    period_rank = pl.when(offset.is_null()).then(table.height + 1).otherwise(pl.lit(table["rank"]).gather(offset))
    key = (pl.col("scope_rank") * (table.height + 2) + period_rank) * (ordered.height + 1) + pl.col("line_rank")
    return (
        frame.with_columns(period=pl.lit(table["label"]).gather(offset))
        .sort(key)
        .select("scope", "period_key", "period", *cols)
    )


def _excluded_output(excluded: pl.DataFrame, basis: str) -> pl.DataFrame:
    return excluded.select(
        "scope", "period", pl.lit(basis).alias("basis"), "line_id", "anchor_id", "reason", "currency", "value_pence"
    )


_LINE_OUTPUT = [
    "line_id", "contract_id", "anchor_id", "supplier_id", "supplier_name", "period", "quarter", "basis",
    "allocated_pence", "days_in_period", "days_total", "value_pence", "spread_fallback", "award_fallback", "tier",
    "category", "sme", "vcse", "social_enterprise", "cpv_division", "award_date", "start_date", "end_date",
]  # fmt: skip


def _lines_frame(lines: pl.DataFrame, basis: Basis, periods: PeriodKind) -> pl.DataFrame:
    """``MetricsResult.lines``: one row per included line and quarter, with the line's own columns."""
    start, end = _span(basis)
    included = (
        _marked(lines.lazy())
        .filter(pl.col("reason").is_null())
        .with_columns(
            cpv_division=_cpv_division(),
            first_day=start,
            last_day=end,
            qs=quarter_index_expr(start),
            qe=quarter_index_expr(end),
            spread_fallback=~pl.col("has_period") if basis == "spread" else pl.lit(False),
            award_fallback=pl.col("award_date").is_null() if basis != "spread" else pl.lit(False),
        )
        .collect()
    )
    if basis != "spread":
        per_row = included
        parts = included.select(
            quarter_idx="qs",
            allocated_pence="value_pence",
            days_in_period=pl.lit(None, pl.Int64),
            days_total=pl.lit(None, pl.Int64),
        )
    else:
        raw = _spread_parts(included, detail=True).collect()
        per_row = included[raw["r"]]
        fallback = per_row["spread_fallback"]
        parts = raw.select(
            "quarter_idx",
            "allocated_pence",
            days_in_period=pl.when(fallback).then(None).otherwise(pl.col("days_in_period")),
            days_total=pl.when(fallback).then(None).otherwise(pl.col("days_total")),
        )
    # Labels come from a small table of the quarters present rather than being formatted per row.
    low, high = included["qs"].min(), included["qe"].max()
    if not isinstance(low, int) or not isinstance(high, int):
        quarter = pl.Series("quarter", [], pl.String)
        period = pl.Series("period", [], pl.String)
    else:
        span = pl.int_range(low, high + 1, dtype=pl.Int64)
        table = pl.select(q=quarter_label_expr(span), p=_labels_of(_period_key(span, periods), periods))
        offset = parts["quarter_idx"] - low
        quarter = table["q"].gather(offset).alias("quarter")
        period = table["p"].gather(offset).alias("period")
    extra = parts.select("allocated_pence", "days_in_period", "days_total", basis=pl.lit(basis))
    own = per_row.select(c for c in _LINE_OUTPUT if c in per_row.columns and c not in extra.columns)
    return pl.concat([own, extra, pl.DataFrame([quarter, period])], how="horizontal").select(_LINE_OUTPUT)


def _line_spans(lines: pl.DataFrame, basis: Basis, periods: PeriodKind) -> pl.DataFrame:
    """Each included line's first and last period key, as ``_lines_frame`` places its parts (made on the first
    ``rests_on`` of a result: quarters looked up, since taking every line's dates apart cost about as much again)."""
    start, end = _span(basis)
    return (
        _marked(lines.lazy())
        .filter(pl.col("reason").is_null())
        .select(
            "anchor_id",
            "contract_id",
            "supplier_id",
            "supplier_name",
            **_first_last(start, end, periods, _quarter_lookup(lines)),
        )
        .collect()
    )


def _lines_dated(lines: pl.DataFrame, basis: Basis, low: date, high: date) -> pl.DataFrame:
    """anchor_id, contract_id, supplier_id and supplier_name of each included line whose span (``_span``) has a
    day from ``low`` to before ``high``, in input order (as ``_line_spans`` keeps them)."""
    start, end = _span(basis)
    return (
        _marked(lines.lazy())
        .filter(pl.col("reason").is_null() & (start < high) & (end >= low))
        .select("anchor_id", "contract_id", "supplier_id", "supplier_name")
        .collect()
    )


def _key_days(key: int, periods: str) -> tuple[date, date] | None:
    """The first day of the period with this key and of the next one; None beyond the days a date can hold."""
    quarters = 1 if periods == "quarter" else 4
    try:
        return _quarter_day(key * quarters), _quarter_day((key + 1) * quarters)
    except ValueError:
        return None


def _quarter_day(index: int) -> date:
    """The first day of the quarter with this index (financial year * 4 + quarter - 1)."""
    year, quarter = divmod(index, 4)
    month = 4 + 3 * quarter
    return date(year + 1, month - 12, 1) if month > 12 else date(year, month, 1)


def _first_last(
    start: pl.Expr, end: pl.Expr, periods: PeriodKind, quarter_of: Callable[[pl.Expr], pl.Expr] = quarter_index_expr
) -> dict[str, pl.Expr]:
    """The keys of the periods of a line's first and last day (``_span``); ``quarter_of``: ``_quarter_lookup``'s
    for the lines, where made."""
    return {
        "first": _period_key(quarter_of(start), periods),
        "last": _period_key(quarter_of(end), periods),
    }


def _period_labels(periods: PeriodKind) -> pl.Expr:
    return _labels_of(pl.col("period_key"), periods)


def _period_grid(keys: pl.Series, scope_anchors: pl.DataFrame) -> pl.DataFrame:
    """Every scope x every period from the first to the last one any line (included or excluded) falls in."""
    scopes = scope_anchors.select("scope").unique(maintain_order=True)
    low, high = keys.min(), keys.max()
    if not isinstance(low, int) or not isinstance(high, int):
        return scopes.with_columns(period_key=pl.lit(None, pl.Int64)).clear()
    return scopes.join(pl.DataFrame({"period_key": pl.int_range(low, high + 1, eager=True)}), how="cross")


def _exclusion_counts(excluded_lines: pl.DataFrame, scope_anchors: pl.DataFrame) -> pl.DataFrame:
    """Excluded lines per scope, period and reason (``no_date`` lines have no period), counted per anchor and
    summed to scopes: the rows of ``MetricsResult.excluded`` (a scope's names and period labels on every line and
    period) are not needed for this."""
    reasons = [r for r in EXCLUSION_REASONS if r != "no_date"]
    per_anchor = (
        excluded_lines.lazy()
        .filter(pl.col("first").is_not_null())
        .select("anchor_id", "reason", period_key=pl.int_ranges("first", pl.col("last") + 1))
        .explode("period_key")
        .group_by("anchor_id", "period_key")
        .agg((pl.col("reason") == r).sum().cast(pl.Int64).alias(f"excluded_{r}_lines") for r in reasons)
    )
    counts = [pl.col(f"excluded_{r}_lines").sum() for r in reasons]
    return _to_scopes(per_anchor, scope_anchors, ["period_key"], counts).collect()


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
