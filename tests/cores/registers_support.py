"""Shared helpers for the register tests: fixture paths and zips built in the real download shapes."""

import zipfile
from pathlib import Path

from tests.support.paths import FIXTURES_DIR

REGISTERS_DIR = FIXTURES_DIR / "registers"
CH_CSV = REGISTERS_DIR / "BasicCompanyData-2025-11-01.csv"
VERSION = "2025-11-01"


def one_file_zip(target_dir: Path) -> Path:
    """BasicCompanyDataAsOneFile-YYYY-MM-DD.zip holding one CSV, as Companies House publishes it."""
    path = target_dir / f"BasicCompanyDataAsOneFile-{VERSION}.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(CH_CSV, f"BasicCompanyDataAsOneFile-{VERSION}.csv")
    return path


def multi_part_zips(target_dir: Path, parts: int = 3) -> list[Path]:
    """BasicCompanyData-YYYY-MM-DD-partN_M.zip files, each CSV with its own copy of the header."""
    lines = CH_CSV.read_text(encoding="utf-8").splitlines(keepends=True)
    header, rows = lines[0], lines[1:]
    size = -(-len(rows) // parts)
    out = []
    for i in range(parts):
        name = f"BasicCompanyData-{VERSION}-part{i + 1}_{parts}"
        path = target_dir / f"{name}.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"{name}.csv", header + "".join(rows[i * size : (i + 1) * size]))
        out.append(path)
    return out
