"""Time socialvalue.metrics on 1,000,000 synthetic contract-supplier lines, 50 anchors, 12 quarters.

Run: .venv/bin/python benchmarks/metrics_bench.py [lines] [uniform|zipf] [--phases]

Suppliers are drawn uniformly by default (the worst case: almost every anchor x supplier x quarter group is
new). "zipf" draws them with probability proportional to 1/rank, closer to real procurement, where a few
suppliers hold many contracts.
Prints wall and CPU (user + system) time per basis and the peak resident set size of the process (polars
allocates outside Python, so tracemalloc would not see it), and the ratio of both bases' time to a floor timed in
the same run: polars summing each basis's value per anchor and quarter in one group-by (the spread basis over each
line's quarters, not split by day), the least any engine does on these lines, so that the ratio can be compared
across machines where the seconds cannot. --phases also prints, per basis, the wall and CPU
time of each step compute_metrics calls directly.
result.lines (one row per line and quarter, for downloads) is built on first use, so it is not read here;
result.excluded (one row per excluded line, scope and period, for downloads and statements) likewise, and it is
read only after the time is taken, for the count printed.
"""

import functools
import inspect
import resource
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import date
from typing import Any

import polars as pl

from socialvalue import metrics
from socialvalue.metrics import CATEGORIES, INPUT_SCHEMA, TIERS, compute_metrics
from socialvalue.periods import quarter_index_expr

ANCHORS = 50
SUPPLIERS = 60_000
FIRST_DAY = date(2023, 4, 1)  # 2023Q1; twelve quarters run to 31 Mar 2026
DAYS = (date(2026, 3, 31) - FIRST_DAY).days + 1


def synthesise(n: int, suppliers: str = "uniform") -> pl.DataFrame:
    """Deterministic pseudo-random lines (hash of the row number, one seed per column)."""

    def rnd(seed: int, modulo: int) -> pl.Expr:
        return (pl.col("i").hash(seed) % modulo).cast(pl.Int64)

    # Contract lengths: 40 % up to 3 months, 40 % 3 months-2 years, 20 % 2-5 years.
    length_kind = rnd(7, 10)
    length = (
        pl.when(length_kind < 4)
        .then(rnd(8, 90) + 1)
        .when(length_kind < 8)
        .then(rnd(9, 640) + 90)
        .otherwise(rnd(10, 1100) + 730)
    )
    award_offset = rnd(3, DAYS)
    # SUPPLIERS ** u for uniform u has P(id <= k) = log k / log SUPPLIERS, i.e. density ~ 1 / k.
    zipf = pl.lit(float(SUPPLIERS)).pow((pl.col("i").hash(2) % 1_000_000) / 1_000_000).floor().cast(pl.Int64)
    supplier = zipf if suppliers == "zipf" else rnd(2, SUPPLIERS) + 1
    frame = pl.DataFrame({"i": pl.int_range(n, eager=True)}).with_columns(
        line_id=pl.col("i") + 1,
        contract_id=pl.col("i") // 2 + 1,
        anchor_id=rnd(1, ANCHORS) + 1,
        supplier_id=supplier,
        # log-ish spread of values: £100 to about £10m
        value_pence=pl.when(rnd(11, 100) == 0)
        .then(None)
        .otherwise((rnd(12, 1000) + 1) * (pl.lit(10) ** (rnd(13, 5) + 4))),
        currency=pl.when(rnd(14, 100) == 0).then(pl.lit("EUR")).otherwise(pl.lit("GBP")),
        award_date=pl.lit(FIRST_DAY) + pl.duration(days=award_offset),
        start_date=pl.when(rnd(15, 20) == 0)
        .then(None)
        .otherwise(pl.lit(FIRST_DAY) + pl.duration(days=award_offset + rnd(16, 60))),
        length=length,
        cpv_code=pl.when(rnd(17, 30) == 0)
        .then(None)
        .otherwise(pl.format("{}000000", (rnd(18, 90) + 10).cast(pl.String))),
        tier=pl.lit(pl.Series(TIERS)).gather(rnd(19, len(TIERS))),
        category=pl.lit(pl.Series(CATEGORIES)).gather(rnd(20, len(CATEGORIES))),
        sme=pl.when(rnd(21, 5) == 0).then(None).otherwise(rnd(22, 2) == 0),
        vcse=pl.when(rnd(23, 5) == 0).then(None).otherwise(rnd(24, 4) == 0),
        social_enterprise=pl.when(rnd(25, 3) == 0).then(None).otherwise(rnd(26, 6) == 0),
        status=pl.when(rnd(27, 50) == 0).then(pl.lit("withdrawn")).otherwise(pl.lit("active")),
    )
    frame = frame.with_columns(
        end_date=pl.col("start_date") + pl.duration(days=pl.col("length") - 1),
        supplier_name=pl.format("Supplier {}", pl.col("supplier_id")),
    )
    return frame.select(pl.col(name).cast(dtype) for name, dtype in INPUT_SCHEMA.items())


