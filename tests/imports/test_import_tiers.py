"""Imports store the tiers of the pairs they add once, at the end of a run: after a run every (anchor, supplier)
pair with lines has a stored tier equal to a from-scratch computation, and a run stopped part-way (its batches
having dropped the tiers of suppliers whose classification changed) still gives the from-scratch figures, with
the next run storing what it left."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from procurement import models as m
from procurement.imports.runs import run_file_import
from procurement.imports.service import CONTRACTS_FINDER, Counts
from procurement.metrics.lines import lines_with_details
from procurement.organisations.seed import seed_anchors
from procurement.suppliers.tiers import TIER_COLUMNS, refresh_tiers, unstored_pairs
from tests.conftest import Database
from tests.support.imports import CF_FILES


async def _check(db: Database) -> int:
    """Figures read now equal those of a from-scratch computation; returns the pairs with lines but no stored
    tier (none: the stored tiers also equal a full rebuild)."""
    t = m.AnchorSupplierTier
    by_pair = select(*(getattr(t, c) for c in TIER_COLUMNS)).order_by(t.anchor_id, t.supplier_id)
    async with async_sessionmaker(db.engine, expire_on_commit=False)() as s:
        anchors = list((await s.scalars(select(m.Organisation.id).order_by(m.Organisation.id))).all())
        read = await lines_with_details(s, anchors)
        assert read.height > 0
        assert read.equals(await lines_with_details(s, anchors, from_scratch=True, refresh=True))
        await s.rollback()
        missing = (await unstored_pairs(s)).height
        stored = (await s.execute(by_pair)).all()
        await refresh_tiers(s)  # every pair, from scratch
        rebuilt = (await s.execute(by_pair)).all()
        await s.rollback()
    if not missing:
        assert stored == rebuilt
    return missing


def _moved(path: Path, tmp_path: Path) -> Path:
    """The file's releases again, as new versions whose suppliers have moved to Manchester."""
    data = json.loads(path.read_bytes(), parse_float=Decimal)
    releases = data["releases"] if isinstance(data, dict) else data
    for release in releases:
        for party in release.get("parties", []):
            if "supplier" in party.get("roles", []):
                party.setdefault("address", {})["postalCode"] = "M1 1AE"
    moved = tmp_path / "moved.json"
    moved.write_text(json.dumps(releases, default=str))
    return moved


async def test_a_run_stores_every_pair_and_a_stopped_one_leaves_right_figures(
    db: Database, session: Any, tmp_path: Path
) -> None:
    await seed_anchors(session)
    await session.commit()
    first = await run_file_import(db.engine, CONTRACTS_FINDER, [CF_FILES[0]], batch_size=25)
    assert first.status == "completed"
    assert await _check(db) == 0

    def stop_after_two(_file: int, counts: Counts) -> None:
        stop_after_two.batches += 1  # type: ignore[attr-defined]
        if stop_after_two.batches == 2:  # type: ignore[attr-defined]
            raise asyncio.CancelledError

    stop_after_two.batches = 0  # type: ignore[attr-defined]
    moved = _moved(CF_FILES[0], tmp_path)
    with pytest.raises(asyncio.CancelledError):
        await run_file_import(db.engine, CONTRACTS_FINDER, [moved], batch_size=10, on_batch=stop_after_two)
    # Moved suppliers' tiers were dropped and are judged on the fly: the figures are still right.
    assert await _check(db) > 0

    # The next run (of other releases) stores what the stopped one left; so does the stopped run's resumption.
    other = await run_file_import(db.engine, CONTRACTS_FINDER, [CF_FILES[1]])
    assert other.status == "completed"
    assert await _check(db) == 0
    [stopped] = (await session.scalars(select(m.ImportRun).where(m.ImportRun.status == "interrupted"))).all()
    resumed = await run_file_import(db.engine, CONTRACTS_FINDER, [moved], batch_size=10, resume_run=stopped)
    assert resumed.status == "completed"
    assert resumed.counts.changed > 0
    assert await _check(db) == 0
