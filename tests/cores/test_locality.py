"""Locality tiers against an anchor's local area (socialvalue.locality)."""

import pytest

from socialvalue.geography import locate
from socialvalue.locality import (
    PRESETS,
    TIERS,
    country_is_uk,
    custom_area,
    local_area,
    tier_for,
)

BIRMINGHAM, SOLIHULL, COVENTRY, WARWICK = "E08000025", "E08000029", "E08000026", "E07000222"
WMCA_7 = {"E08000025", "E08000026", "E08000027", "E08000028", "E08000029", "E08000030", "E08000031"}


def test_presets_match_geography_notes() -> None:
    assert local_area("own_lad", lad_code=BIRMINGHAM).lad_codes == {BIRMINGHAM}
    bsol = local_area("icb", icb_code="QHL")
    assert bsol.lad_codes == {BIRMINGHAM, SOLIHULL}
    assert bsol.label == "Birmingham and Solihull ICB footprint (2 LADs)"
    assert local_area("icb", icb_code="E54000055") == bsol
    cw = local_area("icb", lad_code=WARWICK)  # the ICB of the anchor's own LAD
    assert cw.lad_codes == {COVENTRY, WARWICK, "E07000218", "E07000219", "E07000220", "E07000221"}
    assert local_area("wmca_7").lad_codes == WMCA_7
    region = local_area("wm_region")
    assert len(region.lad_codes) == 30
    assert {a.region_code for a in (bsol, cw, region, local_area("wmca_7"))} == {"E12000005"}
    assert {a.preset for a in (bsol, cw, region)} <= set(PRESETS)


def test_preset_errors() -> None:
    with pytest.raises(ValueError, match="own_lad needs"):
        local_area("own_lad")
    with pytest.raises(ValueError, match="unknown preset"):
        local_area("county")
    with pytest.raises(ValueError, match="no LAD has best-fit ICB"):
        local_area("icb", icb_code="QZZ")


def test_custom_area_validates_codes() -> None:
    area = custom_area([BIRMINGHAM, " e08000029 "], label="BSol")
    assert (area.preset, area.lad_codes, area.region_code) == (None, frozenset({BIRMINGHAM, SOLIHULL}), "E12000005")
    with pytest.raises(ValueError, match="E99999998"):
        custom_area([BIRMINGHAM, "E99999998"], label="bad")
    with pytest.raises(ValueError, match="at least one"):
        custom_area([], label="empty")


# Expected tiers checked by hand against geography.md §3 (BSol = Birmingham + Solihull).
@pytest.mark.parametrize(
    ("postcode", "tier", "confidence"),
    [
        ("B15 2GW", "local", 1.0),  # Birmingham
        ("B91 3QB", "local", 1.0),  # Solihull
        ("CV34 5BW", "regional", 1.0),  # Warwick: West Midlands, not BSol
        ("DY1 2HQ", "regional", 1.0),  # Dudley
        ("SW1A 2AA", "rest_of_uk", 1.0),
        ("CF10 1EP", "rest_of_uk", 1.0),  # Cardiff
        ("EH1 2EG", "rest_of_uk", 1.0),  # Edinburgh
        ("BT1 1AA", "rest_of_uk", 1.0),  # Northern Ireland by rule
        ("JE2 3AB", "outside_uk", 1.0),
        ("IM1 1AA", "outside_uk", 1.0),
        ("ASCN 1ZZ", "outside_uk", 1.0),
        ("BFPO 57", "unknown", None),
        ("ZZ99 3VZ", "unknown", None),
        ("GIR 0AA", "unknown", None),
        ("XM4 5HQ", "unknown", None),
        ("QA1 1AA", "unknown", None),
        ("B62 0", "regional", 0.4768),  # best fit Dudley at 48 %
        ("B91", "local", 1.0),  # district wholly in Solihull
        ("B", "local", 0.5175),  # area best fit Birmingham
    ],
)
def test_tiers_for_bsol_anchor(postcode: str, tier: str, confidence: float | None) -> None:
    result = tier_for(locate(postcode), local_area("icb", icb_code="QHL"))
    assert (result.tier, result.confidence) == (tier, confidence)
    assert result.tier in TIERS
    assert result.reason.endswith(".")


def test_partial_match_reason_names_the_level() -> None:
    result = tier_for(locate("B62 0"), local_area("wmca_7"))
    assert result.tier == "local"
    assert result.method == "sector"
    assert "best fit for sector B62 0, 48%" in result.reason


def test_country_hint_only_used_without_a_postcode() -> None:
    area = local_area("wm_region")
    assert tier_for(None, area, country_hint="Denmark").tier == "outside_uk"
    assert tier_for(locate("Via G. Di Vittorio 12rn30029 San Stino"), area, country_hint="Italy").tier == "outside_uk"
    assert tier_for(None, area, country_hint="United Kingdom").tier == "unknown"
    assert tier_for(None, area, country_hint="West Midlands").tier == "unknown"
    assert tier_for(None, area).tier == "unknown"
    assert tier_for(locate("B15 2GW"), area, country_hint="Denmark").tier == "local"


@pytest.mark.parametrize(
    ("hint", "expected"),
    [
        ("UK", True),
        ("United Kingdom of Great Britain and Northern Ireland", True),
        ("england", True),
        ("DK", False),
        ("Ireland", False),
        ("United States", False),
        ("Jersey", False),
        ("N/A", None),
        ("", None),
        (None, None),
    ],
)
def test_country_is_uk(hint: str | None, expected: bool | None) -> None:
    assert country_is_uk(hint) is expected


def test_tiers_for_matches_tier_for_row_by_row() -> None:
    import polars as pl

    from socialvalue.geography import DATA_DIR, Place, locate_many
    from socialvalue.locality import tiers_for
    from tests.support.paths import GEO_DIR

    sample = pl.read_parquet(DATA_DIR / "units.parquet", columns=["postcode"]).sample(3000, seed=5)["postcode"]
    cases = [row.split(",")[0] for row in (GEO_DIR / "postcode_test_cases.csv").read_text().splitlines()[1:]]
    inputs = [
        *sample.to_list(),
        *[pc[:-2] for pc in sample.head(300).to_list()],
        *[pc.split(" ")[0] for pc in sample.head(300).to_list()],
        *cases,
        "ASCN 1ZZ",
        "NPT 8DP",
        "Denmark",
        "",
        "N/A",
    ]
    hints = [(None, "Denmark", "United Kingdom", "Ireland", "")[i % 5] for i in range(len(inputs))]
    places = locate_many(inputs)
    for area in (local_area("icb", icb_code="QHL"), local_area("wm_region"), custom_area(["E09000033"], label="W")):
        vectorised = tiers_for(places, area, country_hints=hints)
        for row, hint, got in zip(places.iter_rows(named=True), hints, vectorised.iter_rows(), strict=True):
            expected = tier_for(Place(**row), area, country_hint=hint)
            assert got == (expected.tier, expected.confidence, expected.method, expected.reason)