def floor_seconds(lines: pl.DataFrame) -> float:
    """Wall time of the floor (see the module docstring): both bases' value per anchor and quarter, one group-by
    each, best of 3."""

    def quarter(day: str) -> pl.Expr:  # the financial quarters the engine places value in
        return quarter_index_expr(pl.col(day))

    valued = lines.lazy().filter(pl.col("value_pence").is_not_null())
    awarded = valued.group_by("anchor_id", q=quarter("award_date")).agg(pl.col("value_pence").sum())
    spread = (
        valued.filter(pl.col("start_date") <= pl.col("end_date"))
        .select("anchor_id", "value_pence", q=pl.int_ranges(quarter("start_date"), quarter("end_date") + 1))
        .explode("q")
        .group_by("anchor_id", "q")
        .agg(pl.col("value_pence").sum())
    )
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        for query in (awarded, spread):
            query.collect()
        times.append(time.perf_counter() - t0)
    return min(times)


def cpu_seconds() -> float:
    """User + system CPU of this process, all threads: wall time alone misleads when other work shares the cores."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def time_steps() -> dict[str, list[float]]:
    """Wrap the module's functions that compute_metrics calls directly so that each records its wall and CPU
    time; the returned dict (name: [wall, CPU]) fills as they run."""
    spent: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])

    def timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0, c0 = time.perf_counter(), cpu_seconds()
            try:
                return function(*args, **kwargs)
            finally:
                spent[name][0] += time.perf_counter() - t0
                spent[name][1] += cpu_seconds() - c0

        return wrapper

    for name in compute_metrics.__code__.co_names:
        function = getattr(metrics, name, None)
        if inspect.isfunction(function) and function.__module__ == metrics.__name__:
            setattr(metrics, name, timed(name, function))
    return spent


def main() -> None:
    args = [a for a in sys.argv[1:] if a != "--phases"]
    n = int(args[0]) if args else 1_000_000
    suppliers = args[1] if len(args) > 1 else "uniform"
    steps = time_steps() if "--phases" in sys.argv else None
    t0 = time.perf_counter()
    lines = synthesise(n, suppliers)
    print(
        f"synthesised {lines.height:,} lines, {ANCHORS} anchors, {lines['supplier_id'].n_unique():,} suppliers "
        f"({suppliers}) in {time.perf_counter() - t0:.2f} s"
    )
    print(f"polars {pl.__version__}, threads {pl.thread_pool_size()}")
    total = 0.0
    total_cpu = 0.0
    for basis in ("awarded", "spread"):
        t0, c0 = time.perf_counter(), cpu_seconds()
        result = compute_metrics(lines, basis=basis, periods="quarter")
        elapsed, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        total += elapsed
        total_cpu += cpu
        print(
            f"{basis:8s} quarter: {elapsed:.2f} s wall, {cpu:.2f} s CPU; summary {result.summary.height} rows, "
            f"excluded {result.excluded.height:,} rows"
        )
        if steps is not None:
            for name, (wall, step_cpu) in sorted(steps.items(), key=lambda item: -item[1][0]):
                print(f"    {name:24s} {wall:.3f} s wall, {step_cpu:.3f} s CPU")
            rest_wall = elapsed - sum(wall for wall, _ in steps.values())
            rest_cpu = cpu - sum(step_cpu for _, step_cpu in steps.values())
            print(f"    {'(the rest)':24s} {rest_wall:.3f} s wall, {rest_cpu:.3f} s CPU")
            steps.clear()
    print(f"both bases, every anchor + 'all', quarterly: {total:.2f} s wall, {total_cpu:.2f} s CPU")
    floor = floor_seconds(lines)
    print(
        f"floor (polars: each basis's value per anchor and quarter, one group-by): {floor:.2f} s wall; "
        f"both bases {total / floor:.2f}x the floor"
    )
    t0, c0 = time.perf_counter(), cpu_seconds()
    compute_metrics(lines, basis="spread", periods="year")
    print(f"spread   year:    {time.perf_counter() - t0:.2f} s wall, {cpu_seconds() - c0:.2f} s CPU")
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"peak RSS: {peak_kib / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
