"""Spend files: every real payments file against independent figures, plus hand-made raw layouts."""

import csv
import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest
import xlsxwriter

from importers.spend import (
    detect_layout,
    map_columns,
    parse_date,
    parse_pence,
    read_spend_bytes,
    read_spend_file,
    redaction_kind,
    split_vendor_code,
)
from tests.support.paths import FIXTURES_DIR

SPEND = FIXTURES_DIR / "spend"
EXPECTED = {row["file"]: row for row in csv.DictReader((SPEND / "expected.csv").open())}
MAPPINGS: dict[str, dict[str, str]] = json.loads((SPEND / "mappings.json").read_text())


def test_every_real_payments_file_is_covered() -> None:
    assert sorted(EXPECTED) == sorted(p.name for p in SPEND.glob("*.csv") if p.name in EXPECTED)
    assert len(EXPECTED) == 10
    real = {p.name for p in SPEND.glob("*.csv")} - {"expected.csv", "payees_labelled.csv", "supplier_master.csv"}
    assert real == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_file_lines_total_redacted_transactions(name: str) -> None:
    expected = EXPECTED[name]
    spend = read_spend_file(SPEND / name, MAPPINGS.get(name))
    assert spend.line_count == int(expected["lines"])
    assert spend.total_pence == int(expected["total_pence"])
    assert spend.redacted_total_pence == int(expected["redacted_pence"])
    assert spend.transaction_count == int(expected["transactions"])
    assert spend.lines["amount_pence"].dtype == pl.Int64
    assert spend.lines["date"].dtype == pl.Date
    # Redacted lines never carry a supplier name to match.
    assert spend.lines.filter(pl.col("redacted"))["supplier_clean"].null_count() == spend.lines["redacted"].sum()


def test_layouts_and_mapped_columns() -> None:
    layouts = {name: read_spend_file(SPEND / name).layout for name in EXPECTED}
    assert layouts["nhs_kingston-trust_2020-06_over25k_vendorcode-prefix.csv"] == "hmt_25k"
    assert layouts["central_cabinetoffice_2022-07_over25k.csv"] == "hmt_25k"
    assert layouts["council_calderdale_2022-08_over500_companyno_vcse.csv"] == "transparency_code_500"
    assert layouts["council_leeds_2013-12_spend_localspendingdata-schema.csv"] == "local_spending_data"
    assert layouts["westmids_sutton-coldfield-town-council_2016-17_over250.csv"] == "custom"
    royal_free = read_spend_file(SPEND / "nhs_royal-free-ft_2020-Q1_over25k_with_VATreg.csv")
    assert royal_free.columns_mapped["Dept Family"] == "department_family"
    assert royal_free.columns_mapped["VAT Registration Number"] == "vat_number"
    assert royal_free.columns_unmapped == ["Accounting Year", "Period"]
    calderdale = read_spend_file(SPEND / "council_calderdale_2022-08_over500_companyno_vcse.csv")
    assert calderdale.columns_mapped["Organisation Name"] == "body"  # "Body" is a URI and stays unmapped
    assert "Body" in calderdale.columns_unmapped
    assert calderdale.amount_basis == "net"
    assert calderdale.lines["vcse"].sum() == 26
    assert calderdale.lines["company_number"].drop_nulls().str.len_chars().unique().to_list() == [8]
    assert "08911274" in calderdale.lines["company_number"].to_list()  # published as 8911274
    assert royal_free.amount_basis == "unstated"


def test_kingston_vendor_codes_and_uk_month_dates() -> None:
    spend = read_spend_file(SPEND / "nhs_kingston-trust_2020-06_over25k_vendorcode-prefix.csv")
    first = spend.lines.row(0, named=True)
    assert first["vendor_code"] == "UK0479435601"
    assert first["supplier_clean"] == "Prime Care Solutions (Kingston) Ltd"
    assert first["date"] == dt.date(2020, 5, 12)
    assert first["amount_pence"] == 169_795_630
    assert spend.lines["vendor_code"].null_count() == 0


