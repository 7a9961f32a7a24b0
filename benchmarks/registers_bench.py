"""Time the Companies House register load and supplier matching.

Run: .venv/bin/python benchmarks/registers_bench.py [rows] [suppliers]
Writes a synthetic BasicCompanyData CSV (the real header, leading spaces included; 5,000,000 rows by default,
~500 bytes a row like the real product) as a multi-part zip set, loads it with importers.registers.load_register
in a fresh subprocess (wall seconds and peak RSS from the child's rusage), then builds a RegisterIndex and
matches 200,000 suppliers: 50% exact names (some lower case, with "Ltd"), 20% with a typo and a postcode,
10% by company number, 20% unknown names. Prints rows/s, peak MB and suppliers/s. One company in seven has a
previous name (as in the real product, where most have none).

On a 2-core machine (2026-12-06, load average 5 from other work): load 74.9 s, peak 722 MB; index build 10.0 s;
200,000 suppliers matched at 47,420/s; index build + matching peak RSS 1,195 MB.
"""

import random
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import polars as pl

from importers.registers import scan_register
from socialvalue.matching import RegisterIndex, SupplierQuery
from tests.support.paths import FIXTURES_DIR

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 5_000_000
SUPPLIERS = int(sys.argv[2]) if len(sys.argv) > 2 else 200_000
PARTS = 7
VERSION = "2025-11-01"
HEADER = (FIXTURES_DIR / "registers" / "ch_basiccompanydata_header_plus_1_real_row.csv").read_text().splitlines()
WORDS = [
    "acme",
    "bright",
    "northern",
    "southern",
    "west",
    "midlands",
    "city",
    "care",
    "home",
    "health",
    "digital",
    "solutions",
    "services",
    "building",
    "maintenance",
    "consulting",
    "engineering",
    "logistics",
    "catering",
    "cleaning",
    "security",
    "training",
    "recruitment",
    "property",
    "design",
    "print",
    "media",
    "energy",
    "green",
    "community",
    "transport",
    "taxis",
    "medical",
    "supplies",
    "technology",
    "systems",
    "partners",
    "associates",
    "group",
    "holdings",
    "trading",
    "construction",
    "electrical",
    "plumbing",
    "roofing",
    "landscapes",
    "kitchens",
    "foods",
]
LOAD = (
    "import sys, time, resource; from pathlib import Path; from importers.registers import load_register; "
    "t = time.perf_counter(); s = load_register('companies_house', sorted(Path(sys.argv[1]).glob('*.zip')), "
    "sys.argv[2]); print(time.perf_counter() - t, s.rows, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
)


def company_name(i: int, rng: random.Random) -> str:
    return f"{' '.join(rng.sample(WORDS, 2)).upper()} {i:X} LIMITED"


def write_register(directory: Path) -> None:
    rng = random.Random(2026)
    real = HEADER[1].split('","')
    per_part = -(-ROWS // PARTS)
    for part in range(PARTS):
        name = f"BasicCompanyData-{VERSION}-part{part + 1}_{PARTS}"
        with (
            zipfile.ZipFile(directory / f"{name}.zip", "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
            archive.open(f"{name}.csv", "w") as raw,
        ):
            raw.write((HEADER[0] + "\n").encode())
            lines = []
            for i in range(part * per_part, min(ROWS, (part + 1) * per_part)):
                fields = list(real)
                fields[0] = '"' + company_name(i, rng)
                fields[1] = f"{i + 1:08d}"
                fields[9] = f"B{i % 99 + 1} {i % 9}AB"
                fields[11] = "Dissolved" if i % 50 == 0 else "Active"
                fields[13] = "01/01/2020" if i % 50 == 0 else ""
                # About one company in seven has changed its name (the real row's previous name is kept on those).
                fields[34] = company_name(i + ROWS, rng) if i % 7 == 0 else ""
                fields[33] = fields[33] if i % 7 == 0 else ""
                lines.append('","'.join(fields))
                if len(lines) == 20_000:
                    raw.write(("\n".join(lines) + "\n").encode())
                    lines = []
            if lines:
                raw.write(("\n".join(lines) + "\n").encode())


def suppliers(frame: pl.DataFrame) -> list[SupplierQuery]:
    rng = random.Random(7)
    sample = (
        frame.select("number", "name", pl.col("postcode").cast(pl.String))
        .sample(SUPPLIERS, seed=7, with_replacement=True)
        .rows()
    )
    out = []
    for number, name, postcode in sample:
        roll = rng.random()
        if roll < 0.5:
            out.append(SupplierQuery(name.title().replace("Limited", "Ltd") if roll < 0.25 else name))
        elif roll < 0.7:
            i = rng.randrange(len(name) - 8)
            out.append(SupplierQuery(name[:i] + name[i + 1 :], postcode))
        elif roll < 0.8:
            out.append(SupplierQuery(name, None, (("GB-COH", number),)))
        else:
            out.append(SupplierQuery(f"{rng.choice(WORDS)} {rng.choice(WORDS)} {rng.randrange(10**6)} Ltd"))
    return out


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="registers-bench-") as tmp:
        work = Path(tmp)
        (work / "in").mkdir()
        t = time.perf_counter()
        write_register(work / "in")
        size = sum(p.stat().st_size for p in (work / "in").glob("*.zip"))
        print(
            f"synthetic BasicCompanyData: {ROWS:,} rows in {PARTS} zips ({size / 1e6:,.0f} MB zipped), "
            f"written in {time.perf_counter() - t:.1f} s"
        )
        out = subprocess.run(
            [sys.executable, "-c", LOAD, str(work / "in"), str(work / "store")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        seconds, rows, peak_kb = float(out[0]), int(out[1]), int(out[2])
        print(
            f"load: {rows:,} rows in {seconds:.1f} s ({rows / seconds:,.0f} rows/s), peak RSS {peak_kb / 1024:,.0f} MB"
            f"  [targets: <= 90 s, < 1,536 MB]"
        )
        t = time.perf_counter()
        scan, manifest = scan_register(work / "store", "companies_house")
        index = RegisterIndex({"companies_house": (scan, manifest.version)})
        built = time.perf_counter() - t
        print(
            f"index build: {len(index):,} entries in {built:.1f} s ({index.entries.estimated_size() / 1e6:,.0f} MB "
            f"of entries, {index.tokens.height:,} blocking postings)"
        )
        queries = suppliers(index.entries)
        t = time.perf_counter()
        results = index.match(queries)
        elapsed = time.perf_counter() - t
        counts: dict[str, int] = {}
        for r in results:
            counts[r.status] = counts.get(r.status, 0) + 1
        print(
            f"match: {len(queries):,} suppliers in {elapsed:.1f} s ({len(queries) / elapsed:,.0f} suppliers/s) "
            f"{counts}  [target: >= 20,000/s]"
        )
        print(
            f"index build + matching: peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB"
            f"  [target: < 1,536 MB]"
        )


if __name__ == "__main__":
    main()
