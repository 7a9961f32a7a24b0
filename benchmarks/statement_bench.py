"""Render 100 varied statement snapshots to PDF and report the time per statement (target: under 0.5 s).

Run from the repository root: .venv/bin/python -m benchmarks.statement_bench
"""

from __future__ import annotations

import statistics
import time

from socialvalue.statement_pdf import render_statement_pdf
from tests.support.statements import varied_snapshot

COUNT = 100
TARGET_SECONDS = 0.5


def main() -> None:
    snapshots = [varied_snapshot(seed) for seed in range(COUNT)]
    render_statement_pdf(snapshots[0])  # warm imports and font metrics outside the timing
    timings: list[float] = []
    sizes: list[int] = []
    for snapshot in snapshots:
        start = time.perf_counter()
        pdf = render_statement_pdf(snapshot)
        timings.append(time.perf_counter() - start)
        sizes.append(len(pdf))
    total = sum(timings)
    print(f"statements rendered: {COUNT}")
    print(f"total: {total:.2f} s, mean: {total / COUNT:.4f} s per statement")
    print(f"median: {statistics.median(timings):.4f} s, slowest: {max(timings):.4f} s")
    print(f"PDF size: mean {statistics.mean(sizes) / 1024:.1f} KiB, largest {max(sizes) / 1024:.1f} KiB")
    verdict = "meets" if max(timings) < TARGET_SECONDS else "MISSES"
    print(f"{verdict} the target of {TARGET_SECONDS} s per statement")


if __name__ == "__main__":
    main()
