"""UK financial-year quarters (the year starts 1 April).

A quarter label "2025Q1" is financial year 2025/26, quarter 1 = 1 Apr - 30 Jun 2025;
"2025Q4" = 1 Jan - 31 Mar 2026. A financial-year label is "2025/26".

Internally a quarter is also an integer index, ``fy_start_year * 4 + (quarter - 1)``, so that
"the previous quarter" is ``index - 1`` and "a year earlier" is ``index - 4``; the polars
expressions here work on that index so callers stay vectorised.
"""

import re
from datetime import date, timedelta

import polars as pl

_QUARTER_RE = re.compile(r"(\d{4})Q([1-4])")
_YEAR_RE = re.compile(r"(\d{4})/(\d{2})")


MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def day_month(d: date) -> str:
    """ "6 December": dates as people write them in the UK, with no leading zero."""
    return f"{d.day} {MONTH_NAMES[d.month - 1]}"


def long_date(d: date) -> str:
    """ "6 December 2026"."""
    return f"{day_month(d)} {d.year}"


def parse_quarter(label: str) -> tuple[int, int]:
    """Return (financial-year start year, quarter 1-4) for a label such as "2025Q1"."""
    if not isinstance(label, str):
        raise ValueError(f"quarter label must be a string like '2025Q1', got {label!r}")
    match = _QUARTER_RE.fullmatch(label)
    if match is None:
        raise ValueError(f"bad quarter label {label!r}: expected 'YYYYQn' with n in 1-4, e.g. '2025Q1'")
    return int(match.group(1)), int(match.group(2))


def quarter_label(fy_start_year: int, quarter: int) -> str:
    if not 1 <= quarter <= 4:
        raise ValueError(f"quarter must be 1-4, got {quarter}")
    return f"{fy_start_year:04d}Q{quarter}"


def quarter_index(label: str) -> int:
    year, quarter = parse_quarter(label)
    return year * 4 + quarter - 1


def quarter_from_index(index: int) -> str:
    return quarter_label(index // 4, index % 4 + 1)


def quarter_of(d: date) -> str:
    fy = d.year if d.month >= 4 else d.year - 1
    return quarter_label(fy, (d.month - 4) % 12 // 3 + 1)


def quarter_bounds(label: str) -> tuple[date, date]:
    """First and last day (both inclusive) of the quarter."""
    year, quarter = parse_quarter(label)
    start = _quarter_start(year, quarter)
    next_year, next_quarter = (year, quarter + 1) if quarter < 4 else (year + 1, 1)
    return start, _quarter_start(next_year, next_quarter) - timedelta(days=1)


def _quarter_start(fy_start_year: int, quarter: int) -> date:
    month = 4 + 3 * (quarter - 1)
    return date(fy_start_year + 1, month - 12, 1) if month > 12 else date(fy_start_year, month, 1)


def previous_quarter(label: str) -> str:
    return quarter_from_index(quarter_index(label) - 1)


def same_quarter_last_year(label: str) -> str:
    year, quarter = parse_quarter(label)
    return quarter_label(year - 1, quarter)


def quarters_between(a: str, b: str) -> list[str]:
    """Every quarter from a to b, both included; empty when b is before a."""
    return [quarter_from_index(i) for i in range(quarter_index(a), quarter_index(b) + 1)]


def financial_year_of(d: date) -> str:
    return financial_year_label(d.year if d.month >= 4 else d.year - 1)


def financial_year_label(fy_start_year: int) -> str:
    return f"{fy_start_year:04d}/{(fy_start_year + 1) % 100:02d}"


def parse_financial_year(label: str) -> int:
    """Start year of a label such as "2025/26"; the second part must be the following year."""
    match = _YEAR_RE.fullmatch(label) if isinstance(label, str) else None
    if match is None or (int(match.group(1)) + 1) % 100 != int(match.group(2)):
        raise ValueError(f"bad financial year label {label!r}: expected e.g. '2025/26'")
    return int(match.group(1))


def financial_year_bounds(label: str) -> tuple[date, date]:
    year = parse_financial_year(label)
    return date(year, 4, 1), date(year + 1, 3, 31)


# Vectorised forms used by the metrics engine.


def quarter_index_expr(d: pl.Expr) -> pl.Expr:
    """Quarter index of a Date expression (null stays null)."""
    month = d.dt.month().cast(pl.Int64)
    fy = d.dt.year().cast(pl.Int64) - (month < 4).cast(pl.Int64)
    return fy * 4 + (month + 8) % 12 // 3


def quarter_start_expr(index: pl.Expr) -> pl.Expr:
    """First day (Date) of the quarter with this index."""
    fy = index // 4
    q = index % 4
    return pl.date(fy + (q == 3).cast(pl.Int64), (3 + 3 * q) % 12 + 1, 1)


def quarter_label_expr(index: pl.Expr) -> pl.Expr:
    return pl.format("{}Q{}", index // 4, index % 4 + 1)


def financial_year_label_expr(fy_start_year: pl.Expr) -> pl.Expr:
    return pl.format("{}/{}", fy_start_year, ((fy_start_year + 1) % 100).cast(pl.Utf8).str.zfill(2))
