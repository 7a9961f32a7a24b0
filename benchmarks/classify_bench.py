"""Time supplier classification: geography table load, locate_many, locality tiers (and enterprise, if present).

Run: .venv/bin/python benchmarks/classify_bench.py [suppliers]
Synthesises suppliers from real postcodes sampled from the shipped unit table: most clean, some messy
(lower case, no space, glued damaged line breaks as in Contracts Finder), some partial (sector,
district), some special or junk. Prints cold-load seconds (fresh subprocess) and warm suppliers/s.
"""

import importlib.util
import random
import subprocess
import sys
import time

import polars as pl

from socialvalue.geography import DATA_DIR, Place, load_tables, locate_many
from socialvalue.locality import local_area, tier_for

N = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
COLD_LOAD = (
    "import time; t = time.perf_counter(); "
    "from socialvalue.geography import load_tables; load_tables(); "
    "print(time.perf_counter() - t)"
)


def synthesise(n: int) -> list[str]:
    rng = random.Random(2026)
    postcodes = pl.read_parquet(DATA_DIR / "units.parquet", columns=["postcode"])["postcode"]
    sample = postcodes.sample(n, with_replacement=True, seed=2026).to_list()
    out = []
    for postcode in sample:
        roll = rng.random()
        if roll < 0.70:
            out.append(postcode)
        elif roll < 0.78:
            out.append(postcode.lower().replace(" ", ""))
        elif roll < 0.86:
            out.append(f"Unit {rng.randint(1, 99)}rnSome Roadrn{postcode}rnUnited Kingdom")
        elif roll < 0.92:
            out.append(postcode[:-2])  # sector
        elif roll < 0.96:
            out.append(postcode.split(" ")[0])  # district
        else:
            out.append(rng.choice(["BFPO 57", "ZZ99 3VZ", "BT1 1AA", "JE2 3AB", "N/A", "Denmark", ""]))
    return out


def main() -> None:
    runs = [float(subprocess.check_output([sys.executable, "-c", COLD_LOAD], text=True)) for _ in range(3)]
    print(f"cold table load (fresh process, 3 runs): {', '.join(f'{r:.3f}' for r in runs)} s (target < 2 s)")

    suppliers = synthesise(N)
    load_tables()
    area = local_area("icb", icb_code="QHL")
    locate_many(suppliers[:1000])  # warm polars

    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        frame = locate_many(suppliers)
        located = time.perf_counter() - start
        tiers = [tier_for(Place(**row), area).tier for row in frame.iter_rows(named=True)]
        elapsed = time.perf_counter() - start
        best = min(best, elapsed)
    print(f"locate_many: {N / located:,.0f} suppliers/s ({located:.2f} s for {N:,})")
    print(f"locate_many + tier_for: {N / best:,.0f} suppliers/s ({best:.2f} s for {N:,}; target >= 50,000/s)")
    print("methods:", dict(frame["method"].value_counts().iter_rows()))
    print("tiers:", dict(pl.Series(tiers).value_counts().iter_rows()))

    if importlib.util.find_spec("socialvalue.enterprise") is None:
        print("NOTE: socialvalue.enterprise not present - only locality was measured.")
        return
    from socialvalue.enterprise import SupplierFacts, classify_enterprise

    names = ["Acme Ltd", "Hope Community Interest Company", "St Mary's Charity", "Smith & Sons LLP", "Fixit CIC"]
    facts = [
        SupplierFacts(name=names[i % len(names)], declared_scale=("sme", "large", None)[i % 3]) for i in range(N)
    ]
    start = time.perf_counter()
    frame = locate_many(suppliers)
    for row, fact in zip(frame.iter_rows(named=True), facts, strict=True):
        tier_for(Place(**row), area)
        classify_enterprise(fact)
    elapsed = time.perf_counter() - start
    print(f"locate_many + tier_for + classify_enterprise: {N / elapsed:,.0f} suppliers/s ({elapsed:.2f} s)")


if __name__ == "__main__":
    main()
