"""Influenceable spend: public bodies, taxes and pension schemes are flagged with their rule."""

import polars as pl

from importers.spend import read_spend_file
from socialvalue.influenceable import classify_influenceable
from tests.support.paths import FIXTURES_DIR

SPEND = FIXTURES_DIR / "spend"


def test_rules_on_names_and_expense_types() -> None:
    lines = pl.DataFrame(
        {
            "supplier_clean": [
                "HMRC", "NHS Pensions", "West Yorkshire Pension Fund", "WEST LONDON NHS TRUST",
                "Liverpool University Hospitals Nhs Ft", "NHS CENTRAL LONDON (WESTMINSTER) CCG",
                "LONDON BOROUGH OF BRENT", "Royal Bor of Kingston Upon Tha", "Birmingham City Council",
                "CABINET OFFICE", "Acme Ltd", "Council Cleaning Supplies Ltd", "Trustmarque Solutions Ltd",
                "Pension Insurance Corporation Group Ltd", None, "Dr Smith & Partners",
            ],
            "expense_type": [None] * 15 + ["Statutory Mat Pay"],
        }
    )  # fmt: skip
    out = classify_influenceable(lines)
    assert out["not_influenceable_rule"].to_list() == [
        "tax", "pension scheme", "pension scheme", "nhs body", "nhs body", "nhs body", "council", "council",
        "council", "central government", None, None, None, None, None, None,
    ]  # fmt: skip
    assert out["influenceable"].to_list() == [False] * 10 + [True] * 6
    vat = classify_influenceable(pl.DataFrame({"supplier_clean": ["Acme Ltd"], "expense_type": ["VAT Payable"]}))
    assert vat["not_influenceable_rule"].to_list() == ["tax or pension (expense type)"]


def test_real_brent_file_share_not_influenceable() -> None:
    spend = read_spend_file(
        SPEND / "ccg_brent_2020-04_over25k_from-pdf.csv",
        {"Expense Area": "expense_type", "Expense Type": "expense_area"},
    )
    out = classify_influenceable(spend.lines)
    rules = dict(out["not_influenceable_rule"].value_counts().iter_rows())
    assert rules["nhs body"] > 0
    assert rules["tax"] > 0  # HMRC
    assert rules["council"] > 0  # London Borough of Brent
    excluded = out.filter(~pl.col("influenceable"))["amount_pence"].sum()
    assert 0 < excluded < spend.total_pence
