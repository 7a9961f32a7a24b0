"""Invariants of socialvalue.metrics on generated lines."""

from datetime import date, timedelta
from typing import Any

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from socialvalue.metrics import CATEGORIES, INPUT_SCHEMA, TIERS, compute_metrics

FIRST = date(2022, 1, 1)
LAST = date(2027, 12, 31)

maybe_bool = st.sampled_from([True, False, None])


@st.composite
def line_rows(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    n = draw(st.integers(min_value=1, max_value=25))
    rows = []
    for line_id in range(1, n + 1):
        start = draw(st.none() | st.dates(FIRST, LAST))
        end = None if start is None else draw(st.none() | st.dates(start - timedelta(days=5), LAST + timedelta(700)))
        rows.append(
            (
                line_id,
                draw(st.integers(1, 5)),
                draw(st.integers(1, 3)),
                draw(st.integers(1, 6)),
                "S",
                draw(st.none() | st.integers(0, 10**11)),
                draw(st.sampled_from(["GBP", "GBP", "GBP", "EUR"])),
                draw(st.none() | st.dates(FIRST, LAST)),
                start,
                end,
                draw(st.none() | st.sampled_from(["45000000", "85100000", "xx"])),
                draw(st.sampled_from(TIERS)),
                draw(st.sampled_from(CATEGORIES)),
                draw(maybe_bool),
                draw(maybe_bool),
                draw(maybe_bool),
                draw(st.sampled_from(["active", "active", "active", "withdrawn"])),
            )
        )
    return rows


def to_frame(rows: list[tuple[Any, ...]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=INPUT_SCHEMA, orient="row")


fast = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TIER_PENCE = [("tier_unknown" if t == "unknown" else t) + "_pence" for t in TIERS]
TIER_SHARE = [("tier_unknown" if t == "unknown" else t) + "_share" for t in TIERS]


@fast
@given(line_rows(), st.sampled_from(["awarded", "spread"]), st.sampled_from(["quarter", "year"]))
def test_tiers_partition_the_total(rows: list[tuple[Any, ...]], basis: str, periods: str) -> None:
    result = compute_metrics(to_frame(rows), basis=basis, periods=periods)  # type: ignore[arg-type]
    s = result.summary
    assert s.select(pl.sum_horizontal(TIER_PENCE)).to_series().to_list() == s["total_pence"].to_list()
    for share_sum, total in zip(s.select(pl.sum_horizontal(TIER_SHARE)).to_series(), s["total_pence"], strict=True):
        if total:
            assert abs(share_sum - 1.0) < 1e-9
    category_pence = s.select(pl.sum_horizontal([f"category_{c}_pence" for c in CATEGORIES])).to_series()
    assert category_pence.to_list() == s["total_pence"].to_list()


@fast
@given(line_rows(), st.sampled_from(["quarter", "year"]))
def test_spread_parts_sum_to_each_line_value(rows: list[tuple[Any, ...]], periods: str) -> None:
    frame = to_frame(rows)
    result = compute_metrics(frame, basis="spread", periods=periods)  # type: ignore[arg-type]
    sums = result.lines.group_by("line_id").agg(pl.col("allocated_pence").sum(), pl.col("value_pence").first())
    assert (sums["allocated_pence"] == sums["value_pence"]).all()
    # every part is within 1p of its exact pro-rata share: |part x days_total - value x days| < days_total
    split = result.lines.filter(~pl.col("spread_fallback"))
    error = (split["allocated_pence"] * split["days_total"] - split["value_pence"] * split["days_in_period"]).abs()
    assert (error < split["days_total"]).all()
    # every included line is in `lines`, every other one in `excluded`, none in both
    included = set(result.lines["line_id"])
    excluded = set(result.excluded["line_id"])
    assert included.isdisjoint(excluded)
    assert included | excluded == set(frame["line_id"])
    all_total = result.summary.filter(pl.col("scope") == "all")["total_pence"].sum()
    assert all_total == frame.filter(pl.col("line_id").is_in(list(included)))["value_pence"].sum()


@fast
@given(line_rows(), st.sampled_from(["awarded", "spread"]))
def test_group_money_is_sum_of_members(rows: list[tuple[Any, ...]], basis: str) -> None:
    scopes = {"a": [1], "b": [2], "c": [3], "ab": [1, 2], "abc": [3, 1, 2, 2]}
    s = compute_metrics(to_frame(rows), basis=basis, scopes=scopes).summary  # type: ignore[arg-type]
    additive = [
        c
        for c, t in s.schema.items()
        if t == pl.Int64 and (c.endswith("_pence") or c.endswith("_lines") or c == "lines") and "change" not in c
    ]

    def money(scope: str) -> pl.DataFrame:
        return s.filter(pl.col("scope") == scope).sort("period").select("period", *additive)

    a, b, c = money("a"), money("b"), money("c")
    added = a.select("period", *[pl.col(x) + b[x] for x in additive])
    assert money("ab").equals(added)
    assert money("abc").equals(added.select("period", *[pl.col(x) + c[x] for x in additive]))
    # distinct suppliers are never more than the members' sum, and never fewer than the largest member
    ab = s.filter(pl.col("scope") == "ab").sort("period")["suppliers"]
    sa = s.filter(pl.col("scope") == "a").sort("period")["suppliers"]
    sb = s.filter(pl.col("scope") == "b").sort("period")["suppliers"]
    assert (ab <= sa + sb).all()
    assert (ab >= pl.Series([max(x, y) for x, y in zip(sa, sb, strict=True)])).all()


@fast
@given(line_rows(), st.sampled_from(["awarded", "spread"]), st.sampled_from(["quarter", "year"]))
def test_what_a_period_rests_on_is_its_lines(rows: list[tuple[Any, ...]], basis: str, periods: str) -> None:
    scopes = {"a": [1], "ab": [1, 2], "all": [1, 2, 3, 4, 5]}
    result = compute_metrics(to_frame(rows), basis=basis, scopes=scopes, periods=periods)  # type: ignore[arg-type]
    # Its lines' periods never worked out: ``only`` picks a period's lines by their first and last day instead.
    fresh = compute_metrics(to_frame(rows), basis=basis, scopes=scopes, periods=periods)  # type: ignore[arg-type]
    columns = ["contract_id", "supplier_id", "supplier_name"]
    for scope in scopes:
        behind = result.lines_for_scope(scope)
        for period in [*result.summary.filter(pl.col("scope") == scope)["period"], "2040Q1" if periods == "quarter"
                       else "2040/41"]:  # fmt: skip
            expected = behind.filter(pl.col("period") == period).select("line_id", *columns).unique().sort("line_id")
            rests = result.rests_on(scope, period)
            assert rests.height == expected.height
            assert rests.sort(columns).equals(expected.select(columns).sort(columns))
            assert fresh.rests_on(scope, period, only=True).equals(rests)
