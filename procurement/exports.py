"""Spreadsheet-safe exports: every CSV and XLSX cell that users' data can reach is written through here.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read as a formula by
spreadsheet programs, so a supplier named ``=HYPERLINK(...)`` would become a live link in a buyer's copy of the
public figures. Following the OWASP CSV injection guidance such text gets a leading single quote; a genuine
number (a credit note of ``-50.00``) is left as it is. XLSX money is written as numbers with a pounds format.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Collection, Iterable, Mapping
from decimal import Decimal
from typing import Any, TextIO

import polars as pl

_STARTS = "=+\\-@\t\r"
_NUMBER = r"-?[0-9]+(?:\.[0-9]+)?"
# The same two rules in Python's and in polars' (Rust) regular expressions.
_RISKY = re.compile(f"[{_STARTS}]")
_GENUINE_NUMBER = re.compile(_NUMBER)
_RISKY_PL = f"^[{_STARTS}]"
_GENUINE_NUMBER_PL = f"^{_NUMBER}$"

POUNDS_FORMAT = "#,##0.00"


def safe_cell(value: Any) -> Any:
    """``value`` unchanged, unless it is text a spreadsheet would run as a formula: then ``'`` + text."""
    if isinstance(value, str) and _RISKY.match(value) and not _GENUINE_NUMBER.fullmatch(value):
        return "'" + value
    return value


def safe_row(values: Iterable[Any]) -> list[Any]:
    return [safe_cell(v) for v in values]


class SafeCsvWriter:
    """``csv.writer`` whose every row goes through ``safe_cell``."""

    def __init__(self, out: TextIO, **options: Any) -> None:
        self._writer = csv.writer(out, **options)

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow(safe_row(row))

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def safe_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """Every text column of ``frame`` neutralised as ``safe_cell`` does (vectorised, for large exports)."""
    texts = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    return frame.with_columns(
        pl.when(pl.col(t).str.contains(_RISKY_PL) & ~pl.col(t).str.contains(_GENUINE_NUMBER_PL))
        .then(pl.lit("'") + pl.col(t))
        .otherwise(pl.col(t))
        .alias(t)
        for t in texts
    )


def write_xlsx(sheets: Mapping[str, pl.DataFrame], *, money: Collection[str] = ()) -> bytes:
    """An XLSX workbook, one sheet per frame: numbers as numbers (``money`` columns in pounds with a number
    format), dates as dates, text neutralised and never read as a formula or a link."""
    import xlsxwriter  # type: ignore[import-untyped]

    buffer = io.BytesIO()
    options = {
        "in_memory": True,
        "strings_to_formulas": False,
        "strings_to_urls": False,
        "strings_to_numbers": False,
        "remove_timezone": True,
    }
    with xlsxwriter.Workbook(buffer, options) as book:
        header = book.add_format({"bold": True})
        pounds = book.add_format({"num_format": POUNDS_FORMAT})
        day = book.add_format({"num_format": "yyyy-mm-dd"})
        instant = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        for name, frame in sheets.items():
            sheet = book.add_worksheet(name)
            for col, column in enumerate(frame.columns):
                sheet.write_string(0, col, safe_cell(column), header)
                number_format = pounds if column in money else None
                for row, value in enumerate(frame.get_column(column).to_list(), start=1):
                    if value is None:
                        continue
                    if isinstance(value, bool):
                        sheet.write_boolean(row, col, value)
                    elif isinstance(value, int | float | Decimal):
                        sheet.write_number(row, col, float(value), number_format)
                    elif isinstance(value, dt.datetime):
                        sheet.write_datetime(row, col, value, instant)
                    elif isinstance(value, dt.date):
                        sheet.write_datetime(row, col, value, day)
                    else:
                        sheet.write_string(row, col, safe_cell(str(value)))
            sheet.freeze_panes(1, 0)
            sheet.autofit()
    return buffer.getvalue()
