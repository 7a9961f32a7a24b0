"""Build the geography tables shipped in ``socialvalue/data/geo`` from an ONS postcode directory.

Accepted inputs (CSV, optionally gzip-compressed), recognised by their columns:

* ONSPD: ``pcds`` (or ``pcd``), ``laua``, optional ``doterm`` (non-empty = terminated) and ``osgrdind``
  (9 = no grid reference, so no reliable LAD);
* NSPD 2025: ``pcd7`` (or ``pcds``), ``lad25cd`` (any ``ladNNcd``), optional ``doterm`` / ``osgrdind``;
* the project's own unit table: ``postcode``, ``lad_code``, ``live_2025_02`` (this is how the shipped
  tables were produced, from ``shared/data/geo/postcodes_gb_lad.csv.gz``; see :func:`build_shipped_tables`).

Outputs: ``units.parquet`` (every unit postcode, sorted, with LAD and live flag), ``partials.parquet``
(best-fit LAD per sector, district and area, computed as in docs/geography.md section 2: from live
postcodes when the group has any, else from all; share = modal LAD's count / postcodes with a LAD),
``lad_reference_uk.csv`` and ``meta.json``. Northern Ireland (``BT``) rows are dropped: their LPS
licence is not plain OGL and the locator classifies ``BT`` by rule.
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

UNITS_FILE = "units.parquet"
PARTIALS_FILE = "partials.parquet"
LAD_REFERENCE_FILE = "lad_reference_uk.csv"
ICB_REFERENCE_FILE = "icb_reference_england.csv"
META_FILE = "meta.json"

# ONS pseudo codes for "no LAD" in England, Wales, Scotland, Northern Ireland. The Channel Islands
# (L99999999) and Isle of Man (M99999999) pseudo codes are real answers and are kept.
_NO_LAD_CODES = ("E99999999", "W99999999", "S99999999", "N99999999")


def _read_units(source: Path) -> pl.DataFrame:
    """Read a postcode directory CSV into (postcode, lad_code, live)."""
    header = pl.read_csv(source, n_rows=0, infer_schema_length=0).columns
    lower = {name.lower(): name for name in header}
    postcode_col = next((lower[c] for c in ("postcode", "pcds", "pcd7", "pcd", "pcd8") if c in lower), None)
    lad_col = next(
        (lower[c] for c in ("lad_code", "laua") if c in lower),
        next((orig for low, orig in lower.items() if re.fullmatch(r"lad\d\dcd", low)), None),
    )
    if postcode_col is None or lad_col is None:
        raise ValueError(f"{source}: need a postcode column (pcds/pcd7/postcode) and a LAD column (laua/ladNNcd)")
    wanted = [postcode_col, lad_col] + [
        lower[c] for c in ("live_2025_02", "doterm", "osgrdind") if c in lower and lower[c] not in (postcode_col,)
    ]
    raw = pl.read_csv(source, columns=wanted, infer_schema_length=0)
    compact = pl.col(postcode_col).str.to_uppercase().str.replace_all(r"[^A-Z0-9]", "")
    live: pl.Expr = pl.lit(value=True)
    if "live_2025_02" in lower:
        live = pl.col(lower["live_2025_02"]) == "1"
    elif "doterm" in lower:
        live = pl.col(lower["doterm"]).fill_null("").str.strip_chars() == ""
    lad = pl.col(lad_col).str.strip_chars()
    no_lad = lad.is_null() | (lad == "") | lad.is_in(_NO_LAD_CODES)
    if "osgrdind" in lower:
        no_lad = no_lad | (pl.col(lower["osgrdind"]).str.strip_chars() == "9")
    units = raw.select(
        postcode=compact.str.head(-3) + " " + compact.str.tail(3),
        lad_code=pl.when(no_lad).then(None).otherwise(lad),
        live=live,
    )
    return (
        units.filter(pl.col("postcode").str.len_chars() >= 6, ~pl.col("postcode").str.starts_with("BT"))
        .unique("postcode", keep="first")
        .sort("postcode")
    )


def _best_fit(units: pl.DataFrame, key: pl.Expr, level: str) -> pl.DataFrame:
    keyed = units.with_columns(key=key)
    basis = keyed.with_columns(has_live=pl.col("live").any().over("key")).filter(
        pl.col("live") | ~pl.col("has_live"), pl.col("lad_code").is_not_null()
    )
    counts = basis.group_by("key", "lad_code").agg(n=pl.len())
    ranked = counts.with_columns(
        total=pl.col("n").sum().over("key"),
        n_lads=pl.len().over("key"),
    ).sort(["key", "n", "lad_code"], descending=[False, True, False])
    grouped = ranked.group_by("key", maintain_order=True).agg(
        lad_code=pl.col("lad_code").first(),
        lad_share=(pl.col("n").first() / pl.col("total").first()).round(4),
        lad2_code=pl.col("lad_code").get(1, null_on_oob=True),
        lad2_share=(pl.col("n").get(1, null_on_oob=True) / pl.col("total").first()).round(4),
        n_lads=pl.col("n_lads").first().cast(pl.Int32),
        n_basis=pl.col("total").first().cast(pl.Int32),
    )
    return grouped.with_columns(level=pl.lit(level)).select(
        "level", "key", "lad_code", "lad_share", "lad2_code", "lad2_share", "n_lads", "n_basis"
    )


def _partials(units: pl.DataFrame) -> pl.DataFrame:
    outward = pl.col("postcode").str.split(" ").list.first()
    return pl.concat(
        [
            _best_fit(units, pl.col("postcode").str.head(-2), "sector"),
            _best_fit(units, outward, "district"),
            _best_fit(units, outward.str.extract(r"^([A-Z]+)"), "area"),
        ]
    ).sort("level", "key")


def build_tables(
    onspd_csv: Path, out_dir: Path, *, lad_reference_csv: Path | None = None, data_version: str | None = None
) -> dict[str, int]:
    """Rebuild the unit and partial-postcode tables from a postcode directory CSV.

    ``lad_reference_csv`` (columns as ``lad_reference_uk.csv``) replaces the LAD reference in
    ``out_dir``; without it the existing one there is kept (it must exist for the locator to use the
    tables). ``data_version`` is the label shown on every result (default: file name and build date).
    Returns row counts per table.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    units = _read_units(Path(onspd_csv))
    partials = _partials(units)
    units.write_parquet(out_dir / UNITS_FILE, compression="zstd", compression_level=19, statistics=False)
    partials.write_parquet(out_dir / PARTIALS_FILE, compression="zstd", compression_level=19, statistics=False)
    if lad_reference_csv is not None:
        shutil.copyfile(lad_reference_csv, out_dir / LAD_REFERENCE_FILE)
    counts = {
        "units": units.height,
        "units_with_lad": int(units["lad_code"].is_not_null().sum()),
        "units_live": int(units["live"].sum()),
        **{f"{level}s": int((partials["level"] == level).sum()) for level in ("sector", "district", "area")},
    }
    built_on = datetime.now(tz=UTC).date().isoformat()
    meta = {
        "data_version": data_version or f"postcode directory {Path(onspd_csv).name}; built {built_on}",
        "source_file": Path(onspd_csv).name,
        "built_on": built_on,
        "counts": counts,
    }
    (out_dir / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return counts


SHIPPED_DATA_VERSION = "ONS NSPD 2025-11 (live flag ONSPD 2025-02); LAD ref 2026-11-22"


def build_shipped_tables(shared_geo_dir: Path, out_dir: Path) -> dict[str, int]:
    """Reproduce the tables shipped with the package from the project's shared geography folder."""
    counts = build_tables(
        shared_geo_dir / "postcodes_gb_lad.csv.gz",
        out_dir,
        lad_reference_csv=shared_geo_dir / LAD_REFERENCE_FILE,
        data_version=SHIPPED_DATA_VERSION,
    )
    shutil.copyfile(shared_geo_dir / ICB_REFERENCE_FILE, out_dir / ICB_REFERENCE_FILE)
    return counts


if __name__ == "__main__":  # pragma: no cover - maintainer entry point
    import sys

    print(build_shipped_tables(Path(sys.argv[1]), Path(sys.argv[2])))
