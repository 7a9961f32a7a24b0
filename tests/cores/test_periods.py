from datetime import date

import polars as pl
import pytest

from socialvalue.periods import (
    financial_year_bounds,
    financial_year_label_expr,
    financial_year_of,
    parse_financial_year,
    parse_quarter,
    previous_quarter,
    quarter_bounds,
    quarter_index,
    quarter_index_expr,
    quarter_label_expr,
    quarter_of,
    quarter_start_expr,
    quarters_between,
    same_quarter_last_year,
)


@pytest.mark.parametrize(
    ("day", "label"),
    [
        (date(2025, 4, 1), "2025Q1"),
        (date(2025, 6, 30), "2025Q1"),
        (date(2025, 7, 1), "2025Q2"),
        (date(2025, 9, 30), "2025Q2"),
        (date(2025, 10, 1), "2025Q3"),
        (date(2025, 12, 31), "2025Q3"),
        (date(2026, 1, 1), "2025Q4"),
        (date(2026, 3, 31), "2025Q4"),
        (date(2024, 2, 29), "2023Q4"),
    ],
)
def test_quarter_of(day: date, label: str) -> None:
    assert quarter_of(day) == label


def test_quarter_bounds_are_inclusive() -> None:
    assert quarter_bounds("2025Q1") == (date(2025, 4, 1), date(2025, 6, 30))
    assert quarter_bounds("2025Q2") == (date(2025, 7, 1), date(2025, 9, 30))
    assert quarter_bounds("2025Q3") == (date(2025, 10, 1), date(2025, 12, 31))
    assert quarter_bounds("2025Q4") == (date(2026, 1, 1), date(2026, 3, 31))
    assert quarter_bounds("2023Q4") == (date(2024, 1, 1), date(2024, 3, 31))


def test_parse_quarter() -> None:
    assert parse_quarter("2025Q3") == (2025, 3)


@pytest.mark.parametrize("bad", ["2025Q0", "2025Q5", "2025q1", "25Q1", "2025-Q1", " 2025Q1", "", "2025Q1x"])
def test_parse_quarter_rejects_bad_labels(bad: str) -> None:
    with pytest.raises(ValueError, match="bad quarter label"):
        parse_quarter(bad)


def test_parse_quarter_rejects_non_strings() -> None:
    with pytest.raises(ValueError, match="must be a string"):
        parse_quarter(20251)  # type: ignore[arg-type]


def test_neighbours() -> None:
    assert previous_quarter("2025Q1") == "2024Q4"
    assert previous_quarter("2025Q3") == "2025Q2"
    assert same_quarter_last_year("2025Q1") == "2024Q1"
    assert quarters_between("2024Q3", "2025Q2") == ["2024Q3", "2024Q4", "2025Q1", "2025Q2"]
    assert quarters_between("2025Q1", "2025Q1") == ["2025Q1"]
    assert quarters_between("2025Q2", "2025Q1") == []


def test_financial_years() -> None:
    assert financial_year_of(date(2025, 4, 1)) == "2025/26"
    assert financial_year_of(date(2026, 3, 31)) == "2025/26"
    assert financial_year_of(date(2000, 1, 1)) == "1999/00"
    assert parse_financial_year("1999/00") == 1999
    assert financial_year_bounds("2025/26") == (date(2025, 4, 1), date(2026, 3, 31))
    for bad in ("2025/27", "2025-26", "2025/2026"):
        with pytest.raises(ValueError, match="bad financial year"):
            parse_financial_year(bad)


def test_expressions_agree_with_scalar_functions() -> None:
    days = [date(2023, 3, 31), date(2023, 4, 1), date(2024, 2, 29), date(2024, 12, 31), date(2026, 1, 1)]
    frame = pl.DataFrame({"d": days}).with_columns(idx=quarter_index_expr(pl.col("d")))
    frame = frame.with_columns(
        label=quarter_label_expr(pl.col("idx")),
        start=quarter_start_expr(pl.col("idx")),
        fy=financial_year_label_expr(pl.col("idx") // 4),
    )
    assert frame["idx"].to_list() == [quarter_index(quarter_of(d)) for d in days]
    assert frame["label"].to_list() == [quarter_of(d) for d in days]
    assert frame["start"].to_list() == [quarter_bounds(quarter_of(d))[0] for d in days]
    assert frame["fy"].to_list() == [financial_year_of(d) for d in days]
