"""Postcode -> local authority district (and its region, ICB, county, combined authority).

Resolution order (docs/geography.md section 7): special postcodes by rule; exact unit lookup; for a
format-valid unit missing from the directory (new or mistyped), and for partial input, the best-fit
LAD of the sector, then district, then area, with ``confidence`` = that LAD's share of the unit
postcodes. Every answer says which ``method`` was used. Tables are the compact files in
``socialvalue/data/geo`` (built by :mod:`socialvalue.geo_build`), loaded lazily once per process.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from socialvalue.geo_build import LAD_REFERENCE_FILE, META_FILE, PARTIALS_FILE, UNITS_FILE
from socialvalue.postcodes import STRICT_UNIT_RE, ParsedPostcode, extract_postcode, parse_postcode

DATA_DIR = Path(__file__).resolve().parent / "data" / "geo"

ATTRIBUTION = (
    "Contains OS data © Crown copyright and database right 2025.\n"
    "Contains Royal Mail data © Royal Mail copyright and database right 2025.\n"
    "Source: Office for National Statistics licensed under the Open Government Licence v.3.0.\n"
    "Contains information from NHS England (Organisation Data Service), licensed under the "
    "Open Government Licence v3.0."
)

DATA_VERSION: str = json.loads((DATA_DIR / META_FILE).read_text())["data_version"]

NORTHERN_IRELAND = "N92000002"

# Special postcodes are classified by rule, never given a LAD.
_SPECIAL_METHODS = {
    "bfpo": "special_bfpo",
    "nhs_pseudo": "special_nhs_pseudo",
    "non_geographic": "special_non_geographic",
    "overseas_territory": "special_overseas_territory",
    "northern_ireland": "rule_northern_ireland",
}

_LAD_COLUMNS = (
    "lad_name",
    "region_code",
    "region_name",
    "country_code",
    "icb_code",
    "icb_ods_code",
    "icb_name",
    "utla_code",
    "cauth_code",
    "wmca_constituent",
    "in_wm_region",
)

PLACE_SCHEMA: dict[str, type[pl.DataType]] = {
    "input": pl.String,
    "postcode": pl.String,
    "lookup_key": pl.String,
    "method": pl.String,
    "confidence": pl.Float64,
    "lad_code": pl.String,
    "lad_name": pl.String,
    "region_code": pl.String,
    "region_name": pl.String,
    "country_code": pl.String,
    "icb_code": pl.String,
    "icb_ods_code": pl.String,
    "icb_name": pl.String,
    "utla_code": pl.String,
    "cauth_code": pl.String,
    "wmca_constituent": pl.Boolean,
    "in_wm_region": pl.Boolean,
    "live": pl.Boolean,
    "data_version": pl.String,
}


@dataclass(frozen=True)
class Place:
    input: str
    postcode: str | None  # the normalised postcode (unit, or partial) read from the input
    method: str
    confidence: float | None
    lad_code: str | None
    lad_name: str | None
    region_code: str | None
    region_name: str | None
    country_code: str | None
    icb_code: str | None
    icb_ods_code: str | None
    icb_name: str | None
    utla_code: str | None
    cauth_code: str | None
    wmca_constituent: bool | None
    in_wm_region: bool | None
    live: bool | None
    data_version: str
    lookup_key: str | None = None  # the unit, sector, district or area key that matched


@dataclass(frozen=True)
class _Tables:
    units: pl.DataFrame  # postcode (sorted), lad_code, live
    partials: pl.DataFrame  # level, key, lad_code, lad_share, ...
    lads: pl.DataFrame  # lad_reference_uk.csv as shipped
    data_version: str


_lock = threading.Lock()
_tables: _Tables | None = None


def _read_lads(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, schema_overrides={"utla_code": pl.String, "cauth_code": pl.String})


def load_tables(data_dir: Path | None = None) -> None:
    """Load the tables now (app start, benchmarks). ``data_dir`` points at a rebuilt set instead."""
    global _tables  # noqa: PLW0603 - one immutable table set per process
    with _lock:
        if _tables is not None and data_dir is None:
            return
        folder = data_dir or DATA_DIR
        _tables = _Tables(
            units=pl.read_parquet(folder / UNITS_FILE),
            partials=pl.read_parquet(folder / PARTIALS_FILE),
            lads=_read_lads(folder / LAD_REFERENCE_FILE),
            data_version=json.loads((folder / META_FILE).read_text())["data_version"],
        )


def _get_tables() -> _Tables:
    if _tables is None:
        load_tables()
    assert _tables is not None
    return _tables


def lad_reference() -> pl.DataFrame:
    """lad_reference_uk.csv as shipped (one row per LAD)."""
    return _get_tables().lads


def _parse_for_lookup(text: str) -> ParsedPostcode:
    parsed = parse_postcode(text)
    if parsed.level == "invalid":
        # Not a postcode field: maybe a whole address.
        found = extract_postcode(text)
        if found is not None:
            return parse_postcode(found)
    return parsed


_PARSED_SCHEMA = {
    "input": pl.String,
    "postcode": pl.String,
    "level": pl.String,
    "strict": pl.Boolean,
    "special": pl.String,
}
# Areas whose postcodes need parse_postcode's special-case rules; everything else takes the vectorised path.
_RULE_AREAS = ["BF", "BX", "XM", "BT", "GY", "JE", "IM", "ZZ", "GX"]


def _parsed_frame(uniques: pl.Series) -> pl.DataFrame:
    """parse_postcode over many inputs: ordinary unit postcodes vectorised, the rest one by one."""
    compact = pl.col("input").str.to_uppercase().str.replace_all(r"[^A-Z0-9]", "")
    frame = uniques.to_frame("input").with_columns(compact=compact)
    plain = pl.col("compact").str.contains(r"^[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}$") & ~pl.col("compact").str.extract(
        r"^([A-Z]+)"
    ).is_in(_RULE_AREAS)
    frame = frame.with_columns(plain=plain)
    fast = frame.filter(pl.col("plain")).select(
        "input",
        postcode=pl.col("compact").str.head(-3) + " " + pl.col("compact").str.tail(3),
    )
    fast = fast.with_columns(
        level=pl.lit("unit"),
        strict=pl.col("postcode").str.contains(STRICT_UNIT_RE.pattern),
        special=pl.lit(None, dtype=pl.String),
    )
    rest = frame.filter(~pl.col("plain"))["input"].to_list()
    rows = [_parse_for_lookup(text) for text in rest]
    slow = pl.DataFrame(
        {
            "input": rest,
            "postcode": [p.normalised for p in rows],
            "level": [p.level for p in rows],
            "strict": [p.strict_valid for p in rows],
            "special": [p.special for p in rows],
        },
        schema=_PARSED_SCHEMA,
    )
    return pl.concat([fast.select(list(_PARSED_SCHEMA)).cast(_PARSED_SCHEMA), slow])  # type: ignore[arg-type]


def _resolve(parsed: pl.DataFrame, tables: _Tables) -> pl.DataFrame:
    units = tables.units
    special = pl.col("special")
    by_rule = special.is_in(list(_SPECIAL_METHODS)).fill_null(value=False) | (pl.col("level") == "special")
    is_unit = (pl.col("level") == "unit") & ~by_rule
    frame = parsed.with_columns(unit_key=pl.when(is_unit).then(pl.col("postcode")).otherwise(pl.lit("")))
    position = units["postcode"].search_sorted(frame["unit_key"]).clip(0, max(units.height - 1, 0))
    hit = units.select(pl.all().gather(position))
    frame = frame.with_columns(
        unit_found=(hit["postcode"] == frame["unit_key"]) & is_unit,
        unit_lad=hit["lad_code"],
        unit_live=hit["live"],
    )
    outward = pl.col("postcode").str.split(" ").list.first()
    # A format-valid unit that is not in the directory falls back to its sector (new postcodes appear monthly).
    unit_fallback = is_unit & ~pl.col("unit_found") & pl.col("strict")
    partial_ok = ~by_rule & (pl.col("level").is_in(["sector", "district", "area"]) | unit_fallback)
    frame = frame.with_columns(
        sector_key=pl.when(partial_ok & (pl.col("level") == "sector"))
        .then(pl.col("postcode"))
        .when(partial_ok & (pl.col("level") == "unit"))
        .then(pl.col("postcode").str.head(-2)),
        district_key=pl.when(partial_ok & (pl.col("level") != "area")).then(outward),
        area_key=pl.when(partial_ok).then(outward.str.extract(r"^([A-Z]+)")),
    )
    for level in ("sector", "district", "area"):
        table = tables.partials.filter(pl.col("level") == level).select(
            pl.col("key").alias(f"{level}_key"),
            pl.col("lad_code").alias(f"{level}_lad"),
            pl.col("lad_share").alias(f"{level}_share"),
        )
        frame = frame.join(table, on=f"{level}_key", how="left")
    special_method = special.replace_strict(_SPECIAL_METHODS, default=None, return_dtype=pl.String)
    method = (
        pl.when(pl.col("level") == "special")
        .then(pl.lit("special_bfpo"))
        .when(special_method.is_not_null())
        .then(special_method)
        .when(pl.col("unit_found") & pl.col("unit_lad").is_not_null())
        .then(pl.lit("unit"))
        .when(pl.col("unit_found"))
        .then(pl.lit("unit_no_location"))
        .when(pl.col("sector_lad").is_not_null())
        .then(pl.lit("sector"))
        .when(pl.col("district_lad").is_not_null())
        .then(pl.lit("district"))
        .when(pl.col("area_lad").is_not_null())
        .then(pl.lit("area"))
        .otherwise(pl.lit("not_found"))
    )
    frame = frame.with_columns(method=method)
    m = pl.col("method")
    frame = frame.select(
        "input",
        "postcode",
        lookup_key=pl.when(m.is_in(["unit", "unit_no_location"]))
        .then(pl.col("unit_key"))
        .when(m == "sector")
        .then(pl.col("sector_key"))
        .when(m == "district")
        .then(pl.col("district_key"))
        .when(m == "area")
        .then(pl.col("area_key")),
        method=m,
        confidence=pl.when(m == "unit")
        .then(pl.lit(1.0))
        .when(m == "sector")
        .then(pl.col("sector_share"))
        .when(m == "district")
        .then(pl.col("district_share"))
        .when(m == "area")
        .then(pl.col("area_share")),
        lad_code=pl.when(m == "unit")
        .then(pl.col("unit_lad"))
        .when(m == "sector")
        .then(pl.col("sector_lad"))
        .when(m == "district")
        .then(pl.col("district_lad"))
        .when(m == "area")
        .then(pl.col("area_lad")),
        live=pl.when(m.is_in(["unit", "unit_no_location"])).then(pl.col("unit_live")),
    )
    lads = tables.lads.select("lad_code", *_LAD_COLUMNS)
    frame = frame.join(lads, on="lad_code", how="left")
    return frame.with_columns(
        country_code=pl.when(m == "rule_northern_ireland").then(pl.lit(NORTHERN_IRELAND)).otherwise("country_code"),
        data_version=pl.lit(tables.data_version),
    ).select(list(PLACE_SCHEMA))


def locate_many(texts: Sequence[str | None]) -> pl.DataFrame:
    """Locate a batch of postcodes (or addresses); one row per input, in order, columns as :class:`Place`."""
    tables = _get_tables()
    inputs = pl.Series("input", [text if text is not None else "" for text in texts], dtype=pl.String)
    uniques = inputs.unique()
    resolved = _resolve(_parsed_frame(uniques), tables)
    return inputs.to_frame().join(resolved, on="input", how="left", maintain_order="left")


def locate(text: str) -> Place:
    """Locate one postcode field (or, failing that, the postcode found in a free-text address)."""
    row: dict[str, Any] = locate_many([text]).row(0, named=True)
    return Place(**row)


# How a postcode stands against the directory, as shown to people wherever a supplier appears.
POSTCODE_STATUS = {
    "unit": "found",
    "unit_no_location": "found",
    "sector": "not_in_directory_best_fit",
    "district": "not_in_directory_best_fit",
    "area": "not_in_directory_best_fit",
    "not_found": "not_in_directory_no_fit",
}
_FIT_LEVEL = {"sector": "sector", "district": "district", "area": "postcode area"}


def postcode_status(method: str | None) -> str | None:
    """found | not_in_directory_best_fit | not_in_directory_no_fit | classified_by_rule; None without a postcode."""
    if method is None or method in {"no_postcode", "manual_lad"}:
        return None
    return POSTCODE_STATUS.get(method, "classified_by_rule")


def best_fit(place: Place) -> str | None:
    """ "district B99: Birmingham (confidence 1.00)" for a partial fit, else None."""
    if place.method not in _FIT_LEVEL:
        return None
    confidence = "-" if place.confidence is None else f"{place.confidence:.2f}"
    return (
        f"{_FIT_LEVEL[place.method]} {place.lookup_key}: {place.lad_name or place.lad_code} (confidence {confidence})"
    )


def fit_text(place: Place) -> str | None:
    """A postcode absent from the directory in words, with its best fit; None when the directory has it."""
    status = postcode_status(place.method)
    if status not in {"not_in_directory_best_fit", "not_in_directory_no_fit"}:
        return None
    absent = f"{place.postcode or place.input} is not in the ONS postcode directory ({place.data_version})"
    fit = best_fit(place)
    return f"{absent}; placed by the best fit of its {fit}" if fit else f"{absent}, and no part of it matches"