def test_chelsea_windows_1252_and_negative_credit_notes() -> None:
    spend = read_spend_file(SPEND / "nhs_chelsea-westminster-ft_2020-04_over25k.csv")
    assert spend.encoding == "cp1252"
    assert spend.lines.filter(pl.col("supplier_clean") == "Nhs Supply Chain")["amount_pence"].min() == -13_287_652
    assert spend.lines["date"].min() == dt.date(2020, 4, 2)


def test_manchester_double_encoded_bom_and_redactions() -> None:
    spend = read_spend_file(SPEND / "council_manchester_2022-05_over500.csv")
    assert "Body Name" in spend.columns_mapped
    assert spend.file_notes == ["dropped a double-encoded byte order mark"]
    kinds = dict(spend.lines["redaction_kind"].value_counts().iter_rows())
    assert kinds["personal"] == 118
    assert spend.lines.filter(pl.col("supplier_raw") == "Total Gas & Power").height == 1  # a supplier, not a total


def test_harrogate_redactive_publishing_is_a_supplier_and_split_lines_count_once() -> None:
    spend = read_spend_file(SPEND / "council_harrogate_2022-08_over500.csv")
    redactive = spend.lines.filter(pl.col("supplier_raw") == "REDACTIVE PUBLISHING LIMITED")
    assert redactive.height == 2
    assert not redactive["redacted"].any()
    assert redactive["transaction"].n_unique() == 1
    assert spend.lines.filter(pl.col("supplier_raw") == "REDACTED PERSONAL DATA")["redacted"].all()


def test_brent_saved_mapping_swaps_the_pdf_columns_and_blank_dates_are_notes() -> None:
    name = "ccg_brent_2020-04_over25k_from-pdf.csv"
    default = read_spend_file(SPEND / name)
    mapped = read_spend_file(SPEND / name, MAPPINGS[name])
    assert default.lines["expense_area"][0] == "Clinical&Medical-Commercial Sector"
    assert mapped.lines["expense_type"][0] == "Clinical&Medical-Commercial Sector"
    assert mapped.lines["expense_area"][0] == "COMMUNITY SERVICES"
    assert mapped.columns_mapped["Expense Area"] == "expense_type"
    notes = mapped.notes.filter(pl.col("problem") == "missing date")
    assert notes["row"].to_list() == [51, 58, 154, 196, 255, 300, 340]  # file line numbers
    assert mapped.lines.height == 395  # the undated lines are kept


def test_royal_free_blank_amount_and_foreign_vat_are_notes() -> None:
    spend = read_spend_file(SPEND / "nhs_royal-free-ft_2020-Q1_over25k_with_VATreg.csv")
    rows = spend.notes.rows(named=True)
    assert {"row": 190, "column": "Amount", "value": None, "problem": "missing amount"} in rows
    assert {
        "row": 97,
        "column": "VAT Registration Number",
        "value": "DE174312921",
        "problem": "not a UK VAT number",
    } in rows
    assert spend.lines.filter(pl.col("row") == 190).height == 1
    assert spend.lines.filter(pl.col("vat_number") == "223219932").height > 0


