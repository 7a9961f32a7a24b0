"""The numpy steps of socialvalue.metrics against plain polars computations of the same quantities."""

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from socialvalue import metrics
from tests.cores.test_metrics_equivalence import random_lines


def with_credit_notes(lines: pl.DataFrame) -> pl.DataFrame:
    return lines.with_columns(
        value_pence=pl.when(pl.col("line_id") % 5 == 0).then(-pl.col("value_pence")).otherwise("value_pence")
    )


def pipeline(
    lines: pl.DataFrame, basis: metrics.Basis, periods: metrics.PeriodKind
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, metrics._Codes]:
    """facts (in pair order), rows and line keys as compute_metrics makes them, one scope per anchor."""
    scope_anchors = metrics._scope_frame(lines, None)
    facts, _ = metrics._split(lines, basis, periods)
    codes = metrics._Codes.of(facts, scope_anchors, periods)
    facts = metrics._in_pair_order(facts, codes, basis)
    rows = metrics._period_rows(facts, basis, periods, codes)
    return facts, rows, metrics._line_keys(facts, codes, periods), codes


@pytest.mark.parametrize(("seed", "suppliers"), [(1, 40), (2, 2000), (3, 300)])
@pytest.mark.parametrize("row_block", [64, 1 << 16])  # many blocks, shared out between two threads; one block
def test_spread_rows_are_the_largest_remainder_split(
    seed: int, suppliers: int, row_block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metrics, "_ROW_BLOCK", row_block)
    facts, *_ = pipeline(with_credit_notes(random_lines(3000, seed, suppliers)), "spread", "quarter")
    rows = (
        metrics._spread_rows(facts, 0)
        .select("r", quarter_idx=pl.col("q").cast(pl.Int64), pence="allocated_pence")
        .collect()
    )
    # the row-by-row split (days in the quarter over days in the line), as MetricsResult.lines makes it
    parts = metrics._spread_parts(facts, detail=True).collect()
    assert_frame_equal(rows, parts.select("r", "quarter_idx", pence="allocated_pence"), check_exact=True)
    value = facts.with_row_index("r").select("r", "value_pence", "qs", "qe")
    per_line = (
        parts.join(value, on="r")
        .group_by("r")
        .agg(
            pl.col("value_pence", "qs", "qe").first(),
            pence=pl.col("allocated_pence").sum(),
            quarters=pl.len(),
            # each part is its exact pro-rata share rounded down, or one penny more
            floor_ok=(
                pl.col("allocated_pence") - pl.col("value_pence") * pl.col("days_in_period") // pl.col("days_total")
            )
            .is_in([0, 1])
            .all(),
        )
    )
    assert per_line.height == facts.height
    assert (per_line["pence"] == per_line["value_pence"]).all()
    assert (per_line["quarters"] == per_line["qe"] - per_line["qs"] + 1).all()
    assert per_line["floor_ok"].all()
    assert (per_line["quarters"] > 3).sum() > 100  # long contracts, with whole quarters of each length


def test_spread_rows_of_no_lines() -> None:
    facts, *_ = pipeline(random_lines(50, 1, 40).clear(), "spread", "quarter")
    assert metrics._spread_rows(facts, 0).collect().height == 0


@pytest.mark.parametrize("periods", ["quarter", "year"])
@pytest.mark.parametrize(("seed", "suppliers"), [(1, 40), (2, 2000)])
def test_own_scope_suppliers_are_the_grouped_rows(periods: metrics.PeriodKind, seed: int, suppliers: int) -> None:
    _, rows, keys, codes = pipeline(with_credit_notes(random_lines(3000, seed, suppliers)), "spread", periods)
    own = metrics._own_groups(rows, keys, codes)
    assert own is not None
    p_count = max(codes.periods, 1)
    expected = (
        rows.join(keys.with_row_index("r").with_columns(pl.col("r").cast(pl.UInt32)), on="r")
        .filter(~pl.col("alone"), pl.col("own").is_not_null())
        .group_by(sp=pl.col("own") * p_count + pl.col("p"), x="x")
        .agg(value=pl.col("pence").sum(), bits=pl.col("bits").bitwise_or())
    )
    assert expected.height > 50
    assert_frame_equal(own.sort("sp", "x"), expected.sort("sp", "x"), check_exact=True, check_column_order=False)


