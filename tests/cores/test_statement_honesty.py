"""The statement PDF never turns unknown into zero, speaks plainly, lists each exclusion once, wraps rather than
cuts its footer, names its suppliers and its accessible version; version 1 snapshots still render."""

from __future__ import annotations

import copy
import io
import re
from typing import Any

from pypdf import PdfReader

from socialvalue.snapshot import SCHEMA_V1, upgrade_snapshot
from socialvalue.statement_pdf import render_statement_pdf
from tests.support.statements import example_snapshot, seal


def _pages(pdf: bytes) -> list[str]:
    return [re.sub(r"\s+", " ", page.extract_text() or "") for page in PdfReader(io.BytesIO(pdf)).pages]


def _text(snapshot: dict[str, Any]) -> str:
    return " ".join(_pages(render_statement_pdf(seal(snapshot))))


def _unknown_status(snapshot: dict[str, Any]) -> dict[str, Any]:
    """Status known for none of the value, as in the make demo statement."""
    for basis in ("headline", "spread_headline"):
        head = snapshot[basis]
        head.update(sme_share=None, vcse_share=None, social_enterprise_share=None)
        head["coverage"].update(status="0.0000", sme="0.0000", vcse="0.0000", social_enterprise="0.0000")
    return snapshot


def test_unknown_status_is_not_known_with_its_coverage_never_zero() -> None:
    text = _text(_unknown_status(example_snapshot()))
    assert "SME share not known not known" in text
    assert "Coverage: SME status known 0.0% 0.0%" in text
    assert "VCSE share not known not known" in text
    assert "SME share 0.0%" not in text
    assert "A share is given only when at least 50.0% of the value could be judged" in text


def test_local_share_not_known_is_the_headline_with_its_coverage() -> None:
    snapshot = example_snapshot()
    head = snapshot["headline"]
    head.update(local_share=None, local_share_known=None, regional_share=None)
    head["coverage"]["locality"] = "0.2000"
    first = _pages(render_statement_pdf(seal(snapshot)))[0]
    assert "Headline figures not known" in first
    assert "The local share is not known: the location of suppliers was known for only 20.0% of the" in first
    assert "not available" not in first


def test_headline_rests_on_named_suppliers_when_few() -> None:
    snapshot = example_snapshot()
    snapshot["headline"].update(contract_count=1, supplier_count=1, supplier_names=["Building Services NOW"])
    assert "It rests on 1 contract with 1 supplier: Building Services NOW." in _text(snapshot)
    many = example_snapshot()
    assert "It rests on 202 contracts with 163 suppliers." in _text(many)


def test_plain_language_glossary_and_accessible_version() -> None:
    snapshot = example_snapshot()
    snapshot["methodology"]["local_definition"].update(preset="own_lad", label="Birmingham (the council's own area)")
    text = _text(snapshot)
    assert "Local means Birmingham (the council's own area): suppliers whose postcode lies in one of these 5" in text
    assert "preset" not in text
    assert "own LAD" not in text
    glossary = text.split("Words used in this statement")[1]
    for term in ("Local", "Coverage", "Not known", "Awarded basis", "Spread basis", "SME", "VCSE", "Social enterprise"):
        assert term in glossary
    assert "published at /public/statements/stmt-rxk-2025q1.html" in text


def test_each_exclusion_is_listed_once() -> None:
    snapshot = example_snapshot()
    snapshot["methodology"]["exclusions"] = []
    text = _text(snapshot)
    assert text.count("Withdrawn or cancelled awards: the money was never committed.") == 1
    assert "Withdrawn and cancelled contracts are left out." not in text


def test_trend_heading_plurals() -> None:
    one = example_snapshot()
    one["trend"] = one["trend"][-1:]
    assert "Local share over the last quarter" in _text(one)
    three = example_snapshot()
    three["trend"] = three["trend"][-3:]
    assert "Local share over the last 3 quarters" in _text(three)


def test_long_anchor_name_wraps_in_the_footer_and_is_never_cut() -> None:
    name = (
        "Birmingham and Solihull Integrated Care Board together with Birmingham Women's and Children's NHS "
        "Foundation Trust and University Hospitals Birmingham NHS Foundation Trust"
    )
    snapshot = example_snapshot(anchor_name=name)
    for page in _pages(render_statement_pdf(seal(snapshot))):
        footer = page.split("Page ")[-1]
        assert "…" not in footer
        assert "University Hospitals Birmingham NHS Foundation Trust ·" in page


def test_supplier_table_names_suppliers_of_any_location() -> None:
    text = _text(example_snapshot())
    assert "Largest suppliers" in text
    assert "National Outsourcing plc Large company Rest of UK £900,000" in text


def test_cash_commitments_are_pounds() -> None:
    snapshot = example_snapshot()
    snapshot["commitments"] = [
        {
            "contract": "Patient meals",
            "supplier": "Brum Community Meals CIC",
            "measure": "Spend with local VCSEs (cash)",
            "unit": "pounds",
            "committed": "5000.00",
            "delivered": "1250.50",
            "verified": "0.00",
        }
    ]
    text = _text(snapshot)
    assert "Spend with local VCSEs (cash) £5,000.00 £1,250.50 £0.00" in text
    assert "(pence)" not in text


def _as_version_1(snapshot: dict[str, Any]) -> dict[str, Any]:
    old = copy.deepcopy(snapshot)
    old["schema"] = SCHEMA_V1
    for basis in ("headline", "spread_headline"):
        for key in ("contract_count", "supplier_names", "coverage", "coverage_threshold"):
            del old[basis][key]
    for point in old["trend"]:
        del point["coverage"]
    del old["top_suppliers"]
    old["methodology"]["exclusions"] = ["Withdrawn and cancelled contracts are left out."]
    return seal(old)


def test_a_version_1_snapshot_still_renders() -> None:
    old = _as_version_1(example_snapshot())
    upgraded = upgrade_snapshot(old)
    assert upgraded["headline"]["coverage"]["locality"] == "0.9269"
    assert upgraded["methodology"]["exclusions"] == []
    text = " ".join(_pages(render_statement_pdf(old)))
    assert "Contracts not recorded" in text
    assert "Coverage: location known 92.7%" in text
    assert "Withdrawn and cancelled contracts are left out." not in text