# ------------------------------------------------------------------------------------------ hand-made files
def test_title_rows_uk_dates_windows_1252_totals_row_and_bad_values() -> None:
    text = (
        "Spend over £500 - Example District Council\r\n"
        "Report run on 01/06/2020,,,,\r\n"
        ",,,,\r\n"
        "Payment Date,Supplier Name,Transaction Number,Net Amount,Expense Type\r\n"
        '13/05/2020,Café Nero Ltd,T1,"£1,234.50",Catering\r\n'
        "13/05/2020,Café Nero Ltd,T1,(34.50),Catering\r\n"
        "05-Apr-20,REDCATED PERSONAL DATA,T2,500,Care\r\n"
        "2020-05-31,Redactive Publishing Ltd,T3,600.00-,Advertising\r\n"
        "31/02/2020,Widget Co,T4,12.345,Things\r\n"
        "43956,   ,T5,1 000,Grants\r\n"
        ",,,,\r\n"
        'Total,,,"2,300.00",\r\n'
    )
    spend = read_spend_bytes(text.encode("cp1252"), "example.csv")
    assert spend.encoding == "cp1252"
    assert spend.header_row == 4
    assert spend.rows_skipped_totals == 1
    assert spend.rows_skipped_blank == 1
    lines = spend.lines
    assert lines["row"].to_list() == [5, 6, 7, 8, 9, 10]
    assert lines["supplier_clean"].to_list() == [
        "Café Nero Ltd", "Café Nero Ltd", None, "Redactive Publishing Ltd", "Widget Co", None,
    ]  # fmt: skip
    assert lines["amount_pence"].to_list() == [123_450, -3_450, 50_000, -60_000, None, 100_000]
    assert lines["date"].to_list() == [
        dt.date(2020, 5, 13), dt.date(2020, 5, 13), dt.date(2020, 4, 5), dt.date(2020, 5, 31), None,
        dt.date(2020, 5, 5),
    ]  # fmt: skip
    assert lines["redaction_kind"].to_list() == [None, None, "personal", None, None, "blank"]
    assert spend.transaction_count == 5
    problems = {(n["row"], n["column"], n["value"], n["problem"]) for n in spend.notes.iter_rows(named=True)}
    assert (12, "(row)", None, "totals row skipped") in problems
    assert (
        9,
        "Payment Date",
        "31/02/2020",
        next(p for r, _c, _v, p in problems if r == 9 and _c == "Payment Date"),
    ) in problems
    assert (9, "Net Amount", "12.345", "not an amount in pounds and pence") in problems
    assert spend.amount_basis == "net"


def test_typo_headers_and_saved_mapping_for_unusual_headers() -> None:
    text = "Dept Family,Entuty,Date,Suppler,Amount\nDoH,Some Trust,2020-04-01,Acme Ltd,100\n"
    spend = read_spend_bytes(text.encode(), "typo.csv")
    assert spend.fuzzy_headers == {"Entuty": "body", "Suppler": "supplier"}
    assert spend.lines["body"].to_list() == ["Some Trust"]
    odd = 'When,Who got it,How much (inc VAT)\n01/04/2020,Acme Ltd,"1,000"\n'
    with pytest.raises(ValueError, match="no header row"):
        read_spend_bytes(odd.encode(), "odd.csv")
    mapping = {"When": "date", "Who got it": "supplier", "How much (inc VAT)": "amount"}
    spend = read_spend_bytes(odd.encode(), "odd.csv", mapping)
    assert spend.lines.select("date", "supplier_clean", "amount_pence").row(0) == (
        dt.date(2020, 4, 1),
        "Acme Ltd",
        100_000,
    )
    assert spend.amount_basis == "gross"
    with pytest.raises(ValueError, match="unknown fields"):
        map_columns(["a"], {"a": "supplier_name"})


def test_xlsx_with_title_rows_excel_dates_and_numbers(tmp_path: Path) -> None:
    path = tmp_path / "spend.xlsx"
    book = xlsxwriter.Workbook(path)
    sheet = book.add_worksheet()
    sheet.write(0, 0, "NHS Example Trust - expenditure over £25,000 - April 2020")
    sheet.write_row(
        2, 0, ["Department Family", "Entity", "Date", "Expense Type", "Supplier", "Transaction Number", "Amount"]
    )
    uk = book.add_format({"num_format": "dd/mm/yyyy"})
    sheet.write_row(3, 0, ["Department of Health", "NHS Example Trust"])
    sheet.write_datetime(3, 2, dt.datetime(2020, 4, 5), uk)
    sheet.write_row(3, 3, ["Drugs", "UK0092855501 : Boots UK Ltd", "1800095309"])
    sheet.write_number(3, 6, 251060.56)
    sheet.write_row(4, 0, ["Department of Health", "NHS Example Trust", 43956, "Drugs", "NHS Pensions", 42])
    sheet.write_number(4, 6, 0.1 + 0.2)  # a binary float: 0.30000000000000004
    sheet.write_row(
        5, 0, ["Department of Health", "NHS Example Trust", "13/05/2020", "Drugs", "Acme", "7", "(25,000.00)"]
    )
    book.close()
    spend = read_spend_file(path)
    assert spend.layout == "hmt_25k"
    assert spend.header_row == 3
    lines = spend.lines
    assert lines["row"].to_list() == [4, 5, 6]
    assert lines["date"].to_list() == [dt.date(2020, 4, 5), dt.date(2020, 5, 5), dt.date(2020, 5, 13)]
    assert lines["amount_pence"].to_list() == [25_106_056, 30, -2_500_000]
    assert lines["vendor_code"].to_list() == ["UK0092855501", None, None]
    assert lines["supplier_clean"][0] == "Boots UK Ltd"
    assert spend.notes.height == 0