def test_own_scope_suppliers_of_one_row_lines_are_left_to_grouping() -> None:
    # on the awarded basis a pair's lines fall in scattered periods: an array over its span would be mostly empty
    _, rows, keys, codes = pipeline(random_lines(3000, 1, 40), "awarded", "quarter")
    assert metrics._own_groups(rows, keys, codes) is None


@pytest.mark.parametrize("basis", ["awarded", "spread"])
@pytest.mark.parametrize("periods", ["quarter", "year"])
def test_money_per_key_is_the_grouped_rows(basis: metrics.Basis, periods: metrics.PeriodKind) -> None:
    _, rows, keys, codes = pipeline(with_credit_notes(random_lines(3000, 2, 2000)), basis, periods)
    widths = {"tc": codes.anchors * metrics._TC, "fl": codes.anchors * metrics._FL, "cpv": codes.anchors * metrics._CPV}
    joined = rows.join(keys.with_row_index("r").with_columns(pl.col("r").cast(pl.UInt32)), on="r")
    for (name, width), found in zip(widths.items(), metrics._row_sums(rows, keys, codes), strict=True):
        expected = joined.group_by((pl.col("p").cast(pl.Int64) * width + pl.col(name)).alias(name)).agg(
            pence=pl.col("pence").sum(), lines=pl.len().cast(pl.Int64)
        )
        assert_frame_equal(found.sort(name), expected.sort(name), check_exact=True)


@pytest.mark.parametrize("basis", ["awarded", "spread"])
@pytest.mark.parametrize("periods", ["quarter", "year"])
def test_money_per_anchor_is_the_grouped_rows(basis: metrics.Basis, periods: metrics.PeriodKind) -> None:
    facts, rows, keys, codes = pipeline(with_credit_notes(random_lines(3000, 3, 300)), basis, periods)
    assert metrics._fits_dense(rows, codes)
    per_anchor, per_division = metrics._dense_anchor_sums(metrics._dense_sums(rows, keys, codes), codes, basis)
    joined = rows.join(facts.with_row_index("r").with_columns(pl.col("r").cast(pl.UInt32)), on="r").with_columns(
        anchor_id=pl.lit(codes.anchor_ids).gather(pl.col("a")), period_key=pl.col("p").cast(pl.Int64) + codes.period_low
    )

    def pence_where(condition: pl.Expr) -> pl.Expr:
        return pl.col("pence").filter(condition).sum()

    fallback = "spread_fallback" if basis == "spread" else "award_fallback"
    other = "award_fallback" if basis == "spread" else "spread_fallback"
    # flags: 0 False, 1 True, 2 unknown, sme * 9 + vcse * 3 + social_enterprise
    flag_state = {
        "sme": pl.col("flags") // 9,
        "vcse": pl.col("flags") // 3 % 3,
        "social_enterprise": pl.col("flags") % 3,
    }
    expected = joined.group_by("anchor_id", "period_key").agg(
        total_pence=pl.col("pence").sum(),
        lines=pl.len().cast(pl.Int64),
        **{metrics._tier_col(t) + "_pence": pence_where(pl.col("tier") == i) for i, t in enumerate(metrics.TIERS)},
        **{f"category_{c}_pence": pence_where(pl.col("category") == i) for i, c in enumerate(metrics.CATEGORIES)},
        **{f"{f}_pence": pence_where(state == 1) for f, state in flag_state.items()},
        **{f"{f}_unknown_pence": pence_where(state == 2) for f, state in flag_state.items()},
        **{f"{fallback}_lines": pl.col("fallback").sum().cast(pl.Int64), f"{fallback}_pence": pence_where("fallback")},
    )
    assert per_anchor[f"{other}_lines"].eq(0).all()
    assert per_anchor[f"{other}_pence"].eq(0).all()
    assert per_anchor["spread_fallback_lines"].sum() + per_anchor["award_fallback_lines"].sum() > 0
    found = per_anchor.drop(f"{other}_lines", f"{other}_pence")
    key = ["anchor_id", "period_key"]
    assert_frame_equal(found.sort(key), expected.sort(key), check_exact=True, check_column_order=False)

    division = pl.when(pl.col("division") != metrics._NO_DIVISION).then("division")
    expected_divisions = joined.group_by("anchor_id", "period_key", division.alias("division")).agg(
        lines=pl.len().cast(pl.Int64),
        value_pence=pl.col("pence").sum(),
        local_pence=pence_where(pl.col("tier") == metrics.TIERS.index("local")),
    )
    assert per_division["division"].null_count() > 0
    key = ["anchor_id", "period_key", "division"]
    assert_frame_equal(per_division.sort(key), expected_divisions.sort(key), check_exact=True)


