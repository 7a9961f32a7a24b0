"""extract_postcode on hand-labelled real Contracts Finder supplier addresses.

Each expected postcode in the fixture was read and typed by a person from the address text; the LAD is
the shipped unit table's LAD for that postcode.
"""

import csv

import polars as pl

from socialvalue.geography import locate_many
from socialvalue.postcodes import extract_postcode
from tests.support.paths import FEEDS_DIR, FIXTURES_DIR

ROWS = list(csv.DictReader((FIXTURES_DIR / "labelled_supplier_addresses.csv").open(encoding="utf-8")))


def test_fixture_is_real_and_large_enough() -> None:
    assert len(ROWS) >= 150
    files = {row["source_file"] for row in ROWS}
    assert any(name.startswith("releases-2025") for name in files)
    assert any(name.startswith("legacy-") for name in files)
    for name in files:
        text = (FEEDS_DIR / "contracts-finder" / name).read_text(encoding="utf-8")
        assert text  # every labelled address comes from a stored feed file


def test_precision_and_recall() -> None:
    true_pos = false_pos = false_neg = 0
    for row in ROWS:
        expected = row["expected_postcode"] or None
        found = extract_postcode(row["address_text"])
        if found is not None:
            if found == expected:
                true_pos += 1
            else:
                false_pos += 1
        if expected is not None and found != expected:
            false_neg += 1
    precision = true_pos / (true_pos + false_pos)
    recall = true_pos / (true_pos + false_neg)
    print(f"\nextract_postcode on {len(ROWS)} labelled addresses: precision {precision:.4f}, recall {recall:.4f}")
    print(f"  true positives {true_pos}, false positives {false_pos}, false negatives {false_neg}")
    assert precision >= 0.99
    assert recall >= 0.90


def test_expected_lads_agree_with_locator() -> None:
    labelled = [row for row in ROWS if row["expected_postcode"]]
    frame = locate_many([row["expected_postcode"] for row in labelled])
    assert frame["lad_code"].fill_null("").to_list() == [row["expected_lad_code"] for row in labelled]
    assert (frame["method"] == "unit").all()
    assert pl.Series([row["expected_lad_code"] for row in labelled]).str.len_chars().min() == 9
