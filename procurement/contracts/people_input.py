"""What people type into forms and spreadsheets, read into exact values, or refused with a plain message.

Pure functions (no database, no web): money as pence, dates (UK order: day first), UK financial-year quarters
("Q1 2025/26" = April to June 2025, stored as "2025Q1") and CPV codes. Every refusal is a ``PeopleInputError``
whose message names what was typed and gives an example of what to type instead; nothing is guessed where a
guess could be wrong by a factor (shorthand like "£80k") or by months (American-order dates).
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation

from procurement.contracts.schemas import normalise_cpv
from procurement.money import MAX_PENCE
from socialvalue.periods import quarter_label


class PeopleInputError(ValueError):
    """A value people typed that cannot be read; ``str(error)`` is the message to show them."""


def _first_up(field: str) -> str:
    # str.capitalize() would turn "the CPV code" into "The cpv code".
    return field[:1].upper() + field[1:]


_CURRENCY_PREFIX = re.compile(r"^(?:£|gbp\s*)", re.IGNORECASE)
_OTHER_CURRENCY = re.compile(r"[$€¥]|\b(?:usd|eur)\b", re.IGNORECASE)
_SHORTHAND = re.compile(r"^\d[\d,.]*\s*(k|m|bn|b|mn|mil|million|thousand|billion)$", re.IGNORECASE)
# Thousands grouped in threes, or no grouping at all; up to two decimal places.
_AMOUNT = re.compile(r"^(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?$")
_MONEY_EXAMPLE = "for example £80,000.00, 80,000 or 80000"


def parse_money(text: str, *, field: str = "the value") -> int:
    """Pounds as typed -> integer pence: "£80,000.00", "80,000", "80000", "GBP 80000", "£1,234.5"."""
    raw = text.strip()
    if not raw:
        raise PeopleInputError(f"Enter {field}, {_MONEY_EXAMPLE}")
    if _OTHER_CURRENCY.search(raw):
        raise PeopleInputError(f"Enter {field} in pounds ({raw!r} is another currency), {_MONEY_EXAMPLE}")
    body = _CURRENCY_PREFIX.sub("", raw).strip().replace(" ", "")
    if body.startswith("-") or body.startswith("(") or raw.startswith("-"):
        raise PeopleInputError(f"{_first_up(field)} cannot be negative: you typed {raw!r}")
    if _SHORTHAND.match(body):
        raise PeopleInputError(
            f"Write {field} in full: {raw!r} uses shorthand, which could be read more than one way; "
            "type £80,000 rather than £80k"
        )
    match = _AMOUNT.match(body)
    if match is None:
        if re.fullmatch(r"\d{1,3}(?:\.\d{3})+(?:,\d{1,2})?", body):
            hint = "use a full stop for pence and commas for thousands"
        elif re.fullmatch(r"[\d,]*\.\d{3,}", body):
            hint = "give at most two decimal places (pence)"
        else:
            hint = "use digits, with commas between thousands if you like"
        raise PeopleInputError(f"Enter {field} as an amount in pounds ({hint}): {raw!r} is not one; {_MONEY_EXAMPLE}")
    try:
        pence = int(Decimal(body.replace(",", "")) * 100)
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only digits
        raise PeopleInputError(f"Enter {field} as an amount in pounds, {_MONEY_EXAMPLE}") from exc
    if pence > MAX_PENCE:
        raise PeopleInputError(
            f"{_first_up(field)} of {raw!r} is more than £{int(MAX_PENCE // 100):,}: check the amount"
        )
    return pence


_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
_DATE_EXAMPLE = "for example 12/05/2025, 12 May 2025 or 2025-05-12"
_NUMERIC_DMY = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{2}|\d{4})$")
_NUMERIC_YMD = re.compile(r"^(\d{4})[/.\-](\d{1,2})[/.\-](\d{1,2})$")
_WORDY = re.compile(r"^(\d{1,2})(?:st|nd|rd|th)?[\s\-]+([a-z]+)\.?,?[\s\-]+(\d{2}|\d{4})$", re.IGNORECASE)
_EARLIEST, _LATEST = 1990, 2100


def _year(text: str) -> int:
    # Two-digit years are this century: contract registers hold nothing from the 1900s.
    return 2000 + int(text) if len(text) == 2 else int(text)


def _make_date(year: int, month: int, day: int, raw: str, field: str) -> dt.date:
    try:
        value = dt.date(year, month, day)
    except ValueError:
        raise PeopleInputError(f"{_first_up(field)} {raw!r} is not a real date; {_DATE_EXAMPLE}") from None
    if not _EARLIEST <= value.year <= _LATEST:
        raise PeopleInputError(
            f"{_first_up(field)} {raw!r} is in {value.year}: give a year between {_EARLIEST} and {_LATEST}"
        )
    return value


def parse_date(text: str, *, field: str = "the date") -> dt.date:
    """A date as typed, day first: "12/05/2025", "12 May 2025", "2025-05-12", "12-May-25" -> 12 May 2025."""
    raw = text.strip()
    if not raw:
        raise PeopleInputError(f"Enter {field}, {_DATE_EXAMPLE}")
    if match := _NUMERIC_YMD.match(raw):
        return _make_date(int(match[1]), int(match[2]), int(match[3]), raw, field)
    if match := _NUMERIC_DMY.match(raw):
        day, month, year = int(match[1]), int(match[2]), _year(match[3])
        if month > 12 and day <= 12:
            raise PeopleInputError(
                f"{_first_up(field)} {raw!r} looks like month first: write the day first, "
                f"as in {month:02d}/{day:02d}/{year} for {month} {dt.date(2000, day, 1):%B} {year}"
            )
        return _make_date(year, month, day, raw, field)
    if match := _WORDY.match(raw):
        month_number = _MONTHS.get(match[2].lower())
        if month_number is None:
            raise PeopleInputError(f"{_first_up(field)} {raw!r} has no month we recognise; {_DATE_EXAMPLE}")
        return _make_date(_year(match[3]), month_number, int(match[1]), raw, field)
    raise PeopleInputError(f"Enter {field} as a date, day first: {raw!r} is not one; {_DATE_EXAMPLE}")


_QUARTER_EXAMPLE = "for example Q1 2025/26 (April to June 2025) or 2025Q1"
_Q_FIRST = re.compile(r"^q([1-4])[\s,]*(?:fy\s*)?(\d{4})\s*[/\-]\s*(\d{2}|\d{4})$", re.IGNORECASE)
_YEAR_FIRST = re.compile(r"^(?:fy\s*)?(\d{4})\s*[/\-]\s*(\d{2}|\d{4})[\s,]*q([1-4])$", re.IGNORECASE)
_COMPACT = re.compile(r"^(\d{4})\s*q([1-4])$", re.IGNORECASE)
# "Q1 2025" is read as January to March by some and April to June by others: refused, not guessed.
_CALENDAR_ONLY = re.compile(r"^q([1-4])\s*(\d{4})$", re.IGNORECASE)


def _financial_year(start: str, end: str, raw: str, field: str) -> int:
    first = int(start)
    follows = int(end) == first + 1 if len(end) == 4 else int(end) == (first + 1) % 100
    if not follows:
        raise PeopleInputError(
            f"{_first_up(field)} {raw!r} does not name one financial year: the years must follow on, "
            f"as in {first}/{(first + 1) % 100:02d}"
        )
    return first


def parse_quarter(text: str, *, field: str = "the quarter") -> str:
    """A UK financial-year quarter as typed -> its label: "Q1 2025/26", "2025/26 Q1", "2025Q1" -> "2025Q1"."""
    raw = text.strip()
    if not raw:
        raise PeopleInputError(f"Enter {field}, {_QUARTER_EXAMPLE}")
    if match := _Q_FIRST.match(raw):
        return quarter_label(_financial_year(match[2], match[3], raw, field), int(match[1]))
    if match := _YEAR_FIRST.match(raw):
        return quarter_label(_financial_year(match[1], match[2], raw, field), int(match[3]))
    if match := _COMPACT.match(raw):
        return quarter_label(int(match[1]), int(match[2]))
    if match := _CALENDAR_ONLY.match(raw):
        quarter, start = match[1], int(match[2])
        raise PeopleInputError(
            f"{_first_up(field)} {raw!r} could be a calendar or a financial year: write the financial year, "
            f"as in Q{quarter} {start}/{(start + 1) % 100:02d}"
        )
    raise PeopleInputError(f"Enter {field} as a financial-year quarter: {raw!r} is not one; {_QUARTER_EXAMPLE}")


def parse_cpv(text: str, *, field: str = "the CPV code") -> str:
    """A CPV code as typed -> its 8 digits: "45000000", "45000000-7", "45000000-7 Construction work"."""
    raw = text.strip()
    code = re.split(r"\s+", raw, maxsplit=1)[0] if raw else ""
    if not code:
        raise PeopleInputError(f"Enter {field}: 8 digits, for example 45000000 or 45000000-7")
    try:
        return normalise_cpv(code)
    except ValueError:
        digits = len(re.sub(r"\D", "", code.split("-")[0]))
        raise PeopleInputError(
            f"{_first_up(field)} {raw!r} is not a CPV code: it has {digits} digits before any check digit, "
            "and a CPV code has 8, for example 45000000 or 45000000-7"
        ) from None


def parse_cpv_list(text: str, *, field: str = "the CPV codes") -> list[str]:
    """Several codes separated by commas, semicolons or new lines, in order, each once."""
    parts = [p for p in re.split(r"[,;\n]+", text) if p.strip()]
    return list(dict.fromkeys(parse_cpv(p, field=field.removesuffix("s")) for p in parts))
