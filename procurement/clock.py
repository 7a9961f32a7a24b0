"""The one clock: every stored instant is timezone-aware UTC (shown in UK time where people read it)."""

from __future__ import annotations

import datetime as dt


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
