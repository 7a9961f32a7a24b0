"""Time a contracts-register upload: preview (read + check + plan) and commit of a 10,000-row sheet.

Run: .venv/bin/python benchmarks/upload_bench.py [rows] [--backends=sqlite,postgresql]
Builds a CSV in the template's columns (200 distinct suppliers, typed values such as "£12,345.00" and
"12/05/2025"), then on a fresh migrated database: preview = read_sheet + read_rows + plan; commit = commit()
plus the one database commit. Then the same sheet again (every row unchanged), then with every value changed
(every row an update, audited with its reason). Targets: preview < 5 s,
commit < 10 s at demo scale.
"""

from __future__ import annotations

import asyncio
import io
import os
import sys
import tempfile
import time

import polars as pl

from procurement import models as m
from procurement.auth import Principal
from procurement.contracts.register_sheet import read_rows, read_sheet
from procurement.db import make_engine
from procurement.organisations.seed import seed_anchors
from procurement.procure.upload import commit, plan
from tests.conftest import alembic_upgrade, create_pg_database, drop_pg_database


def sheet(n: int, extra_pence: int = 0) -> bytes:
    frame = pl.DataFrame(
        {
            "reference": [f"BENCH-{i:05d}" for i in range(n)],
            "title": [f"Service contract {i}" for i in range(n)],
            "value": [f"£{(i % 900 + 100) * 137:,}.{extra_pence:02d}" for i in range(n)],
            "award_date": [f"{i % 28 + 1:02d}/{i % 12 + 1:02d}/2025" for i in range(n)],
            "cpv_codes": ["85100000-0"] * n,
            "supplier_name": [f"Bench Supplier {i % 200} Ltd" for i in range(n)],
            "supplier_postcode": ["B15 2GW"] * n,
        }
    )
    buffer = io.BytesIO()
    frame.write_csv(buffer)
    return buffer.getvalue()


async def run(url: str, data: bytes, changed: bytes) -> None:
    from sqlalchemy import select
    from sqlalchemy.ext.asyncio import AsyncSession

    engine = make_engine(url)
    async with AsyncSession(engine, expire_on_commit=False) as session:
        await seed_anchors(session)
        await session.commit()
        bcc = (await session.scalars(select(m.Organisation).where(m.Organisation.gss_code == "E08000025"))).one()
        editor = Principal(user_id=1, name="bench", role=m.Role.EDITOR, organisation_id=bcc.id)
        for label, sent in (("first upload", data), ("same sheet again", data), ("every value changed", changed)):
            started = time.perf_counter()
            planned = await plan(session, bcc.id, read_rows(read_sheet(sent, "bench.csv")))
            preview = time.perf_counter() - started
            started = time.perf_counter()
            done = await commit(session, bcc.id, planned, editor, "bench.csv")
            await session.commit()
            saved = time.perf_counter() - started
            print(
                f"  {label}: preview {preview:.2f} s, commit {saved:.2f} s "
                f"({done.created} added, {done.updated} changed, {done.unchanged} unchanged, "
                f"{done.new_suppliers} new suppliers)"
            )
    await engine.dispose()


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 10_000
    backends = ["sqlite", "postgresql"]
    for a in sys.argv[1:]:
        if a.startswith("--backends="):
            backends = a.split("=", 1)[1].split(",")
    data = sheet(n)
    print(f"sheet: {n:,} rows, {len(data) / 1e6:.1f} MB CSV")
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            name = None
            if backend == "sqlite":
                url = f"sqlite+aiosqlite:///{tmp}/bench.db"
            else:
                name = f"lv_upload_bench_{os.getpid()}"
                url = asyncio.run(create_pg_database(name))
            try:
                alembic_upgrade(url)
                print(backend)
                asyncio.run(run(url, data, sheet(n, extra_pence=1)))
            finally:
                if name is not None:
                    asyncio.run(drop_pg_database(name))


if __name__ == "__main__":
    main()
