"""What people type, read exactly, and what is refused with which message (table-driven)."""

from __future__ import annotations

import datetime as dt

import pytest

from procurement.contracts.people_input import (
    PeopleInputError,
    parse_cpv,
    parse_cpv_list,
    parse_date,
    parse_money,
    parse_quarter,
)


@pytest.mark.parametrize(
    ("typed", "pence"),
    [
        ("£80,000.00", 8_000_000),
        ("80,000", 8_000_000),
        ("80000", 8_000_000),
        ("  £80000  ", 8_000_000),
        ("£ 80,000", 8_000_000),
        ("GBP 80,000", 8_000_000),
        ("gbp80000.50", 8_000_050),
        ("£1,234.5", 123_450),
        ("1,234,567.89", 123_456_789),
        ("0.01", 1),
        ("0", 0),
        ("£12", 1_200),
    ],
)
def test_money_people_type(typed: str, pence: int) -> None:
    assert parse_money(typed) == pence


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "Enter the value, for example £80,000.00"),
        ("   ", "Enter the value, for example £80,000.00"),
        ("£80k", "Write the value in full: '£80k' uses shorthand"),
        ("80K", "type £80,000 rather than £80k"),
        ("£1.2m", "uses shorthand"),
        ("2 million", "uses shorthand"),
        ("-500", "The value cannot be negative: you typed '-500'"),
        ("£-500", "cannot be negative"),
        ("(500)", "cannot be negative"),
        ("$80,000", "Enter the value in pounds ('$80,000' is another currency)"),
        ("€80.000,00", "another currency"),
        ("80.000,00", "use a full stop for pence and commas for thousands"),
        ("80,00", "use digits, with commas between thousands"),
        ("8,0000", "use digits, with commas between thousands"),
        ("80000.123", "give at most two decimal places (pence)"),
        ("eighty thousand", "'eighty thousand' is not one; for example £80,000.00, 80,000 or 80000"),
        ("1" + "0" * 14, "is more than £10,000,000,000,000: check the amount"),
    ],
)
def test_money_refused_with_a_plain_message(typed: str, message: str) -> None:
    with pytest.raises(PeopleInputError) as caught:
        parse_money(typed)
    assert message in str(caught.value)


def test_money_message_names_the_field() -> None:
    with pytest.raises(PeopleInputError, match=r"^Enter the contract value, for example"):
        parse_money("", field="the contract value")


@pytest.mark.parametrize(
    ("typed", "day"),
    [
        ("12/05/2025", dt.date(2025, 5, 12)),
        ("12/5/2025", dt.date(2025, 5, 12)),
        ("1/4/2025", dt.date(2025, 4, 1)),
        ("12.05.2025", dt.date(2025, 5, 12)),
        ("12-05-2025", dt.date(2025, 5, 12)),
        ("12/05/25", dt.date(2025, 5, 12)),
        ("12 May 2025", dt.date(2025, 5, 12)),
        ("12 may 2025", dt.date(2025, 5, 12)),
        ("12th May 2025", dt.date(2025, 5, 12)),
        ("1st September 2025", dt.date(2025, 9, 1)),
        ("3 Sept 2025", dt.date(2025, 9, 3)),
        ("3 Sep. 2025", dt.date(2025, 9, 3)),
        ("2025-05-12", dt.date(2025, 5, 12)),
        ("2025/05/12", dt.date(2025, 5, 12)),
        ("12-May-25", dt.date(2025, 5, 12)),
        ("12-May-2025", dt.date(2025, 5, 12)),
        ("29 February 2024", dt.date(2024, 2, 29)),
        (" 31 March 2026 ", dt.date(2026, 3, 31)),
    ],
)
def test_dates_people_type_day_first(typed: str, day: dt.date) -> None:
    assert parse_date(typed) == day


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "Enter the date, for example 12/05/2025, 12 May 2025 or 2025-05-12"),
        ("05/13/2025", "The date '05/13/2025' looks like month first: write the day first, as in 13/05/2025"),
        ("31/02/2025", "The date '31/02/2025' is not a real date"),
        ("29 February 2025", "is not a real date"),
        ("2025-13-01", "is not a real date"),
        ("12 Mai 2025", "The date '12 Mai 2025' has no month we recognise"),
        ("12/05/1890", "is in 1890: give a year between 1990 and 2100"),
        ("next Tuesday", "Enter the date as a date, day first: 'next Tuesday' is not one"),
        ("May 12 2025", "is not one; for example 12/05/2025"),
        ("12052025", "is not one"),
    ],
)
def test_dates_refused_with_a_plain_message(typed: str, message: str) -> None:
    with pytest.raises(PeopleInputError) as caught:
        parse_date(typed)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("typed", "label"),
    [
        ("Q1 2025/26", "2025Q1"),
        ("q1 2025/26", "2025Q1"),
        ("Q4 2025/26", "2025Q4"),
        ("Q2 2025-26", "2025Q2"),
        ("Q3 2025/2026", "2025Q3"),
        ("Q1 FY2025/26", "2025Q1"),
        ("2025Q1", "2025Q1"),
        ("2025 Q1", "2025Q1"),
        ("2025q4", "2025Q4"),
        ("2025/26 Q1", "2025Q1"),
        ("2025/26 q2", "2025Q2"),
        ("2025-26 Q3", "2025Q3"),
        ("1999/00 Q1", "1999Q1"),
    ],
)
def test_quarters_people_type(typed: str, label: str) -> None:
    assert parse_quarter(typed) == label


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "Enter the quarter, for example Q1 2025/26 (April to June 2025) or 2025Q1"),
        ("Q1 2025", "'Q1 2025' could be a calendar or a financial year: write the financial year, as in Q1 2025/26"),
        ("Q5 2025/26", "Enter the quarter as a financial-year quarter: 'Q5 2025/26' is not one"),
        ("Q1 2025/27", "'Q1 2025/27' does not name one financial year: the years must follow on, as in 2025/26"),
        ("2025/24 Q2", "does not name one financial year"),
        ("April 2025", "is not one; for example Q1 2025/26"),
    ],
)
def test_quarters_refused_with_a_plain_message(typed: str, message: str) -> None:
    with pytest.raises(PeopleInputError) as caught:
        parse_quarter(typed)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("45000000", "45000000"),
        ("45000000-7", "45000000"),
        (" 72000000-5 ", "72000000"),
        ("85100000-0 Health services", "85100000"),
        ("09000000-3", "09000000"),
    ],
)
def test_cpv_with_or_without_check_digit(typed: str, code: str) -> None:
    assert parse_cpv(typed) == code


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "Enter the CPV code: 8 digits, for example 45000000 or 45000000-7"),
        ("4500000", "'4500000' is not a CPV code: it has 7 digits before any check digit, and a CPV code has 8"),
        ("450000001", "it has 9 digits"),
        ("45000000-77", "is not a CPV code"),
        ("Construction", "it has 0 digits"),
    ],
)
def test_cpv_refused_with_a_plain_message(typed: str, message: str) -> None:
    with pytest.raises(PeopleInputError) as caught:
        parse_cpv(typed)
    assert message in str(caught.value)


def test_cpv_list_keeps_order_and_drops_repeats() -> None:
    assert parse_cpv_list("45000000-7, 72000000; 45000000\n85100000-0") == ["45000000", "72000000", "85100000"]
    with pytest.raises(PeopleInputError, match="The CPV code '123' is not a CPV code"):
        parse_cpv_list("45000000, 123")
