"""``paid_facts`` for the periods asked for are those of the same periods among every period's: only lines dated
within the periods asked for are read on, so the days either side of each period's bounds are tried."""

from __future__ import annotations

import datetime as dt

import polars as pl

from procurement.metrics.paid import PaidFacts, paid_facts


def _lines() -> pl.DataFrame:
    days = [
        dt.date(2024, 3, 31), dt.date(2024, 4, 1), dt.date(2024, 6, 30), dt.date(2024, 7, 1), dt.date(2024, 12, 31),
        dt.date(2025, 1, 1), dt.date(2025, 3, 31), dt.date(2025, 4, 1), None,
    ]  # fmt: skip
    rows = []
    for i, day in enumerate(days * 3):
        rows.append(
            {
                "award_date": day,
                "currency": "EUR" if i % 7 == 3 else "GBP",
                "value_pence": None if i % 11 == 5 else 1000 + i,
                "file_id": i % 2,
                "transaction_number": None if i % 5 == 0 else f"T{i % 4}",
                "influenceable": i % 3 != 0,
                "redacted": i % 4 == 1,
                "not_influenceable_rule": None if i % 3 else f"rule {i % 2}",
            }
        )
    return pl.DataFrame(rows)


def test_the_periods_asked_for_are_read_as_among_every_period() -> None:
    lines = _lines()
    for periods, asked in (
        ("quarter", ["2024Q1", "2023Q4", "2024Q2", "2024Q4", "2025Q1", "2019Q3"]),
        ("quarter", ["2024Q4", "2024Q1"]),
        ("year", ["2023/24", "2024/25", "2025/26", "2010/11"]),
        ("year", ["2025/26", "2023/24"]),
    ):
        for influenceable in (False, True):
            every = {f.period: f for f in paid_facts(lines, periods=periods, influenceable=influenceable)}
            assert len(every) > 2, "lines in several periods"
            found = paid_facts(lines, periods=periods, influenceable=influenceable, wanted=asked)
            assert found == [every.get(p, PaidFacts(p, 0, 0, 0, 0, influenceable)) for p in asked], (periods, asked)
            assert any(f.lines for f in found), "some period asked for has lines"