def test_money_per_group_of_anchors_is_the_sum_of_its_members() -> None:
    _, rows, keys, codes = pipeline(with_credit_notes(random_lines(3000, 4, 300)), "spread", "quarter")
    sums = metrics._dense_sums(rows, keys, codes)
    per_anchor, per_division = metrics._dense_anchor_sums(sums, codes, "spread")
    # anchor codes 0..5; code 2 in two groups of several, code 5 in none
    members = [[0, 1, 2], [2, 3], [4], [1]]
    groups = metrics._Groups("scope", pl.Series(["a", "b", "c", "d"]), members)
    per_group, per_group_division = metrics._dense_anchor_sums(sums, codes, "spread", groups)
    membership = pl.DataFrame(
        [(name, codes.anchor_ids[a]) for name, m in zip(["a", "b", "c", "d"], members, strict=True) for a in m],
        schema={"scope": pl.String, "anchor_id": pl.Int64},
        orient="row",
    )
    expected = (
        per_anchor.join(membership, on="anchor_id")
        .group_by("scope", "period_key")
        .agg(pl.exclude("anchor_id", "scope", "period_key").sum())
    )
    key = ["scope", "period_key"]
    assert_frame_equal(per_group.sort(key), expected.sort(key), check_exact=True, check_column_order=False)
    expected_divisions = (
        per_division.join(membership, on="anchor_id")
        .group_by("scope", "period_key", "division")
        .agg(pl.col("lines", "value_pence", "local_pence").sum())
    )
    key = ["scope", "period_key", "division"]
    assert_frame_equal(
        per_group_division.sort(key), expected_divisions.sort(key), check_exact=True, check_column_order=False
    )


@pytest.mark.parametrize("row_block", [1, 5, 64, 1 << 16])
def test_line_blocks_cover_the_rows_in_order(row_block: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "_ROW_BLOCK", row_block)
    count = np.array([3, 1, 1, 7, 2, 1, 1, 1, 12, 4, 1], dtype=np.int64)
    blocks = metrics._line_blocks(count)
    assert [b.start for b in blocks] == [0] + [b.stop for b in blocks[:-1]]
    assert blocks[-1].stop == count.size
    assert [b.row_low for b in blocks] == [0] + [b.row_high for b in blocks[:-1]]
    assert blocks[-1].row_high == count.sum()
    for block in blocks:
        rows = block.row_high - block.row_low
        # a block holds as many whole lines as fit, and at least one
        assert rows <= row_block or block.stop - block.start == 1
        assert block.stop == count.size or rows + count[block.stop] > row_block
        assert (block.n == count[block.start : block.stop]).all()
        assert block.heads.tolist() == (np.cumsum(block.n) - block.n).tolist()
        # runs: each line's first value, one step further per row
        first = np.arange(block.start, block.stop, dtype=np.int64) * 100
        runs = metrics._runs(block, first, 1, np.empty(rows, dtype=np.int64))
        expected = np.concatenate([f + np.arange(n) for f, n in zip(first, block.n, strict=True)])
        assert runs.tolist() == expected.tolist()


