"""Postcode parsing, normalisation and extraction (socialvalue.postcodes)."""

import csv

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socialvalue.postcodes import STRICT_UNIT_RE, extract_postcode, normalise_postcode, parse_postcode
from tests.support.paths import GEO_DIR

CASES = list(csv.DictReader((GEO_DIR / "postcode_test_cases.csv").open(encoding="utf-8")))


@pytest.mark.parametrize("case", CASES, ids=[c["input"] or "<empty>" for c in CASES])
def test_parse_matches_shared_fixture(case: dict[str, str]) -> None:
    parsed = parse_postcode(case["input"])
    assert (parsed.normalised or "") == case["normalised"]
    assert str(parsed.strict_valid) == case["strict_format_valid"]


@pytest.mark.parametrize(
    ("text", "level", "special"),
    [
        ("B15 2GW", "unit", None),
        ("B62 0", "sector", None),
        ("b62 0a", "sector", None),
        ("B91", "district", None),
        ("B", "area", None),
        ("BFPO 57", "special", "bfpo"),
        ("bfpo57", "special", "bfpo"),
        ("BF1 3AA", "unit", "bfpo"),
        ("BX1 1LT", "unit", "non_geographic"),
        ("XM4 5HQ", "unit", "non_geographic"),
        ("ZZ99 3VZ", "unit", "nhs_pseudo"),
        ("GIR 0AA", "unit", "girobank"),
        ("ASCN 1ZZ", "unit", "overseas_territory"),
        ("GX11 1AA", "unit", "overseas_territory"),
        ("BT1 1AA", "unit", "northern_ireland"),
        ("BT1", "district", "northern_ireland"),
        ("GY1 1AA", "unit", "crown_dependency"),
        ("IM1 1AA", "unit", "crown_dependency"),
        ("NPT 8DP", "unit", None),
        ("N/A", "invalid", None),
        ("Denmark", "invalid", None),
        ("12345", "invalid", None),
    ],
)
def test_parse_levels_and_specials(text: str, level: str, special: str | None) -> None:
    parsed = parse_postcode(text)
    assert (parsed.level, parsed.special) == (level, special)


def test_partial_forms_are_canonical() -> None:
    assert parse_postcode("b62 0a").normalised == "B62 0"
    assert parse_postcode("sw1a").normalised == "SW1A"
    assert parse_postcode("BFPO 0057").normalised == "BFPO 57"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("b152gw", "B15 2GW"),
        (" B4  6NH ", "B4 6NH"),
        ("b15-2gw", "B15 2GW"),
        ("B1 1CB", None),  # C is not allowed in the inward code
        ("QA1 1AA", None),  # Q cannot start a postcode
        ("ZZ99 3VZ", None),
        ("B62 0", None),
        ("BFPO 57", None),
        ("GIR 0AA", "GIR 0AA"),
        ("", None),
    ],
)
def test_normalise_postcode(text: str, expected: str | None) -> None:
    assert normalise_postcode(text) == expected


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        # Damaged Contracts Finder line breaks ("\r\n" -> "rn", "\n" -> "n"), all real 2025 sample text.
        ("Birminghamrnb15 2gwrn", "B15 2GW"),
        ("135 CHERRYWOOD ROADnBORDESLEY GREENnBIRMINGHAMnB9 4XE", "B9 4XE"),
        ("Second Floorn66-68 East SmithfieldnRoyal Pharmaceutical buildingnLondonnE1W 1AW", "E1W 1AW"),
        ("2 Burston Road,nLONDONnSW15 6ARnGB", "SW15 6AR"),
        ("Coach house , Hatton House, Warwick, Warwickshire, United Kingdom, CV357LD", "CV35 7LD"),
        ("170 sedgemoor close, United Kingdom, Cv34dz", "CV3 4DZ"),
        ("CALIFORNIA | 120 COOMBE LANE | LONDON | SW20 OBA", "SW20 0BA"),
        ("APEX HOUSE, 1 ORRELL MOUNT,\r\n\r\nLIVERPOOL, L20-6NS", "L20 6NS"),
        ("401 Faraday Street, Birchwood Park, Warrington, Cheshire WA3\n6GA", "WA3 6GA"),
        ("1 More London Place, London, SE1 2AF SE1 2AF", "SE1 2AF"),
        # Last plausible postcode wins.
        ("Formerly B1 1BB, now at CV1 5RR", "CV1 5RR"),
        # Look-alikes that are not UK postcodes.
        ("3001 Solent RoadrnKanatarnOntariornCanadarnK2K 2MB", None),
        ("Birr, Co. Offaly, Ireland, R42 EK09", None),
        ("800 Hicks Rd, Rolling Meadows, IL60008 USA", None),
        ("SUITE 4 5TH FLOOR", None),
        ("UNITB15 2GW", None),  # glued to a word that is not a damaged line break
        ("N/A", None),
        ("", None),
    ],
)
def test_extract_postcode(address: str, expected: str | None) -> None:
    assert extract_postcode(address) == expected


# Real postcodes drawn from the shared unit table (live and terminated, strict-valid).
REAL = ["B15 2GW", "WV10 0QP", "SW1A 2AA", "EC1A 1BB", "W1A 0AX", "M1 1AE", "CV34 5BW", "NE1 1LE", "E14 5GL"]


@settings(max_examples=200, deadline=None)
@given(
    postcode=st.sampled_from(REAL),
    prefix=st.sampled_from(["", "1 High Street, Town, ", "Unit 4\r\nPark\r\n", "Roadn", "Housern ", "x, "]),
    suffix=st.sampled_from(["", ", United Kingdom", "rnUnited Kingdom", "n", " UK", "\nGB"]),
    squash=st.booleans(),
    lower=st.booleans(),
)
def test_extract_finds_postcode_in_address_shapes(
    postcode: str, prefix: str, suffix: str, squash: bool, lower: bool
) -> None:
    written = postcode.replace(" ", "") if squash else postcode
    written = written.lower() if lower else written
    assert extract_postcode(prefix + written + suffix) == postcode


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ,-", max_size=30))
def test_extract_returns_only_strict_valid_postcodes(text: str) -> None:
    found = extract_postcode(text)
    assert found is None or STRICT_UNIT_RE.match(found)
