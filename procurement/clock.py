"""The one clock: every stored instant is timezone-aware UTC (shown in UK time where people read it)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from socialvalue.periods import quarter_bounds


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


UK = ZoneInfo("Europe/London")


def uk_today(at: dt.datetime | None = None) -> dt.date:
    """Today's date in the UK, where quarters end (a quarter ends at midnight UK time, not UTC)."""
    return (at or now()).astimezone(UK).date()


def quarter_not_over(period: str, today: dt.date | None = None) -> str | None:
    """Why a quarter cannot be reported on yet ("2026Q4 has not ended: it ends on 31 March 2027"), or None."""
    end = quarter_bounds(period)[1]
    if (today or uk_today()) > end:
        return None
    return f"{period} has not ended: it ends on {long_date(end)} (UK time)"


def long_date(day: dt.date) -> str:
    """31 March 2027."""
    return f"{day.day} {day:%B} {day.year}"