@pytest.mark.parametrize("periods", ["quarter", "year"])
@pytest.mark.parametrize("row_block", [50, 1 << 16])
def test_dense_suppliers_are_the_grouped_rows_of_their_scopes(
    periods: metrics.PeriodKind, row_block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # one scope of several anchors with lines of other anchors beside it (they go to a spare column and drop out)
    monkeypatch.setattr(metrics, "_ROW_BLOCK", row_block)
    lines = with_credit_notes(random_lines(3000, 2, 300))
    scope_anchors = metrics._scope_frame(lines, {"pair": [11, 13], "solo": [12]})
    facts, _ = metrics._split(lines, "spread", periods)
    codes = metrics._Codes.of(facts, scope_anchors, periods)
    facts = metrics._in_pair_order(facts, codes, "spread")
    rows = metrics._period_rows(facts, "spread", periods, codes)
    keys = metrics._line_keys(facts, codes, periods)
    assert keys["several"].null_count() > 0
    dense = metrics._Dense.of(rows, keys, codes)
    assert dense is not None
    row, column = np.nonzero(dense.bits)
    found = pl.DataFrame(
        {"sp": dense.sp[row], "x": dense.x[column], "value": dense.value[row, column], "bits": dense.bits[row, column]}
    )
    p_count = max(codes.periods, 1)
    expected = (
        rows.join(keys.with_row_index("r").with_columns(pl.col("r").cast(pl.UInt32)), on="r")
        .filter(pl.col("several").is_not_null())
        .group_by(sp=pl.col("several") * p_count + pl.col("p"), x="x")
        .agg(value=pl.col("pence").sum(), bits=pl.col("bits").bitwise_or())
    )
    assert expected.height > 100
    assert_frame_equal(found.sort("sp", "x"), expected.sort("sp", "x"), check_exact=True, check_column_order=False)
    # supplier counts per set of tier bits, a few rows of the arrays at a time
    low, width = 0, 1 << len(metrics.TIERS)
    n = dense.counts(low, width)
    tier_sets = expected.group_by("sp", tier_set=pl.col("bits") % width).len()
    for sp, tier_set, suppliers in tier_sets.iter_rows():
        assert n[int(np.flatnonzero(dense.sp == sp)[0]), tier_set] == suppliers
    # every supplier with a row there in exactly one set
    assert n.sum() == np.count_nonzero(dense.bits)


@pytest.mark.parametrize("step", [0, 1, 3])
@pytest.mark.parametrize("count", [[1] * 9, [1, 4, 1, 1, 2, 6, 1]])
def test_runs_of_any_step_into_any_width(step: int, count: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    # small blocks: some hold one row per line (each row its line's first), some lines of several rows
    monkeypatch.setattr(metrics, "_ROW_BLOCK", 4)
    n = np.array(count, dtype=np.int64)
    first = (np.arange(n.size, dtype=np.int64) * 7) % 5 - 2
    for block in metrics._line_blocks(n):
        lines = slice(block.start, block.stop)
        expected = np.concatenate([f + step * np.arange(k) for f, k in zip(first[lines], block.n, strict=True)])
        size = block.row_high - block.row_low + 3  # a buffer longer than the block's rows
        wide = metrics._runs(block, first[lines], step, np.full(size, 99, dtype=np.int64))
        narrow = metrics._runs(block, first[lines].astype(np.int32), step, np.full(size, 99, dtype=np.int32))
        assert (wide.dtype, narrow.dtype) == (np.dtype(np.int64), np.dtype(np.int32))
        assert wide.tolist() == narrow.tolist() == expected.tolist()
        assert block.one_row_each == bool((block.n == 1).all())


def test_gathered_is_the_frame_taken_in_that_order() -> None:
    parts = [
        pl.DataFrame(
            {
                "value": pl.Series([10 * k + i for i in range(4)], dtype=pl.Int64),
                "day": pl.Series([None if i == 1 else i + k for i in range(4)], dtype=pl.Int32).cast(pl.Date),
                "flag": [i % 2 == 0 for i in range(4)],
                "code": pl.Series([i - k for i in range(4)], dtype=pl.Int8),
                "division": pl.Series([None if i == k else i for i in range(4)], dtype=pl.Int8),
            }
        )
        for k in range(3)
    ]
    frame = pl.concat(parts, rechunk=False)
    assert frame.n_chunks() == 3
    index = np.array([11, 0, 5, 5, 3, 8, 1, 10, 2, 4, 6, 7, 9], dtype=np.int64)
    taken = metrics._gathered(frame, index)
    assert_frame_equal(taken, frame[index], check_exact=True)
    assert taken.n_chunks("all") == [1] * frame.width
    assert metrics._numpy_of(frame["value"]).tolist() == frame["value"].to_list()
    assert metrics._numpy_of(frame["code"]).dtype == np.int8
