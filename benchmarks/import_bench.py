"""Import throughput: a synthetic corpus of real-shaped releases into SQLite and PostgreSQL.

Run: .venv/bin/python benchmarks/import_bench.py [releases] [--backends=sqlite,postgresql] [--rounds=3]

The corpus is built from the 280 real Contracts Finder releases (tests/paths.FEEDS_DIR): copy k of each
release gets new ocid, release id and award values (the amount times a small factor), and every fifth
copy gets new supplier names, so suppliers are matched by identifier, by name and created new in a
realistic mix. It is written as one JSON array file and imported with `procurement.imports.runs.run_file_import`
(the same code as `localvalue import file`, which reads a file this large in a child process, one batch
ahead of the database writes). Printed per backend: releases per second, the peak resident memory of a
separate process that did only the import and that of its reader process, the CPU time of each (and, for a local
PostgreSQL, of the server backends that did the import's database work); beside them the time of a bare
`json.load` of the same file (the floor: the time to parse the file in one process). Each backend imports the
file once per round (into a new database each time), the order turned round every other round; then each backend's
median rate is printed, against the targets (both at least 5,000 releases/s, PostgreSQL at least SQLite): on a
shared machine one import can run a fifth slower than the next for no reason of its own.
PostgreSQL is taken from TEST_POSTGRES_URL (default postgres@127.0.0.1:5432).
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.paths import FEEDS_DIR  # noqa: E402

SAMPLES = (
    FEEDS_DIR / "contracts-finder" / "releases-2025-01-23_2025-03-11.json",
    FEEDS_DIR / "contracts-finder" / "ocds-search-page-2022-10-20.json",
)


def real_releases() -> list[dict[str, Any]]:
    releases: list[dict[str, Any]] = []
    for path in SAMPLES:
        data = json.loads(path.read_bytes(), parse_float=Decimal)
        releases.extend(data["releases"] if isinstance(data, dict) else data)
    return releases


def _scale_amounts(value: Any, factor: int) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "amount" and isinstance(item, int | Decimal) and not isinstance(item, bool):
                value[key] = item * factor
            else:
                _scale_amounts(item, factor)
    elif isinstance(value, list):
        for item in value:
            _scale_amounts(item, factor)


def synthesise(n: int, path: Path) -> None:
    base = real_releases()
    with path.open("w", encoding="utf-8") as out:
        out.write("[")
        for i in range(n):
            copy_no, index = divmod(i, len(base))
            release = copy.deepcopy(base[index])
            release["ocid"] = f"{release['ocid']}-syn{copy_no}"
            release["id"] = f"{release['id']}-syn{copy_no}"
            _scale_amounts(release, copy_no % 7 + 1)
            if copy_no % 5 == 4:
                for party in release.get("parties", []):
                    if "supplier" in party.get("roles", []) and party.get("name"):
                        party["name"] = f"{party['name']} {copy_no}"
            out.write(("," if i else "") + json.dumps(release, default=str))
        out.write("]")


def import_once(database_url: str, path: Path) -> None:
    """Runs in a child process so its peak RSS is the import's alone."""
    from procurement.db import make_engine
    from procurement.imports.runs import run_file_import
    from procurement.imports.service import CONTRACTS_FINDER
    from tests.conftest import alembic_upgrade

    alembic_upgrade(database_url)

    async def go() -> None:
        engine = make_engine(database_url)
        started = time.perf_counter()
        result = await run_file_import(engine, CONTRACTS_FINDER, [path])
        elapsed = time.perf_counter() - started
        server_cpu = await _server_cpu(engine)
        await engine.dispose()
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        # Files this size are read and compiled in a child process (importers.prepare); its peak counts too.
        reader = resource.getrusage(resource.RUSAGE_CHILDREN)
        own = resource.getrusage(resource.RUSAGE_SELF)
        print(
            json.dumps(
                {
                    "elapsed": elapsed,
                    "peak_mb": peak_mb,
                    "reader_peak_mb": reader.ru_maxrss / 1024,
                    "reader_cpu": reader.ru_utime + reader.ru_stime,
                    "cpu": own.ru_utime + own.ru_stime,
                    "server_cpu": server_cpu,
                    "summary": result.counts.summary(),
                }
            )
        )

    asyncio.run(go())


async def _server_cpu(engine: Any) -> float | None:
    """CPU seconds of the PostgreSQL backends that served this import (its pool's connections, opened for it), when
    the server runs on this machine and /proc shows them; None otherwise (and always for SQLite, which runs inside
    the import's own process)."""
    from sqlalchemy import text

    if engine.dialect.name != "postgresql":
        return None
    async with engine.connect() as connection:
        pids = (
            await connection.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"))
        ).scalars()
        backends = list(pids)
    return _cpu_seconds(backends)


