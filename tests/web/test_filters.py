"""The Jinja filters and helpers in procurement.web.setup."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from procurement.web.setup import (
    coverage_figure,
    coverage_threshold,
    long_date,
    make_environment,
    pounds,
    quarter_label,
    share,
    slug,
    static_url,
)


@pytest.mark.parametrize(
    ("pence", "text"),
    [(0, "£0.00"), (5, "£0.05"), (123450, "£1,234.50"), (100000000000, "£1,000,000,000.00"), (-5, "-£0.05")],
)
def test_pounds(pence: int, text: str) -> None:
    assert pounds(pence) == text


def test_pounds_whole_and_unknown_and_types() -> None:
    assert pounds(123450, whole=True) == "£1,235"
    assert pounds(123449, whole=True) == "£1,234"
    assert pounds(None) == "not known"
    with pytest.raises(TypeError):
        pounds(12.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        pounds(True)


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.1234, "12.3%"), ("0.5", "50.0%"), (Decimal("0.12345"), "12.3%"), (0.00049, "0.0%"), (1, "100.0%")],
)
def test_share(value: float | str | Decimal, text: str) -> None:
    assert share(value) == text


def test_share_places_and_unknown() -> None:
    assert share(0.12345, 2) == "12.35%"
    assert share(0.5, 0) == "50%"
    assert share(None) == "not known"
    assert share("") == "not known"
    with pytest.raises(ValueError, match="not a number"):
        share("twelve")


def test_long_date() -> None:
    assert long_date(dt.date(2025, 5, 12)) == "12 May 2025"
    assert long_date("2025-05-02") == "2 May 2025"
    # An instant is shown on its UK calendar day: 23:30 UTC on 30 June is 1 July in London (BST).
    assert long_date(dt.datetime(2025, 6, 30, 23, 30, tzinfo=dt.UTC)) == "1 July 2025"
    assert long_date("2025-01-31T23:30:00+00:00") == "31 January 2025"
    assert long_date(None) == "not known"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("2025Q1", "Q1 2025/26"),
        ("2025Q4", "Q4 2025/26"),
        ("1999Q2", "Q2 1999/00"),
        (dt.date(2025, 4, 1), "Q1 2025/26"),
        (dt.date(2025, 6, 30), "Q1 2025/26"),
        (dt.date(2026, 3, 31), "Q4 2025/26"),
        (dt.date(2026, 1, 1), "Q4 2025/26"),
        (dt.datetime(2025, 3, 31, 23, 30, tzinfo=dt.UTC), "Q1 2025/26"),  # 00:30 BST on 1 April
    ],
)
def test_quarter_label(value: str | dt.date, text: str) -> None:
    assert quarter_label(value) == text


def test_quarter_label_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="bad quarter label"):
        quarter_label("2025Q5")
    assert quarter_label(None) == "not known"


def test_coverage_figure_never_shows_unknown_as_zero() -> None:
    assert coverage_figure(0.4213, 0.8642).share == "42.1%"
    assert coverage_figure(0.4213, 0.8642).coverage == "86.4%"
    low = coverage_figure(0.0, "0.2")
    assert (low.share, low.coverage, low.known) == ("not known", "20.0%", False)
    assert coverage_figure(0.0, 0.9).share == "0.0%"  # a known zero is a zero
    assert coverage_figure(None, 0.9).share == "not known"
    assert coverage_figure(0.3, None).share == "not known"
    assert coverage_figure(0.3, coverage_threshold()).known  # at the threshold counts
    assert not coverage_figure(0.3, 0.74, threshold="0.75").known


def test_slug_and_static_url() -> None:
    assert slug("Local share, Q1 2025/26") == "local-share-q1-2025-26"
    assert static_url("localvalue/init.js") == "/static/localvalue/init.js"
    with pytest.raises(FileNotFoundError):
        static_url("localvalue/missing.css")


def test_environment_autoescapes_and_is_strict() -> None:
    env = make_environment()
    assert env.from_string("{{ x }}").render(x="<b>") == "&lt;b&gt;"
    assert env.from_string("{{ 123450 | pounds }} {{ 0.5 | share }} {{ '2025Q2' | quarter }}").render() == (
        "£1,234.50 50.0% Q2 2025/26"
    )
    with pytest.raises(Exception, match="undefined"):
        env.from_string("{{ missing }}").render()


def test_pages_follow_the_coverage_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """A page never calls a share known that the API (LOCALVALUE_COVERAGE_THRESHOLD) calls not known."""
    from procurement.settings import get_settings

    monkeypatch.setenv("LOCALVALUE_COVERAGE_THRESHOLD", "0.90")
    get_settings.cache_clear()
    try:
        assert coverage_threshold() == Decimal("0.90")
        assert not coverage_figure(0.3, 0.8).known
        assert coverage_figure(0.3, 0.9).known
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert coverage_figure(0.3, 0.8).known
