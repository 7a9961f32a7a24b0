"""Bulk writes (COPY on PostgreSQL, executemany on SQLite) store the same rows and refuse the same conflicts."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from procurement import models as m
from procurement.bulk import WriteBehind, allocate_ids, bulk_insert, plans_cached
from tests.conftest import Database

WHEN = dt.datetime(2025, 4, 1, 9, 30, tzinfo=dt.UTC)


def _rows(count: int, *, repeat: int | None = None) -> list[dict[str, Any]]:
    return [
        {
            "source": f"feed-{repeat if repeat is not None and i == count - 1 else i}",
            "watermark": WHEN,
            "updated_at": WHEN,
        }
        for i in range(count)
    ]


@pytest.mark.parametrize("count", [3, 40])  # below and above the size where PostgreSQL switches to COPY
async def test_bulk_insert_stores_rows_with_their_types(db: Database, session: Any, count: int) -> None:
    ids = await allocate_ids(session, m.FeedWatermark, count)
    await bulk_insert(session, m.FeedWatermark, [{"id": i, **r} for i, r in zip(ids, _rows(count), strict=True)])
    await session.commit()
    stored = (await session.execute(select(m.FeedWatermark).order_by(m.FeedWatermark.id))).scalars().all()
    assert [(w.id, w.source, w.watermark) for w in stored] == [(i, f"feed-{n}", WHEN) for n, i in enumerate(ids)]


@pytest.mark.parametrize("count", [3, 40])
async def test_bulk_insert_conflict_is_an_integrity_error_and_stores_nothing(
    db: Database, session: Any, count: int
) -> None:
    """Imports retry a batch on IntegrityError (another source created the same row meanwhile); COPY keeps that."""
    with pytest.raises(IntegrityError):
        await bulk_insert(session, m.FeedWatermark, _rows(count, repeat=0))
    await session.rollback()
    assert (await session.execute(select(m.FeedWatermark))).first() is None


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)  # plan_cache_mode is PostgreSQL's
async def test_copy_leaves_the_callers_plan_cache_mode_as_it_found_it(db: Database, session: Any) -> None:
    """COPY runs its foreign-key checks with cached plans, then gives the transaction back its own mode (imports
    force custom plans for their reads)."""
    await session.execute(text("SELECT set_config('plan_cache_mode', 'force_custom_plan', true)"))
    await bulk_insert(session, m.FeedWatermark, _rows(40))
    assert (await session.execute(text("SELECT current_setting('plan_cache_mode')"))).scalar() == "force_custom_plan"
    await session.commit()
    assert (await session.execute(select(func.count()).select_from(m.FeedWatermark))).scalar() == 40


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
async def test_copy_in_a_transaction_said_to_cache_plans_does_not_switch_modes(
    db: Database, session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import's writing transaction runs with cached plans throughout and says so (``plans_cached``): its COPYs
    then send no statement besides the COPY itself. The word holds for that transaction only."""
    import asyncpg

    sent: list[str] = []
    for name in ("fetchval", "execute"):
        method = getattr(asyncpg.Connection, name)

        async def spy(self: Any, query: str, *args: Any, _method: Any = method, **kwargs: Any) -> Any:
            sent.append(query)
            return await _method(self, query, *args, **kwargs)

        monkeypatch.setattr(asyncpg.Connection, name, spy)
    await session.execute(text("SELECT set_config('plan_cache_mode', 'auto', true)"))
    plans_cached(session)
    await bulk_insert(session, m.FeedWatermark, _rows(40)[:20])
    await bulk_insert(session, m.FeedWatermark, _rows(40)[20:])
    assert [q for q in sent if "plan_cache_mode" in q] == []
    await session.commit()
    await bulk_insert(session, m.FeedWatermark, [{**r, "source": f"next-{r['source']}"} for r in _rows(20)])
    assert len([q for q in sent if "plan_cache_mode" in q]) == 1  # a new transaction: asked (and found 'auto') again
    await session.commit()
    assert (await session.execute(select(func.count()).select_from(m.FeedWatermark))).scalar() == 60


@pytest.mark.parametrize("behind", [True, False])
async def test_write_behind_keeps_order_and_holds_deferred_writes(db: Database, session: Any, behind: bool) -> None:
    """Imports on PostgreSQL send a batch's writes in the background, in order; deferred ones wait for run_deferred."""
    rows = _rows(40)
    writes = WriteBehind(session, behind=behind)
    count = select(func.count()).select_from(m.FeedWatermark)
    await writes.add(lambda s: bulk_insert(s, m.FeedWatermark, rows[:20]))
    await writes.defer(lambda s: bulk_insert(s, m.FeedWatermark, rows[20:30]))
    await writes.add(lambda s: bulk_insert(s, m.FeedWatermark, rows[30:]))
    await writes.flush()
    assert (await session.execute(count)).scalar() == (30 if behind else 40)
    await writes.run_deferred()
    assert (await session.execute(count)).scalar() == 40
    await session.commit()


async def test_write_behind_raises_the_first_error_and_runs_nothing_after_it(db: Database, session: Any) -> None:
    writes = WriteBehind(session, behind=True)
    await writes.add(lambda s: bulk_insert(s, m.FeedWatermark, _rows(20, repeat=0)))
    await writes.add(
        lambda s: bulk_insert(s, m.FeedWatermark, [{"source": "after", "watermark": WHEN, "updated_at": WHEN}])
    )
    with pytest.raises(IntegrityError):
        await writes.flush()
    await writes.settle()
    await session.rollback()
    assert (await session.execute(select(m.FeedWatermark))).first() is None


async def test_write_behind_settles_before_an_abandoned_transaction_rolls_back(db: Database, session: Any) -> None:
    writes = WriteBehind(session, behind=True)
    await writes.add(lambda s: bulk_insert(s, m.FeedWatermark, _rows(40, repeat=0)))
    await writes.settle()  # the error is left for the batch's own: the connection is idle for the rollback
    await session.rollback()
    assert (await session.execute(select(m.FeedWatermark))).first() is None