def _cpu_seconds(pids: list[int]) -> float | None:
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def main() -> None:
    if any(a in ("-h", "--help") for a in sys.argv[1:]):
        print(__doc__)
        return
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 100_000
    backends = ["sqlite", "postgresql"]
    rounds = 3
    for a in sys.argv[1:]:
        if a.startswith("--backends="):
            backends = a.split("=", 1)[1].split(",")
        elif a.startswith("--rounds="):
            rounds = int(a.split("=", 1)[1])
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.json"
        started = time.perf_counter()
        synthesise(n, corpus)
        size_mb = corpus.stat().st_size / 1e6
        print(f"corpus: {n} releases, {size_mb:.0f} MB, built in {time.perf_counter() - started:.1f} s")
        # In a child too: Linux keeps a process's peak RSS across fork and exec, so a parent holding the parsed
        # corpus would inflate every child's figure.
        floor_run = subprocess.run(
            [sys.executable, __file__, "--floor", str(corpus)], capture_output=True, text=True, check=True, cwd=REPO
        )
        floor = float(floor_run.stdout.strip())
        print(f"floor: bare json.load of the file {floor:.1f} s = {n / floor:,.0f} releases/s")
        rates: dict[str, list[float]] = {backend: [] for backend in backends}
        for round_ in range(rounds):
            # Every other round in the other order, so that a machine slowing down or speeding up over the run
            # favours neither backend.
            for backend in backends if round_ % 2 == 0 else backends[::-1]:
                rates[backend].append(_import_in_child(backend, Path(tmp), corpus, n, round_))
        _verdict(rates)


def _import_in_child(backend: str, tmp: Path, corpus: Path, n: int, round_: int) -> float:
    if backend == "sqlite":
        path = tmp / f"bench-{round_}.db"
        url = f"sqlite+aiosqlite:///{path}"
        name = None
    else:
        from tests.conftest import create_pg_database

        path = None
        name = f"lv_import_bench_{os.getpid()}_{round_}"
        url = asyncio.run(create_pg_database(name))
    try:
        child = subprocess.run(
            [sys.executable, __file__, "--child", url, str(corpus)],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
        )
        figures = json.loads(child.stdout.strip().splitlines()[-1])
        rate = float(n / figures["elapsed"])
        server = figures.get("server_cpu")
        print(
            f"{backend:<11} {figures['elapsed']:.1f} s = {rate:,.0f} releases/s, "
            f"peak RSS {figures['peak_mb']:.0f} MB + reader process {figures['reader_peak_mb']:.0f} MB; "
            f"CPU {figures['cpu']:.1f} s + reader {figures['reader_cpu']:.1f} s"
            + (f" + database server {server:.1f} s" if server is not None else "")
            + f" ({figures['summary']})"
        )
        return rate
    finally:
        if name is not None:
            from tests.conftest import drop_pg_database

            asyncio.run(drop_pg_database(name))
        if path is not None:
            path.unlink(missing_ok=True)


def _verdict(rates: dict[str, list[float]]) -> None:
    """Each backend's median rate, and the targets: both at least 5,000 releases/s, PostgreSQL at least SQLite."""
    medians = {backend: statistics.median(r) for backend, r in rates.items()}
    print("median: " + ", ".join(f"{backend} {rate:,.0f} releases/s" for backend, rate in medians.items()))
    if set(medians) != {"sqlite", "postgresql"}:
        return
    sqlite, postgresql = rates["sqlite"], rates["postgresql"]
    ahead = sum(p >= s for p, s in zip(postgresql, sqlite, strict=True))
    ratio = medians["postgresql"] / medians["sqlite"]
    fast = all(rate >= 5_000 for rate in medians.values())
    print(
        f"PostgreSQL / SQLite {ratio:.2f} (medians; PostgreSQL ahead in {ahead} of {len(sqlite)} rounds); targets: "
        f"both >= 5,000/s {'ok' if fast else 'MISSED'}, PostgreSQL >= SQLite {'ok' if ratio >= 1 else 'MISSED'}"
    )


def floor_once(path: Path) -> None:
    started = time.perf_counter()
    with path.open("rb") as f:
        json.load(f, parse_float=Decimal)
    print(time.perf_counter() - started)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--floor":
        floor_once(Path(sys.argv[2]))
    elif len(sys.argv) == 4 and sys.argv[1] == "--child":
        import_once(sys.argv[2], Path(sys.argv[3]))
    else:
        main()
