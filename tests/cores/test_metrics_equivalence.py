"""socialvalue.metrics gives frame-for-frame the same results as the frozen pre-optimisation copy."""

from datetime import date
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from socialvalue import metrics
from socialvalue.metrics import CATEGORIES, INPUT_SCHEMA, TIERS, MetricsResult, compute_metrics
from tests.support import metrics_reference

FIRST_DAY = date(2022, 4, 1)


def random_lines(n: int, seed: int, suppliers: int) -> pl.DataFrame:
    """Pseudo-random lines with every exclusion reason, fallbacks, odd CPV codes and long contracts."""

    def rnd(salt: int, modulo: int) -> pl.Expr:
        return (pl.col("i").hash(seed * 100 + salt) % modulo).cast(pl.Int64)

    start = pl.lit(FIRST_DAY) + pl.duration(days=rnd(3, 1400))
    frame = pl.DataFrame({"i": pl.int_range(n, eager=True)}).with_columns(
        line_id=pl.col("i") * 3 + 7,
        contract_id=pl.col("i") // 3,
        anchor_id=rnd(1, 6) + 10,
        supplier_id=rnd(2, suppliers) * 5,
        value_pence=pl.when(rnd(4, 40) == 0).then(None).otherwise(rnd(5, 10**9) * (rnd(6, 3) + 1)),
        currency=pl.when(rnd(7, 30) == 0).then(pl.lit("EUR")).when(rnd(7, 31) == 0).then(None).otherwise(pl.lit("GBP")),
        award_date=pl.when(rnd(8, 15) == 0).then(None).otherwise(start - pl.duration(days=rnd(9, 40))),
        start_date=pl.when(rnd(10, 12) == 0).then(None).otherwise(start),
        end_date=pl.when(rnd(11, 12) == 0)
        .then(None)
        .when(rnd(11, 25) == 0)
        .then(start - pl.duration(days=3))
        .otherwise(start + pl.duration(days=rnd(12, 1500))),
        cpv_code=pl.lit(pl.Series(["45000000", "85100000-1", "xx", "33100000", None])).gather(rnd(13, 5)),
        tier=pl.lit(pl.Series(TIERS)).gather(rnd(14, len(TIERS))),
        category=pl.lit(pl.Series(CATEGORIES)).gather(rnd(15, len(CATEGORIES))),
        sme=pl.lit(pl.Series([True, False, None])).gather(rnd(16, 3)),
        vcse=pl.lit(pl.Series([True, False, None])).gather(rnd(17, 3)),
        social_enterprise=pl.lit(pl.Series([True, False, None])).gather(rnd(18, 3)),
        status=pl.when(rnd(19, 25) == 0).then(pl.lit("withdrawn")).otherwise(pl.lit("active")),
    )
    frame = frame.with_columns(supplier_name=pl.format("Supplier {}", pl.col("supplier_id") // (rnd(20, 2) + 1)))
    return frame.select(pl.col(name).cast(dtype) for name, dtype in INPUT_SCHEMA.items())


SCOPES = [
    None,
    {"north": [10, 11, 12], "south": [13, 14], "solo": [15], "everyone": [10, 11, 12, 13, 14, 15], "ghost": [99]},
    {"pair": [11, 13], "same": [11, 11]},
    # one anchor making up two one-anchor scopes, and overlapping groups
    {"x": [11], "y": [11], "both": [11, 12], "also": [12, 13]},
]
FRAMES = ["summary", "by_tier", "by_category", "top_suppliers", "by_cpv_division", "lines", "excluded", "scope_anchors"]


def assert_same_as_reference(lines: pl.DataFrame, **kwargs: Any) -> MetricsResult:
    """Every frame of compute_metrics equals the frozen reference's; returns the new result."""
    new = compute_metrics(lines, **kwargs)
    old = metrics_reference.compute_metrics(lines, **kwargs)
    for name in FRAMES:
        assert_frame_equal(getattr(new, name), getattr(old, name), check_exact=True)
    return new


@pytest.mark.parametrize("basis", ["awarded", "spread"])
@pytest.mark.parametrize("periods", ["quarter", "year"])
@pytest.mark.parametrize("scope_index", range(len(SCOPES)))
@pytest.mark.parametrize(("seed", "suppliers"), [(1, 40), (2, 2000)])
def test_same_results_as_reference(basis: str, periods: str, scope_index: int, seed: int, suppliers: int) -> None:
    lines = random_lines(3000, seed, suppliers)
    scopes = SCOPES[scope_index]
    kwargs = {"basis": basis, "periods": periods, "scopes": scopes, "top_n": 3 if seed == 1 else 20}
    new = assert_same_as_reference(lines, **kwargs)
    old = metrics_reference.compute_metrics(lines, **kwargs)  # type: ignore[arg-type]
    assert (new.basis, new.periods) == (old.basis, old.periods)
    assert new.lines.height > 0
    assert new.excluded.height > 0
    assert new.top_suppliers.height > 0
    for scope in new.scope_anchors["scope"].unique():
        assert_frame_equal(new.lines_for_scope(scope), old.lines_for_scope(scope), check_exact=True)


@pytest.mark.parametrize("basis", ["awarded", "spread"])
def test_wide_packed_keys_fall_back_to_plain_ones(basis: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Real inputs need millions of lines or centuries of quarters before the packed sort keys and the packed
    # largest-remainder thresholds stop fitting one Int64, so narrow the limit to run the fallback branches
    # on ordinary lines.
    monkeypatch.setattr(metrics, "_PACKED_KEY_BITS", 8)
    lines = random_lines(3000, 4, 300)
    assert_same_as_reference(lines, basis=basis, periods="quarter")


@pytest.mark.parametrize("basis", ["awarded", "spread"])
@pytest.mark.parametrize("scope_index", [0, 1])
def test_too_many_cells_for_arrays_fall_back_to_grouping(
    basis: str, scope_index: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Money per key, the suppliers of scopes of several anchors and the supplier counts are summed in arrays
    # indexed by key when those stay small (always, on ordinary inputs); with no room they are grouped.
    monkeypatch.setattr(metrics, "_DENSE_LIMIT", 0)
    lines = random_lines(3000, 7, 300)
    for periods in ("quarter", "year"):
        assert_same_as_reference(lines, basis=basis, periods=periods, scopes=SCOPES[scope_index], top_n=5)


@pytest.mark.parametrize("basis", ["awarded", "spread"])
def test_supplier_codes_too_sparse_for_a_table(basis: str) -> None:
    # Ids 10**9 apart still code as offsets from the smallest, but a table over their range would not fit in
    # memory, so the suppliers of a scope of several anchors find their columns by search.
    lines = random_lines(3000, 8, 500).with_columns(supplier_id=pl.col("supplier_id") * 10**9)
    assert_same_as_reference(lines, basis=basis, periods="quarter", top_n=5)


@pytest.mark.parametrize("basis", ["awarded", "spread"])
@pytest.mark.parametrize("scope_index", range(len(SCOPES)))
def test_small_row_blocks(basis: str, scope_index: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # The numpy steps over rows go a block of lines at a time (and the dense supplier counts a few rows of
    # their arrays at a time), each block within _ROW_BLOCK rows; ordinary inputs fill only a few blocks, so
    # make them small to put many line and row boundaries between blocks.
    monkeypatch.setattr(metrics, "_ROW_BLOCK", 37)
    lines = random_lines(3000, 9, 300).with_columns(
        value_pence=pl.when(pl.col("line_id") % 5 == 0).then(-pl.col("value_pence")).otherwise("value_pence"),
    )
    for periods in ("quarter", "year"):
        assert_same_as_reference(lines, basis=basis, periods=periods, scopes=SCOPES[scope_index], top_n=5)


@pytest.mark.parametrize("basis", ["awarded", "spread"])
def test_dates_too_spread_for_the_day_table(basis: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "_DAY_TABLE_LIMIT", 10)
    lines = random_lines(3000, 5, 300)
    assert_same_as_reference(lines, basis=basis, periods="year")


@pytest.mark.parametrize("basis", ["awarded", "spread"])
def test_sparse_supplier_ids_and_negative_values(basis: str) -> None:
    # Supplier ids 2**50 apart are too wide to code as offsets (they get dense codes), and credit notes
    # (negative values) take the other side of every floor division.
    lines = random_lines(3000, 6, 500).with_columns(
        supplier_id=pl.col("supplier_id") * 2**50,
        value_pence=pl.when(pl.col("line_id") % 7 == 0).then(-pl.col("value_pence")).otherwise("value_pence"),
    )
    for periods in ("quarter", "year"):
        assert_same_as_reference(lines, basis=basis, periods=periods, top_n=5)