# ------------------------------------------------------------------------------------------------- pieces
@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("REDACTED PERSONAL DATA", "personal"),
        ("REDCATED PERSONAL DATA", "personal"),
        ("Redacted  Personal Data", "personal"),
        ("Redacted Personal Information T/A Smith's Taxis", "personal"),
        ("REDACTED - COMMERCIAL SENSITIVITY", "commercial"),
        ("Commercially sensitive", "commercial"),
        ("Personal Data", "personal"),
        ("Private Individual", "personal"),
        ("Name withheld", "other"),
        ("Redacted", "other"),
        ("", "blank"),
        ("  -  ", "blank"),
        (None, "blank"),
        ("Redactive Publishing Ltd", None),
        ("REDACTIVE PUBLISHING LIMITED", None),
        ("RedCare Ltd", None),
        ("Reactive Maintenance Services Ltd", None),
        ("Personal Budgets", None),
        ("Personal Touch Care Ltd", None),
        ("Individual Pursuits CIC", None),
        ("Total Gas & Power", None),
        ("Confidential Shredding Services Ltd", None),
        ("Sensitive Skin Care Ltd", None),
    ],
)
def test_redaction_rule(text: str | None, kind: str | None) -> None:
    assert redaction_kind(text) == kind


def test_amounts_are_exact_pence() -> None:
    raw = ["£1,234.56", "-5", "(7.10)", "7.1-", "12 CR", ".5", "100.000", "100.001", "", "abc", "1e3", "-£3.00"]
    out = pl.DataFrame({"a": raw}).select(parse_pence(pl.col("a").replace("", None))).to_series()
    assert out.to_list() == [123_456, -500, -710, -710, -1200, 50, 10_000, None, None, None, None, -300]


def test_dates() -> None:
    raw = [
        "05-Apr-20",
        "13/05/2020",
        "2020-05-13",
        "2020-05-13T00:00:00+01:00",
        "05/04/20",
        "43956",
        "31/02/2020",
        "1/1/1900",
    ]
    out = pl.DataFrame({"a": raw}).select(parse_date(pl.col("a"))).to_series().to_list()
    assert out == [
        dt.date(2020, 4, 5), dt.date(2020, 5, 13), dt.date(2020, 5, 13), dt.date(2020, 5, 13), dt.date(2020, 4, 5),
        dt.date(2020, 5, 5), None, None,
    ]  # fmt: skip


def test_vendor_code_split_leaves_plain_names() -> None:
    assert split_vendor_code("NHS0000RJ701 : St Georges Healthcare NHST") == (
        "NHS0000RJ701",
        "St Georges Healthcare NHST",
    )
    assert split_vendor_code("ABCDEF : Not A Code") == (None, "ABCDEF : Not A Code")
    assert split_vendor_code("Hsl (Analytics) Llp") == (None, "Hsl (Analytics) Llp")


def test_detect_layout_on_headers_alone() -> None:
    assert (
        detect_layout(["BodyName", "DatePaid", "TransactionNumber", "NetAmount", "SupplierName"])
        == "local_spending_data"
    )
    assert detect_layout(["Payee", "Amount"]) == "custom"
