"""Postcode -> LAD locator (socialvalue.geography) and the table builder (socialvalue.geo_build)."""

import csv
import gzip
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socialvalue import geography
from socialvalue.geo_build import build_tables
from socialvalue.geography import ATTRIBUTION, DATA_DIR, locate, locate_many
from socialvalue.postcodes import parse_postcode
from tests.support.paths import GEO_DIR

CASES = list(csv.DictReader((GEO_DIR / "postcode_test_cases.csv").open(encoding="utf-8")))


def _text(value: object) -> str:
    return "" if value is None else str(value)


@pytest.mark.parametrize("case", CASES, ids=[c["input"] or "<empty>" for c in CASES])
def test_locate_matches_shared_fixture(case: dict[str, str]) -> None:
    place = locate(case["input"])
    got = {
        "normalised": _text(place.postcode),
        "method": place.method,
        "lad_code": _text(place.lad_code),
        "lad_name": _text(place.lad_name),
        "confidence": _text(place.confidence),
        "region_code": _text(place.region_code),
        "icb_ods_code": _text(place.icb_ods_code),
        "wmca_constituent": _text(place.wmca_constituent),
        "in_wm_region": _text(place.in_wm_region),
    }
    assert got == {key: case[key] for key in got}


def test_locate_many_agrees_with_locate_and_keeps_order() -> None:
    inputs = [c["input"] for c in CASES] + ["B15 2GW", "Birminghamrnb15 2gwrn", None]
    frame = locate_many(inputs)
    assert frame.height == len(inputs)
    assert frame["input"].to_list() == [text or "" for text in inputs]
    for row in frame.iter_rows(named=True):
        assert geography.Place(**row) == locate(row["input"])


def test_unit_lookup_is_exact_against_shared_unit_table() -> None:
    shared = pl.read_csv(GEO_DIR / "postcodes_gb_lad.csv.gz", schema_overrides={"lad_code": pl.String})
    sample = shared.sample(5000, seed=11)
    frame = locate_many(sample["postcode"].to_list())
    expected_method = pl.when(sample["lad_code"].is_null()).then(pl.lit("unit_no_location")).otherwise(pl.lit("unit"))
    assert frame["lad_code"].to_list() == sample["lad_code"].to_list()
    assert frame["live"].to_list() == (sample["live_2025_02"] == 1).to_list()
    assert frame["method"].to_list() == sample.select(expected_method)["literal"].to_list()


def test_messy_and_partial_inputs() -> None:
    assert locate("cv34 5bw").lad_name == "Warwick"
    # A format-valid unit missing from the directory falls back to its sector's best fit.
    new = locate("B62 0ZZ")
    assert (new.method, new.lookup_key, new.lad_code, new.confidence) == ("sector", "B62 0", "E08000027", 0.4768)
    # ...and to the district when the sector is unknown too (no B15 9 sector exists).
    assert (locate("B15 9ZZ").method, locate("B15 9ZZ").lookup_key) == ("district", "B15")
    # A whole address still finds its postcode.
    assert locate("Kings Chambers\r\nHigh Street\r\nDudley\r\nWest Midlands\r\nDY1 1QT").lad_code == "E08000027"
    assert locate("ASCN 1ZZ").method == "special_overseas_territory"
    assert locate("BT7 1NN").country_code == "N92000002"
    assert locate("NPT 8DP").method in ("unit", "unit_no_location")
    assert locate("Denmark").method == "not_found"


