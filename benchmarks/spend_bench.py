"""Time spend-file import: parse + map columns + match payees, on 1,000,000 payment lines.

Run: .venv/bin/python benchmarks/spend_bench.py [lines]
Writes a realistic mix of layouts to a temporary directory, built from the real fixture files' rows: the
HM Treasury £25k layout (Royal Free, with VAT numbers; Kingston, with vendor-code prefixes and 05-Apr-20
dates; Chelsea, Windows-1252 with DD/MM/YYYY and quoted thousands), the Transparency Code £500 layout
(Manchester, double-encoded BOM and redactions; Calderdale, company numbers) and the local spending data
schema (Leeds), with a title line above the header in one file. Payee names get a number suffix on about
half the lines so there are tens of thousands of distinct payees; a supplier master of the same order holds
most of them in register form. Each timed run happens in a fresh process so its peak RSS is its own.
Prints lines/s for the whole import and, beside it as the floor, a bare ``polars.read_csv`` of the same files.
"""

import csv
import io
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

from importers.spend import read_spend_file
from socialvalue.payees import match_payees, payees_of
from tests.support.paths import FIXTURES_DIR

N = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 1_000_000
SPEND = FIXTURES_DIR / "spend"
# fixture -> (encoding, supplier header, amount header, share of lines, title line)
MIX = {
    "nhs_royal-free-ft_2020-Q1_over25k_with_VATreg.csv": ("utf-8-sig", "Supplier", "Amount", 0.20, False),
    "nhs_kingston-trust_2020-06_over25k_vendorcode-prefix.csv": ("utf-8", "Supplier", "Amount", 0.10, True),
    "nhs_chelsea-westminster-ft_2020-04_over25k.csv": ("cp1252", "Supplier Name", "amount", 0.10, False),
    "council_manchester_2022-05_over500.csv": ("utf-8", "Supplier Name", "Net Amount", 0.20, False),
    "council_calderdale_2022-08_over500_companyno_vcse.csv": (
        "utf-8", "Supplier(Beneficiary) Name", "Net Amount", 0.20, False),
    "council_leeds_2013-12_spend_localspendingdata-schema.csv": ("utf-8", "SupplierName", "NetAmount", 0.20, False),
}  # fmt: skip


def synthesise(out_dir: Path, n: int) -> Path:
    rng = random.Random(2026)
    master_names: set[str] = set()
    for name, (encoding, supplier, amount, share, title) in MIX.items():
        raw = (SPEND / name).read_bytes()
        bom = raw[:6] if raw.startswith(b"\xc3\xaf\xc2\xbb\xc2\xbf") else b""
        text = raw[len(bom) :].decode(encoding)
        reader = csv.reader(io.StringIO(text))
        header = next(reader)
        rows = [r for r in reader if any(c.strip() for c in r)]
        s_i, a_i = header.index(supplier), header.index(amount)
        buf = io.StringIO()
        if title:
            buf.write(f"Expenditure over 25000 - {name}\r\n\r\n")
        writer = csv.writer(buf, lineterminator="\r\n")
        writer.writerow(header)
        quoted_thousands = "," in "".join(r[a_i] for r in rows[:50])
        for i in range(int(n * share)):
            row = list(rows[i % len(rows)])
            payee = row[s_i]
            if payee and not payee.upper().startswith("REDACTED") and rng.random() < 0.5:
                payee = f"{payee} {rng.randint(1, 60)}"
                row[s_i] = payee
            if payee and not payee.upper().startswith("REDACTED") and rng.random() < 0.85:
                master_names.add(payee.split(" : ", 1)[-1].upper())
            pence = rng.randint(-5_000_00, 2_000_000_00)
            row[a_i] = f"{pence / 100:,.2f}" if quoted_thousands else f"{pence / 100:.2f}"
            writer.writerow(row)
        (out_dir / name).write_bytes(bom + buf.getvalue().encode(encoding.replace("-sig", "")))
    master = pl.DataFrame({"name": sorted(master_names)}).with_row_index("supplier_id")
    master.write_csv(out_dir / "master.csv")
    return out_dir


def run(directory: Path) -> None:
    files = [directory / name for name in MIX]
    master = pl.read_csv(directory / "master.csv", infer_schema=False)
    start = time.perf_counter()
    lines = 0
    payees = []
    for path in files:
        spend = read_spend_file(path)
        lines += spend.line_count
        payees.append(payees_of(spend.lines))
    parsed = time.perf_counter() - start
    distinct = pl.concat(payees).unique()
    matches = match_payees(distinct, master)
    elapsed = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    status = dict(matches["status"].value_counts().iter_rows())
    print(
        f"parse + map: {lines / parsed:,.0f} lines/s ({parsed:.2f} s); match {distinct.height:,} distinct payees "
        f"against {master.height:,} suppliers: {elapsed - parsed:.2f} s ({status})"
    )
    print(
        f"PARSE + MAP + MATCH: {lines:,} lines in {elapsed:.2f} s = {lines / elapsed:,.0f} lines/s "
        f"(target >= 200,000/s); peak RSS {peak_mb:,.0f} MB (target < 1,024 MB)"
    )


def floor(directory: Path) -> None:
    start = time.perf_counter()
    lines = 0
    for name, (encoding, *_rest, title) in MIX.items():
        frame = pl.read_csv(
            directory / name,
            infer_schema=False,
            skip_rows=2 if title else 0,
            encoding="utf8-lossy" if encoding == "cp1252" else "utf8",
            truncate_ragged_lines=True,
        )
        lines += frame.height
    elapsed = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"FLOOR bare polars.read_csv: {lines:,} lines in {elapsed:.2f} s = {lines / elapsed:,.0f} lines/s; "
        f"peak RSS {peak_mb:,.0f} MB"
    )


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] in {"--run", "--floor"}:
        (run if sys.argv[1] == "--run" else floor)(Path(sys.argv[2]))
        return
    with tempfile.TemporaryDirectory() as tmp:
        directory = synthesise(Path(tmp), N)
        size = sum(p.stat().st_size for p in directory.glob("*.csv")) / 1e6
        print(f"{N:,} lines in {len(MIX)} files, {size:,.0f} MB")
        for mode in ("--floor", "--run", "--run"):
            subprocess.run([sys.executable, __file__, mode, str(directory)], check=True)


if __name__ == "__main__":
    main()
