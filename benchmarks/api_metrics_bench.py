"""GET /metrics through the running app (uvicorn, one worker, httpx) beside the pure engine on the same lines.

Run from the repository root (PostgreSQL at 127.0.0.1:5432, user postgres, as for the tests):
    .venv/bin/python -m benchmarks.api_metrics_bench [--lines 1000000] [--backend sqlite|postgresql|both]
        [--basis contract|paid|both]

For each database it builds N contract-supplier lines (two per contract) across 50 anchors (local authorities,
each with its own district as its area) and 12 quarters, real-shaped: suppliers classified at real districts
(some in the anchor's own, some in its region, some elsewhere in the UK, a few unknown), SME / VCSE / social
enterprise flags with unknowns, a first CPV code per contract, a few withdrawn and foreign-currency lines. The
rows go in by bulk SQL (COPY on PostgreSQL, executemany on SQLite). Beside them go N payment lines across the same
anchors and quarters, as a spend import per anchor and month leaves them (``benchmarks.paid_world``: NHS-like and
council-like files, payees matched to the same suppliers, redacted, waiting for review, rejected, or public bodies
that the influenceable view leaves out). The tiers are then built as the service builds them (``refresh_tiers``),
for contract and payment pairs alike. It then times, for each basis (contract lines: ``GET /metrics``, awarded and
spread; payment lines: ``GET /metrics?basis=paid``, printed in a table of their own), for one anchor-quarter, one
anchor-year, a group of ten anchors and all anchors:

* cold: a new server process and a new data version (neither the answer cache nor the engine's memo, both in the
  process, can help; the server has first answered the same question on the other basis's lines, as a server in
  service has answered others, so the time is not a new process's first large computation) that leaves the lines
  and stored tiers alone (as a commitment, a return or a restarted
  server does), so the copy on disk of the engine's lines, the lines with their stored tiers (paid basis: the
  payment lines with theirs), is read (``procurement.metrics.linecache``), median and best of 5;
* cold after a tiers change: the same, but the new data version is one stored tier rewritten by SQL (as a
  classification, override, local-area change or rename moves the tiers), so the request reads its tiers from
  the database (and the server writes their new copy in the background), median of 3;
* cold after a lines change: the same, but the new data version is one line's value changed by SQL, so the
  request reads its lines from the database (and the server writes their new copy in the background), median
  of 3 (paid basis: one payment line's amount, so the payment lines are read from the database);
* warm: the same request again, p50 of 20;
* engine: ``compute_metrics`` alone on the same lines, loaded beforehand, run as /metrics runs it (awarded and
  spread side by side in two threads, as /metrics computes them by default; paid on the payment lines), median
  and best of 5, each round taken just before a cold answer's server starts (``_EngineTimer``: the machine's
  speed drifts over the minutes a scope takes, and the ratio should compare the two on the same machine);

and prints each with the ratios. Targets: cold within 1.5x the engine, median against median (each is also
printed best against best: a best engine time against a median answer would count the machine's noise as the
service's); warm p50 under 20 ms (cold after a tiers or a lines change is printed beside them, median of 3 against
the engine's median, with no target of its own). The payment lines cost about as long again to
build as the contract lines, and each basis about as long to time (at 1,000,000 lines on SQLite, minutes each).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, cast

import httpx
import polars as pl
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from benchmarks import paid_world
from benchmarks.metrics_bench import synthesise
from procurement import models as m
from procurement.db import make_engine
from procurement.metrics import linecache
from procurement.metrics.lines import Scope, lines_frame, lines_with_details
from procurement.metrics.paid import payment_lines_with_details
from procurement.settings import get_settings
from procurement.suppliers.tiers import refresh_tiers
from socialvalue import geography
from socialvalue.metrics import INPUT_SCHEMA, Basis, compute_metrics
from tests.conftest import alembic_upgrade, create_pg_database, drop_pg_database
from tests.support.api import make_token

ANCHORS = 50
GROUP = 10
COLD_ROUNDS = 5
CHANGE_ROUNDS = 3
WARM_ROUNDS = 20
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _world(lines: int) -> dict[str, pl.DataFrame]:
    """Organisations, suppliers with their classification, contracts, lines and CPV codes as frames."""
    lads = geography.lad_reference().filter(pl.col("country_code") == "E92000001").sort("lad_code")
    step = max(1, lads.height // ANCHORS)
    anchor_lads = lads[::step].head(ANCHORS)
    anchors = pl.DataFrame(
        {
            "id": pl.int_range(1, ANCHORS + 1, eager=True),
            "lad_code": anchor_lads["lad_code"],
            "name": [f"Council of {n}" for n in anchor_lads["lad_name"]],
        }
    )
    synthetic = synthesise(lines, "zipf").with_columns(pl.col("anchor_id").cast(pl.Int64))
    n_suppliers = int(cast(int, synthetic["supplier_id"].max()) or 1)
    supplier_ids = pl.int_range(1, n_suppliers + 1, eager=True)

    def pick(seed: int, modulo: int) -> pl.Expr:
        return (pl.col("id").hash(seed) % modulo).cast(pl.Int64)

    # Where suppliers are: 30 % in one of the anchors' districts, 60 % anywhere in the UK, 10 % not known.
    every_lad = geography.lad_reference().filter(pl.col("region_code").is_not_null())
    suppliers = (
        pl.DataFrame({"id": supplier_ids})
        .with_columns(
            kind=pick(1, 10),
            anchor_lad=pl.lit(anchor_lads["lad_code"]).gather(pick(2, ANCHORS)),
            any_lad=pl.lit(every_lad["lad_code"]).gather(pick(3, every_lad.height)),
        )
        .with_columns(
            lad_code=pl.when(pl.col("kind") < 3)
            .then(pl.col("anchor_lad"))
            .when(pl.col("kind") < 9)
            .then(pl.col("any_lad"))
            .otherwise(None),
            name=pl.format("Supplier {} Ltd", pl.col("id")),
        )
        .join(
            geography.lad_reference().select("lad_code", "region_code", "country_code"),
            on="lad_code",
            how="left",
        )
        .with_columns(
            category=pl.lit(pl.Series(["sme", "sme", "large", "charity", "cic", "unknown"])).gather(pick(4, 6)),
            sme=pl.when(pick(5, 5) == 0).then(None).otherwise(pick(6, 2) == 0),
            vcse=pl.when(pick(7, 5) == 0).then(None).otherwise(pick(8, 4) == 0),
            social_enterprise=pl.when(pick(9, 3) == 0).then(None).otherwise(pick(10, 6) == 0),
        )
    )
    suppliers = pl.concat([suppliers, paid_world.public_suppliers(n_suppliers)], how="diagonal_relaxed")
    # Contract-level facts come from each contract's first line.
    contracts = (
        synthetic.group_by("contract_id", maintain_order=True)
        .first()
        .select(
            pl.col("contract_id").alias("id"),
            pl.col("anchor_id").alias("buyer_id"),
            "currency",
            "award_date",
            "start_date",
            "end_date",
            "status",
            "cpv_code",
            (pl.col("value_pence") * 2).alias("value_pence"),
        )
    )
    line_rows = synthetic.select(
        pl.col("line_id").alias("id"),
        "contract_id",
        "supplier_id",
        pl.col("value_pence").alias("share_pence"),
        pl.col("line_id").mod(2).alias("position"),
    ).unique(["contract_id", "supplier_id"], keep="first", maintain_order=True)
    return {"anchors": anchors, "suppliers": suppliers, "contracts": contracts, "lines": line_rows}


def _evidence_json() -> str:
    return '[{"flag": "place", "value": "bench", "method": "unit", "source": "benchmark", "overruled": false}]'


def _rows(world: dict[str, pl.DataFrame]) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    s, c, ln = world["suppliers"], world["contracts"], world["lines"]
    suppliers = [(i, n, n.lower(), NOW, NOW) for i, n in zip(s["id"], s["name"], strict=True)]
    classification = [
        (
            r["id"],
            r["id"],
            None if r["lad_code"] is None else "B1 1AA",
            "unit" if r["lad_code"] is not None else "no_postcode",
            None if r["lad_code"] is None else 1.0,
            r["lad_code"],
            r["region_code"],
            r["country_code"],
            r["category"],
            r["sme"],
            r["vcse"],
            r["social_enterprise"],
            _evidence_json(),
            "{}",
            "bench",
            NOW,
        )
        for r in s.iter_rows(named=True)
    ]
    contracts = [
        (r["id"], "bench", str(r["id"]), r["buyer_id"], f"Contract {r['id']}", r["value_pence"], r["currency"],
         r["award_date"], r["start_date"], r["end_date"], r["status"], NOW, NOW)
        for r in c.iter_rows(named=True)
    ]  # fmt: skip
    cpv = [(r["id"], r["id"], r["cpv_code"], 0) for r in c.iter_rows(named=True) if r["cpv_code"] is not None]
    lines = [
        (r["id"], r["contract_id"], r["supplier_id"], r["share_pence"], "stated", r["position"])
        for r in ln.iter_rows(named=True)
    ]
    return {
        "supplier": (["id", "name", "name_key", "created_at", "updated_at"], suppliers),
        "supplier_classification": (
            [
                "id",
                "supplier_id",
                "postcode_used",
                "place_method",
                "place_confidence",
                "lad_code",
                "region_code",
                "country_code",
                "category",
                "sme",
                "vcse",
                "social_enterprise",
                "evidence",
                "rule_versions",
                "input_hash",
                "classified_at",
            ],
            classification,
        ),
        "contract": (
            [
                "id",
                "source",
                "source_id",
                "buyer_id",
                "title",
                "value_pence",
                "currency",
                "award_date",
                "start_date",
                "end_date",
                "status",
                "created_at",
                "updated_at",
            ],
            contracts,
        ),
        "contract_cpv": (["id", "contract_id", "code", "position"], cpv),
        "contract_supplier": (["id", "contract_id", "supplier_id", "share_pence", "share_basis", "position"], lines),
    }


async def _organisations(engine: AsyncEngine, anchors: pl.DataFrame) -> None:
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        for r in anchors.iter_rows(named=True):
            session.add(
                m.Organisation(
                    id=r["id"], name=r["name"], name_key=r["name"].lower(), kind="local_authority",
                    lad_code=r["lad_code"], is_anchor=True,
                )
            )  # fmt: skip
        group = m.AnchorGroup(slug="bench-group", name="Benchmark group")
        session.add(group)
        await session.flush()
        for i in range(1, GROUP + 1):
            session.add(m.AnchorGroupMember(group_id=group.id, organisation_id=i))
        await session.commit()


def _load_sqlite(path: str, rows: dict[str, tuple[list[str], list[tuple[Any, ...]]]]) -> None:
    conn = sqlite3.connect(path)
    with conn:
        for table, (columns, values) in rows.items():
            marks = ", ".join("?" for _ in columns)
            adapted = [
                tuple(
                    v.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, dt.datetime)
                    else v.isoformat() if isinstance(v, dt.date) else v
                    for v in row
                )
                for row in values
            ]  # fmt: skip
            conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", adapted)
    conn.close()


async def _load_postgresql(engine: AsyncEngine, rows: dict[str, tuple[list[str], list[tuple[Any, ...]]]]) -> None:
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        for table, (columns, values) in rows.items():
            await driver.copy_records_to_table(table, records=values, columns=columns)
        for table in rows:
            await driver.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
            )
        await driver.execute("ANALYZE")


async def _build(
    backend: str, url: str, world: dict[str, pl.DataFrame], payments: dict[str, paid_world.Rows], path: str | None
) -> float:
    start = time.perf_counter()
    await asyncio.to_thread(alembic_upgrade, url)
    engine = make_engine(url)
    await _organisations(engine, world["anchors"])
    rows = _rows(world) | payments
    if backend == "sqlite":
        assert path is not None
        await asyncio.to_thread(_load_sqlite, path, rows)
    else:
        await _load_postgresql(engine, rows)
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        await refresh_tiers(session, classify_first=False)
        await session.commit()
    await engine.dispose()
    return time.perf_counter() - start


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(url: str, port: int, cache_dir: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
           "LOCALVALUE_CACHE_DIR": cache_dir}  # fmt: skip
    command = [sys.executable, "-m", "uvicorn", "procurement.app:create_app", "--factory", "--port", str(port)]
    return subprocess.Popen([*command, "--log-level", "warning"], env=env)


class _EngineTimer:
    """The pure engine alone on one scope's lines, loaded beforehand, run as /metrics runs it (awarded and spread side
    by side in two threads, as /metrics computes them by default; paid on the payment lines), a round at a time.

    Its rounds are taken between the cold answers they are compared with, each just before its answer's server
    starts: a shared machine's speed drifts by a fifth and more over the minutes a scope's cold answers take, so an
    engine timed before all of them would be set against answers given on a faster or slower machine.
    """

    def __init__(self, inputs: pl.DataFrame, scope: Scope, period: str | None, *, paid: bool) -> None:
        self._inputs = inputs
        self._scope = scope
        self._kind: Literal["year", "quarter"] = "year" if period and "/" in period else "quarter"
        self._bases: tuple[Basis, ...] = ("paid",) if paid else ("awarded", "spread")
        self._pool = ThreadPoolExecutor(len(self._bases))
        self.times: list[float] = []
        self._one_round()  # untimed: the first run in a process pays for its first use of the code and memory

    @classmethod
    async def load(cls, url: str, scope: Scope, period: str | None, *, paid: bool) -> _EngineTimer:
        engine = make_engine(url)
        async with async_sessionmaker(engine, expire_on_commit=False)() as session:
            if paid:
                lines = await payment_lines_with_details(session, scope.anchor_ids)
            else:
                lines = await lines_with_details(session, scope.anchor_ids)
        await engine.dispose()
        return cls(lines.select(list(INPUT_SCHEMA)), scope, period, paid=paid)

    def _one(self, basis: Basis) -> None:
        # The pure engine itself: metrics_for_lines would answer repeats from its content memo.
        compute_metrics(
            self._inputs, basis=basis, scopes={self._scope.key: self._scope.anchor_ids}, periods=self._kind, top_n=20
        )

    def _one_round(self) -> float:
        t0 = time.perf_counter()
        list(self._pool.map(self._one, self._bases))  # side by side, as /metrics runs the bases it is asked for
        return time.perf_counter() - t0

    def time_round(self) -> None:
        self.times.append(self._one_round())

    def close(self) -> tuple[float, float]:
        """(median, best) of the rounds timed."""
        self._pool.shutdown()
        return statistics.median(self.times), min(self.times)


async def _bump(url: str, *, change: str | None = None) -> None:
    """A new data version; with ``change``, made by a real change: to the lines ("line": one share a penny more;
    "payment": one payment a penny more) or to the stored tiers ("tier": one tier rewritten as it is, which moves
    their token all the same)."""
    engine = make_engine(url)
    async with engine.begin() as conn:
        if change == "payment":
            await conn.execute(
                text("UPDATE payment_line SET amount_pence = amount_pence + 1 WHERE id = "
                     "(SELECT min(id) FROM payment_line WHERE anchor_id = 1 AND amount_pence IS NOT NULL)")
            )  # fmt: skip
        elif change == "line":
            await conn.execute(
                text("UPDATE contract_supplier SET share_pence = share_pence + 1 WHERE id = (SELECT min(cs.id) "
                     "FROM contract_supplier cs JOIN contract c ON c.id = cs.contract_id WHERE c.buyer_id = 1)")
            )  # fmt: skip
        elif change == "tier":
            await conn.execute(
                text("UPDATE anchor_supplier_tier SET tier = tier WHERE id = "
                     "(SELECT min(id) FROM anchor_supplier_tier WHERE anchor_id = 1)")
            )  # fmt: skip
        await conn.execute(update(m.DataVersion).where(m.DataVersion.id == 1).values(version=m.DataVersion.version + 1))
    await engine.dispose()


async def _copy_lines(url: str, cache_dir: str) -> None:
    """The copies of the lines, payment lines and stored tiers on disk for them as they are, written here if the
    servers have not written them (a server stopped while writing one in the background leaves none)."""
    os.environ["LOCALVALUE_CACHE_DIR"] = cache_dir
    get_settings.cache_clear()
    engine = make_engine(url)
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        await lines_frame(session, [1])
        await payment_lines_with_details(session, [1], detailed=False)
        await linecache.written()
    await engine.dispose()


async def _measure(backend: str, url: str, counts: dict[str, int], cache_dir: str) -> None:
    """Times each basis (``counts``: "contract" and/or "paid", with its number of lines) for every scope."""
    engine = make_engine(url)
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        token = await make_token(session, "admin", name=f"bench-{uuid.uuid4().hex[:8]}")
        await session.commit()
        ids = tuple(sorted((await session.scalars(select(m.Organisation.id))).all()))
    await engine.dispose()
    scopes = {
        "one anchor, 2024Q2": (Scope("org:1", "anchor", "", (1,), 1, None), "2024Q2", "anchor_id=1&period=2024Q2"),
        "one anchor, 2024/25": (Scope("org:1", "anchor", "", (1,), 1, None), "2024/25", "anchor_id=1&period=2024/25"),
        f"group of {GROUP}, 2024Q2": (
            Scope("group:bench-group", "group", "", tuple(range(1, GROUP + 1)), None, 1),
            "2024Q2",
            "group=bench-group&period=2024Q2",
        ),
        f"all {len(ids)} anchors, 2024Q2": (Scope("all", "all", "", ids, None, None), "2024Q2", "period=2024Q2"),
    }
    headers = {"Authorization": f"Bearer {token}"}
    for basis, lines in counts.items():
        paid = basis == "paid"
        if paid:
            print(
                f"\n{backend}, paid basis (GET /metrics?basis=paid; engine: basis paid): {lines:,} payment lines, "
                f"{len(ids)} anchors (uvicorn, one worker; machine shared)"
            )
        else:
            print(f"\n{backend}: {lines:,} lines, {len(ids)} anchors (uvicorn, one worker; machine shared)")
        print(
            f"{'request':26} {'engine s':>9} {'best':>6} {'cold s':>7} {'best':>6} {'cold/eng':>9} {'best/best':>10} "
            f"{'tiers chg s':>12} {'chg/eng':>8} {'lines chg s':>12} {'chg/eng':>8} {'warm p50 ms':>12}  targets"
        )
        basis_query = "&basis=paid" if paid else ""
        for label, (scope, period, question) in scopes.items():
            query = question + basis_query
            engine_timer = await _EngineTimer.load(url, scope, period, paid=paid)
            # Cold: a fresh server each round, so neither the answer cache nor the engine's content memo (both in
            # the process) can answer. It first answers another anchor's question on the same basis (its code's
            # first-use costs), then the same question on the other lines (the paid basis for contract lines, the
            # contract bases for payment lines): as large a computation, on lines whose copy, memo and answer
            # cannot serve the one timed, so the timed answer is not a new process's first large one (whose memory
            # the engine, timed in a process that has run it, has already touched).
            warm_ups = [
                f"/metrics?anchor_id=2&period=2023Q1{basis_query}",
                f"/metrics?{question}{'' if paid else '&basis=paid'}",
            ]
            line_change = "payment" if paid else "line"
            cold: dict[str | None, list[float]] = {None: [], "tier": [], line_change: []}
            for change, times in cold.items():
                await _copy_lines(url, cache_dir)
                for _ in range(COLD_ROUNDS if change is None else CHANGE_ROUNDS):
                    if change is None:
                        engine_timer.time_round()
                    async with _served(url, headers, cache_dir) as client:
                        for warm_up in warm_ups:
                            assert (await client.get(warm_up)).status_code == 200
                        await _bump(url, change=change)
                        t0 = time.perf_counter()
                        r = await client.get(f"/metrics?{query}")
                        times.append(time.perf_counter() - t0)
                        assert r.status_code == 200, r.text[:300]
            async with _served(url, headers, cache_dir) as client:
                await client.get(f"/metrics?{query}")
                warm = []
                for _ in range(WARM_ROUNDS):
                    t0 = time.perf_counter()
                    r = await client.get(f"/metrics?{query}")
                    warm.append((time.perf_counter() - t0) * 1000)
                    assert r.status_code == 200
            (e, e_best), w = engine_timer.close(), statistics.median(warm)
            c, c_best = statistics.median(cold[None]), min(cold[None])
            tiers, lines_ = statistics.median(cold["tier"]), statistics.median(cold[line_change])
            ok = ("cold ok" if c <= 1.5 * e else "cold MISSED") + (", warm ok" if w < 20 else ", warm MISSED")
            print(
                f"{label:26} {e:9.3f} {e_best:6.3f} {c:7.3f} {c_best:6.3f} {c / e:8.2f}x {c_best / e_best:9.2f}x "
                f"{tiers:12.3f} {tiers / e:7.2f}x {lines_:12.3f} {lines_ / e:7.2f}x {w:12.1f}  {ok}"
            )


@contextlib.asynccontextmanager
async def _served(url: str, headers: dict[str, str], cache_dir: str) -> AsyncIterator[httpx.AsyncClient]:
    """A new `localvalue`-app server on a free port, and a client for it, until the block ends."""
    port = _free_port()
    server = _serve(url, port, cache_dir)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=600) as client:
            for _ in range(300):
                try:
                    if (await client.get("/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            yield client
    finally:
        server.terminate()
        server.wait(timeout=30)


async def run(lines: int, backends: list[str], bases: list[str]) -> None:
    world = _world(lines)
    print(
        f"world: {world['lines'].height:,} lines, {world['contracts'].height:,} contracts, "
        f"{world['suppliers'].height:,} suppliers, {ANCHORS} anchors"
    )
    t0 = time.perf_counter()
    contract_suppliers = world["suppliers"].height - len(paid_world.PUBLIC_BODIES)
    payments = paid_world.payments(lines, ANCHORS, contract_suppliers, NOW)
    files = payments["spend_file"][1]
    print(
        f"payments: {len(payments['payment_line'][1]):,} payment lines in {len(files):,} spend files "
        f"({sum(f[5] == 'replaced' for f in files)} replaced), {len(payments['payee_match'][1]):,} payees, "
        f"made in {time.perf_counter() - t0:.1f} s"
    )
    counts = {"contract": world["lines"].height, "paid": lines}
    for backend in backends:
        with tempfile.TemporaryDirectory() as tmp:
            if backend == "sqlite":
                path = str(Path(tmp) / "bench.db")
                url, name = f"sqlite+aiosqlite:///{path}", None
            else:
                name = f"bench_metrics_{uuid.uuid4().hex[:8]}"
                url, path = await create_pg_database(name), None
            try:
                built = await _build(backend, url, world, payments, path)
                print(f"{backend}: built and tiers stored in {built:.1f} s")
                await _measure(backend, url, {b: counts[b] for b in bases}, str(Path(tmp) / "cache"))
            finally:
                if name is not None:
                    await drop_pg_database(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--basis", choices=["contract", "paid", "both"], default="both", help="which lines to time")
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    bases = ["contract", "paid"] if args.basis == "both" else [args.basis]
    asyncio.run(run(args.lines, backends, bases))


if __name__ == "__main__":
    main()
