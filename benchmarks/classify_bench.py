"""Time supplier classification: geography table load, locate_many, locality tiers and SME/VCSE classify_enterprise.

Run: .venv/bin/python benchmarks/classify_bench.py [suppliers]
Synthesises suppliers from real postcodes sampled from the shipped unit table: most clean, some messy
(lower case, no space, glued damaged line breaks as in Contracts Finder), some partial (sector,
district), some special or junk. Prints cold-load seconds (fresh subprocess) and warm suppliers/s.
"""

import json
import random
import subprocess
import sys
import time

import polars as pl

from socialvalue.enterprise import SupplierFacts, classify_enterprise
from socialvalue.geography import DATA_DIR, Place, load_tables, locate_many
from socialvalue.locality import local_area, tier_for, tiers_for
from tests.support.paths import FEEDS_DIR

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


def _feed_supplier_names() -> list[str]:
    """Supplier party names from the Contracts Finder / Find a Tender samples (a real mix of legal forms)."""
    names: list[str] = []

    def walk(obj: object) -> None:
        if isinstance(obj, dict):
            for party in obj.get("parties") or []:
                if isinstance(party, dict) and "supplier" in (party.get("roles") or []) and party.get("name"):
                    names.append(str(party["name"]))
            for value in obj.values():
                if isinstance(value, dict | list):
                    walk(value)
        elif isinstance(obj, list):
            for value in obj:
                walk(value)

    for path in sorted(FEEDS_DIR.rglob("*.json")):
        try:
            walk(json.loads(path.read_text()))
        except (ValueError, UnicodeDecodeError):
            continue
    return names


def synthesise_facts(n: int) -> list[SupplierFacts]:
    """Real feed names made distinct (a number in front, so no two suppliers share one and no cache can help),
    a fifth with a register number, and a feed-declared scale."""
    rng = random.Random(2027)
    real = _feed_supplier_names()
    out = []
    for i in range(n):
        name = f"{i} {real[i % len(real)]}"
        roll = rng.random()
        identifiers: tuple[tuple[str, str], ...] = ()
        if roll < 0.15:
            identifiers = (("GB-COH", f"{rng.randint(1, 15_999_999):08d}"),)
        elif roll < 0.18:
            identifiers = (("GB-CHC", str(rng.randint(200_000, 1_200_000))),)
        elif roll < 0.20:
            identifiers = (("GB-COH", f"RS{rng.randint(1, 9999):06d}"),)
        scale = rng.choice(("sme", "large", "micro", None, None))
        out.append(
            SupplierFacts(name=name, identifiers=identifiers, declared_scale=scale, declared_source="Contracts Finder")
        )
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
        tiers = tiers_for(frame, area)
        elapsed = time.perf_counter() - start
        best = min(best, elapsed)
    print(f"locate_many: {N / located:,.0f} suppliers/s ({located:.2f} s for {N:,})")
    print(f"locate_many + tiers_for: {N / best:,.0f} suppliers/s ({best:.2f} s for {N:,}; target >= 50,000/s)")
    print("methods:", dict(frame["method"].value_counts().iter_rows()))
    print("tiers:", dict(tiers["tier"].value_counts().iter_rows()))

    start = time.perf_counter()
    slow = [tier_for(Place(**row), area).tier for row in locate_many(suppliers).iter_rows(named=True)]
    elapsed = time.perf_counter() - start
    assert slow == tiers["tier"].to_list()
    print(f"locate_many + per-row tier_for (Place objects): {N / elapsed:,.0f} suppliers/s ({elapsed:.2f} s)")

    facts = synthesise_facts(N)
    start = time.perf_counter()
    for fact in facts:
        classify_enterprise(fact)
    alone = time.perf_counter() - start
    print(f"classify_enterprise alone: {N / alone:,.0f} suppliers/s ({alone:.2f} s; distinct real feed names)")
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        tiers_for(locate_many(suppliers), area)
        for fact in facts:
            classify_enterprise(fact)
        best = min(best, time.perf_counter() - start)
    print(
        f"COMBINED locate_many + tiers_for + classify_enterprise: {N / best:,.0f} suppliers/s "
        f"({best:.2f} s for {N:,}; target >= 50,000/s)"
    )


if __name__ == "__main__":
    main()
