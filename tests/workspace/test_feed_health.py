"""When a feed counts as gone quiet: more than three times its usual (median) gap since it last brought anything."""

from __future__ import annotations

import datetime as dt

from procurement.workspace.service import feed_health

NOW = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)


def _days_ago(*days: float) -> list[dt.datetime]:
    return [NOW - dt.timedelta(days=d) for d in days]


def test_a_daily_feed_quiet_for_four_days_is_overdue() -> None:
    health = feed_health("contracts_finder", _days_ago(7, 6, 5, 4), NOW, NOW, feed_runs=10)
    assert health.overdue
    assert health.median_gap == dt.timedelta(days=1)
    assert health.last_new == NOW - dt.timedelta(days=4)
    assert health.message == "Nothing new for 4 days; new releases usually come every 24 hours."


def test_within_three_gaps_is_not_overdue() -> None:
    health = feed_health("contracts_finder", _days_ago(7, 6, 5, 2.9), NOW, NOW, feed_runs=4)
    assert not health.overdue
    assert health.message == "New releases usually come every 24 hours."


def test_too_little_history_says_so_and_never_warns() -> None:
    health = feed_health("find_a_tender", _days_ago(300, 200), None, NOW, feed_runs=2)
    assert not health.overdue
    assert health.median_gap is None
    assert health.message == "Too few feed runs with new releases to know the usual gap."


def test_feed_runs_that_never_brought_anything_are_overdue() -> None:
    health = feed_health("find_a_tender", [], NOW, NOW, feed_runs=3)
    assert health.overdue
    assert health.last_new is None


def test_file_imports_alone_are_not_a_feed() -> None:
    health = feed_health("manual", [], NOW, NOW, feed_runs=0)
    assert not health.overdue
    assert health.last_success == NOW
