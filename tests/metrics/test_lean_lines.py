"""The lean read behind /metrics (``lines_frame``: no titles, buyer names or tier evidence) gives the engine exactly
the lines the detailed read gives, on the real Contracts Finder samples, however SQLite is asked to read them; and
SQLite's columns read as JSON arrays are the columns read row by row."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
from polars.testing import assert_frame_equal
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from procurement import models as m
from procurement.db import _sqlite_frame, fetch_frame, make_engine
from procurement.imports.runs import run_file_import
from procurement.imports.service import CONTRACTS_FINDER
from procurement.metrics import lines as lines_module
from procurement.metrics.lines import lines_frame, lines_with_details
from procurement.metrics.service import _compute, basis_metrics
from procurement.suppliers.tiers import refresh_tiers
from socialvalue.metrics import INPUT_SCHEMA
from tests.conftest import Database
from tests.support.imports import CF_FILES


async def test_lean_lines_are_the_engine_columns_of_the_detailed_lines(db: Database, monkeypatch: Any) -> None:
    await run_file_import(db.engine, CONTRACTS_FINDER, list(CF_FILES))
    async with async_sessionmaker(db.engine, expire_on_commit=False)() as s:
        buyers = sorted(set((await s.scalars(select(m.Contract.buyer_id))).all()))
        # Every buyer an anchor, so that the lines read their stored tiers.
        await s.execute(update(m.Organisation).where(m.Organisation.id.in_(buyers)).values(is_anchor=True))
        await refresh_tiers(s)
        await s.commit()
        detailed = await lines_with_details(s, buyers)
        assert detailed.height > 100
        assert detailed["cpv_code"].null_count() < detailed.height
        assert detailed["supplier_name"].null_count() == 0
        assert detailed["tier_reason"].null_count() == 0
        assert_frame_equal(await lines_frame(s, buyers), detailed.select(list(INPUT_SCHEMA)), check_exact=True)
        biggest = detailed.group_by("anchor_id").len().sort("len", "anchor_id")["anchor_id"][-1]
        for share in (0, 10**9):  # read through the buyer index and every supplier's name, then by scanning
            monkeypatch.setattr(lines_module, "_SCAN_SHARE", share)  # every line and looking up names by id
            monkeypatch.setattr(lines_module, "_NAMES_BY_ID", share)
            assert_frame_equal(await lines_with_details(s, buyers), detailed, check_exact=True)
            one = detailed.filter(pl.col("anchor_id") == biggest)
            assert_frame_equal(await lines_with_details(s, [biggest]), one, check_exact=True)
        monkeypatch.undo()
        award = detailed.filter(pl.col("anchor_id") == biggest)["award_date"].drop_nulls()[0]
        year = f"{award.year - (award.month < 4)}/{(award.year - (award.month < 4) + 1) % 100:02d}"
        for anchor_id, period in ((None, None), (biggest, None), (biggest, year)):
            answers = []
            for detail in (False, True):
                lines_module._results._items.clear()  # each answer worked out from its own lines
                scope, _kind, computed = await _compute(s, anchor_id, None, period, None, detailed=detail)
                answers.append([basis_metrics(c, scope.key, period) for c in computed])
            assert answers[0] == answers[1]
            assert any(p.headline.total_pence for b in answers[0] for p in b.periods), (anchor_id, period)


async def test_sqlite_columns_read_as_json_are_the_rows(tmp_path: Path) -> None:
    # SQLite's own read (PostgreSQL's columns come by COPY), so on SQLite only; it needs no table.
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'read.db'}")
    schema = {"n": pl.Int64, "text": pl.String, "day": pl.Date, "flag": pl.Boolean, "big": pl.Int64}
    sql = """SELECT * FROM (VALUES (3, 'a"b,\\é', '2025-04-01', 1, 9223372036854775807), (1, NULL, NULL, NULL, NULL),
        (2, '😀' || char(10) || char(9) || char(31), '1999-12-31', 0, -9223372036854775808)) ORDER BY 1"""
    async with async_sessionmaker(engine)() as s:
        conn = await s.connection()
        driver = (await conn.get_raw_connection()).driver_connection
        rows = await driver.execute_fetchall(sql)
        columns = await fetch_frame(s, sql, schema)
        assert_frame_equal(columns, _sqlite_frame(rows, schema), check_exact=True)
        assert columns["n"].to_list() == [1, 2, 3]
        assert columns["text"][2] == 'a"b,\\é'
        assert json.dumps(columns["text"][1]) == json.dumps("😀\n\t\x1f")
        empty = await fetch_frame(s, "SELECT 1, 'x', NULL, 1, 2 WHERE 0", schema)
        assert empty.height == 0
        assert empty.schema == pl.Schema(schema)
    await engine.dispose()