def test_partial_tables_equal_shared_best_fit_tables() -> None:
    shipped = pl.read_parquet(DATA_DIR / "partials.parquet")
    for level, name in (
        ("sector", "postcode_sectors_gb.csv.gz"),
        ("district", "postcode_districts_gb.csv.gz"),
        ("area", "postcode_areas_gb.csv"),
    ):
        shared = (
            pl.read_csv(GEO_DIR / name, schema_overrides={"lad_code": pl.String, "lad2_code": pl.String})
            .filter(pl.col("lad_code").is_not_null())
            .select(pl.col(level).alias("key"), "lad_code", "lad_share", "lad2_code", "n_lads")
            .sort("key")
        )
        mine = shipped.filter(pl.col("level") == level).select("key", "lad_code", "lad_share", "lad2_code", "n_lads")
        assert mine.cast({"n_lads": pl.Int64}).equals(shared), level


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ABCDEFGHJKLMNOPRSTUVWXYZabcdz0123456789 -/", max_size=12))
def test_vectorised_parse_agrees_with_parse_postcode(text: str) -> None:
    frame = geography._parsed_frame(pl.Series([text], dtype=pl.String))
    row = frame.row(0, named=True)
    parsed = parse_postcode(text)
    if parsed.level == "invalid":
        return  # the locator then tries extract_postcode on free text
    assert (row["postcode"], row["level"], row["strict"], row["special"]) == (
        parsed.normalised,
        parsed.level,
        parsed.strict_valid,
        parsed.special,
    )


def test_attribution_is_the_shared_ogl_text() -> None:
    shipped_sources = (DATA_DIR / "SOURCES.md").read_text(encoding="utf-8")
    shared_sources = (GEO_DIR / "SOURCES.md").read_text(encoding="utf-8")
    for line in ATTRIBUTION.splitlines():
        first_words = line[:40]
        assert first_words in shipped_sources
        assert first_words in shared_sources.replace("\n> ", " ")


def _write_onspd_sample(path: Path, units: pl.DataFrame) -> None:
    """An ONSPD-shaped CSV: pcds, doterm (terminated = non-live), osgrdind, laua, plus noise columns."""
    with gzip.open(path, "wt", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["pcd", "pcds", "dointr", "doterm", "usertype", "oseast1m", "osgrdind", "laua", "rgn"])
        for postcode, lad, live in units.iter_rows():
            writer.writerow(
                [
                    postcode.replace(" ", "").ljust(7),
                    postcode,
                    "199801",
                    "" if live == 1 else "202001",
                    "0",
                    "400000",
                    "9" if lad is None else "1",
                    lad or "E99999999",
                    "E12000005",
                ]
            )


def test_build_tables_from_onspd_shape_gives_same_answers(tmp_path: Path) -> None:
    shared = pl.read_csv(GEO_DIR / "postcodes_gb_lad.csv.gz", schema_overrides={"lad_code": pl.String})
    # Whole sectors, so sector best-fits can be compared with the shipped ones.
    sectors = ["B62 0", "CV7 7", "B15 2", "CV34 5", "JE2 3", "GIR 0"]
    units = shared.filter(pl.col("postcode").str.head(-2).is_in(sectors))
    assert 300 <= units.height <= 5000
    source = tmp_path / "ONSPD_sample.csv.gz"
    _write_onspd_sample(source, units)
    out = tmp_path / "geo"
    counts = build_tables(source, out, lad_reference_csv=GEO_DIR / "lad_reference_uk.csv", data_version="test build")
    assert counts["units"] == units.height
    assert counts["sectors"] == len(sectors) - 1  # GIR 0 has no LAD
    queries = units["postcode"].to_list() + sectors
    shipped = locate_many(queries)
    try:
        geography.load_tables(out)
        rebuilt = locate_many(queries)
    finally:
        geography.load_tables(DATA_DIR)
    assert rebuilt["data_version"].unique().to_list() == ["test build"]
    columns = ["input", "method", "lad_code", "confidence", "live", "region_code", "icb_code"]
    assert rebuilt.select(columns).equals(shipped.select(columns))


def test_build_tables_reads_nspd_columns(tmp_path: Path) -> None:
    source = tmp_path / "NSPD_sample.csv"
    source.write_text(
        "pcd7,lad25cd,doterm\nB15 2GW,E08000025,\nB4  6NH,E08000025,\nZZ99 3VZ,E99999999,\nBT1 1AA,N09000003,\n"
    )
    counts = build_tables(source, tmp_path / "geo")
    assert counts == {"units": 3, "units_with_lad": 2, "units_live": 3, "sectors": 2, "districts": 2, "areas": 1}
    units = pl.read_parquet(tmp_path / "geo" / "units.parquet")
    assert units["postcode"].to_list() == ["B15 2GW", "B4 6NH", "ZZ99 3VZ"]
