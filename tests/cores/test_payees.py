"""Payee matching: precision on a labelled set of real payee names, and the rules one by one."""

import csv

import polars as pl

from importers.spend import read_spend_file
from socialvalue.payees import attach_matches, match_payees, payee_key, payees_of
from tests.support.paths import FIXTURES_DIR

SPEND = FIXTURES_DIR / "spend"


def _master() -> pl.DataFrame:
    return pl.read_csv(SPEND / "supplier_master.csv", infer_schema=False)


def test_precision_on_labelled_real_payees() -> None:
    labelled = list(csv.DictReader((SPEND / "payees_labelled.csv").open()))
    assert len(labelled) >= 100
    payees = pl.DataFrame(
        {
            "name": [r["payee"] for r in labelled],
            "vat_number": [r["vat_number"] or None for r in labelled],
            "company_number": [(r["company_number"] or "").zfill(8) or None for r in labelled],
        }
    ).with_columns(pl.col("company_number").replace("00000000", None))
    result = match_payees(payees, _master())
    assert result.height == len(labelled)
    expected = {r["payee"]: r["expected_supplier_id"] or None for r in labelled}
    auto = result.filter(pl.col("status") == "matched")
    correct = sum(1 for name, sid in auto.select("name", "supplier_id").iter_rows() if expected[name] == sid)
    wrong = auto.height - correct
    precision = correct / auto.height
    in_master = sum(1 for v in expected.values() if v)
    review = result.filter(pl.col("status") == "review")
    review_has_right = sum(
        1 for name, cands in review.select("name", "candidates").iter_rows()
        if expected[name] in {c["supplier_id"] for c in cands}
    )  # fmt: skip
    new_wrongly = sum(1 for name in result.filter(pl.col("status") == "new")["name"] if expected[name])
    print(
        f"\npayee matching on {len(labelled)} labelled real payees ({in_master} in the master of "
        f"{_master().height}, incl. decoys): automatic {auto.height}, correct {correct}, wrong {wrong}, "
        f"precision {precision:.3f}; recall {correct / in_master:.3f}; review {review.height} "
        f"(right supplier among candidates for {review_has_right}); new {result.height - auto.height - review.height} "
        f"(of which in master {new_wrongly})"
    )
    print("methods:", dict(auto["method"].value_counts().iter_rows()))
    assert precision >= 0.98
    assert correct / in_master >= 0.8  # the test would pass vacuously if nothing were matched


def test_identifiers_first_then_names_then_review() -> None:
    master = pl.DataFrame(
        {
            "supplier_id": ["1", "2", "3", "4", "5", "6"],
            "name": ["Castle Water Limited", "Castle Waters Ltd", "The Big Word Group", "Acme Ltd", "Acme Limited",
                     "Health Services Laboratories (Analytics) LLP"],
            "vat_number": [None, None, None, None, None, "223219932"],
            "company_number": ["01111111", None, None, None, None, None],
        }
    )  # fmt: skip
    payees = pl.DataFrame(
        {
            "name": ["CASTLE WATER LTD", "Castle Water Ltd", "Castel Water Ltd", "Thebigword Group", "Acme Ltd",
                     "Hsl (Analytics) Llp", "Nobody Like Us Ltd"],
            "vat_number": [None, None, None, None, None, "223219932", None],
            "company_number": [None, "02222222", None, None, None, None, None],
        }
    )  # fmt: skip
    rows = {r["name"]: r for r in match_payees(payees, master).iter_rows(named=True)}
    assert (rows["CASTLE WATER LTD"]["status"], rows["CASTLE WATER LTD"]["supplier_id"]) == ("matched", "1")
    assert rows["Castle Water Ltd"]["status"] == "review"  # name matches, published company number differs
    assert rows["Castle Water Ltd"]["method"] == "name; company_number differs"
    assert rows["Castel Water Ltd"]["status"] == "review"
    assert {c["supplier_id"] for c in rows["Castel Water Ltd"]["candidates"]} >= {"1", "2"}
    assert (rows["Thebigword Group"]["supplier_id"], rows["Thebigword Group"]["method"]) == ("3", "name without spaces")
    assert rows["Acme Ltd"]["status"] == "review"  # two suppliers share the name
    assert (rows["Hsl (Analytics) Llp"]["supplier_id"], rows["Hsl (Analytics) Llp"]["method"]) == ("6", "vat_number")
    assert rows["Nobody Like Us Ltd"]["status"] == "new"


def test_abbreviations_and_vendor_prefix_stripped_names() -> None:
    assert payee_key("St Georges Healthcare NHST") == "saint georges healthcare nhs trust"
    assert payee_key("Royal Bor of Kingston Upon Tha") == "royal borough of kingston upon tha"
    spend = read_spend_file(SPEND / "nhs_kingston-trust_2020-06_over25k_vendorcode-prefix.csv")
    master = pl.DataFrame({"supplier_id": ["9"], "name": ["BOOTS UK LIMITED"]})
    matches = match_payees(payees_of(spend.lines), master)
    lines = attach_matches(spend.lines, matches)
    assert lines.height == spend.lines.height
    boots = lines.filter(pl.col("vendor_code") == "UK0092855501")
    assert boots["supplier_id"].to_list() == ["9"] * boots.height
    assert boots["match_status"].unique().to_list() == ["matched"]


def test_redacted_lines_are_never_payees() -> None:
    spend = read_spend_file(SPEND / "council_leeds_2013-12_spend_localspendingdata-schema.csv")
    payees = payees_of(spend.lines)
    assert not payees["name"].str.contains("(?i)redacted").any()
    master = pl.DataFrame({"supplier_id": ["1"], "name": ["Redacted Personal Data Ltd"]})
    lines = attach_matches(spend.lines, match_payees(payees, master))
    assert lines.filter(pl.col("redacted"))["supplier_id"].null_count() == int(spend.lines["redacted"].sum())
