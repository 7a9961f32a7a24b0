"""Register loaders (importers.registers) on files in the exact real formats, including malformed rows."""

import json
import zipfile
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from importers.registers import REGISTER_SCHEMA, RegisterError, load_register, open_register, read_manifest
from tests.cores.registers_support import CH_CSV, REGISTERS_DIR, VERSION, multi_part_zips, one_file_zip

REAL_ROW = REGISTERS_DIR / "ch_basiccompanydata_header_plus_1_real_row.csv"


def test_the_fixture_keeps_the_real_header_with_its_leading_spaces() -> None:
    header = CH_CSV.read_text(encoding="utf-8").splitlines()[0]
    assert header == REAL_ROW.read_text(encoding="utf-8").splitlines()[0]
    assert ", CompanyNumber," in header
    assert ", PreviousName_1.CompanyName," in header


def test_one_file_zip_loads_the_real_row_with_every_field(tmp_path: Path) -> None:
    summary = load_register("companies_house", [one_file_zip(tmp_path)], tmp_path / "store")
    frame, manifest = open_register(tmp_path / "store", "companies_house")
    assert frame.schema == pl.Schema(REGISTER_SCHEMA)
    assert summary.rows == frame.height == CH_CSV.read_text(encoding="utf-8").count("\n") - 1
    assert manifest == summary == read_manifest(tmp_path / "store" / "companies_house.parquet")
    assert manifest.version == VERSION
    assert manifest.version_source == "file name"
    assert len(manifest.sources[0]["sha256"]) == 64
    real = frame.filter(pl.col("number") == "07687209").to_dicts()
    assert real == [
        {
            "register": "companies_house", "number": "07687209", "name": "!OBAC UK LIMITED", "name_key": "obac uk",
            "previous_names": ["!OBAC FITTINGS LIMITED"], "postcode": "RG26 5AT", "status": "Active",
            "current": True, "category": "Private Limited Company", "account_category": "TOTAL EXEMPTION FULL",
            "sic": ["70229"], "incorporated": date(2011, 6, 29), "removed": None, "linked_number": None,
            "company_number": "07687209",
        }
    ]  # fmt: skip
    dissolved = frame.filter(pl.col("status") == "Dissolved")
    assert dissolved.height > 0
    assert not dissolved["current"].any()
    assert dissolved["removed"].is_not_null().all()
    on_disk = json.loads((tmp_path / "store" / "companies_house.json").read_text(encoding="utf-8"))
    assert on_disk["rows"] == summary.rows
    assert on_disk["version"] == VERSION


def test_multi_part_zips_give_the_same_register_as_one_file(tmp_path: Path) -> None:
    one = load_register("companies_house", [one_file_zip(tmp_path)], tmp_path / "one")
    parts = multi_part_zips(tmp_path)
    many = load_register("companies_house", parts, tmp_path / "many")
    assert many.rows == one.rows
    assert len(many.sources) == 3
    a = open_register(tmp_path / "one", "companies_house")[0].sort("number")
    b = open_register(tmp_path / "many", "companies_house")[0].sort("number")
    assert a.equals(b)


def test_an_incomplete_multi_part_download_is_refused(tmp_path: Path) -> None:
    parts = multi_part_zips(tmp_path)
    with pytest.raises(RegisterError, match="missing parts \\[2\\]"):
        load_register("companies_house", [parts[0], parts[2]], tmp_path / "store")


def test_malformed_rows_are_reported_and_never_fatal(tmp_path: Path) -> None:
    lines = REAL_ROW.read_text(encoding="utf-8").splitlines()
    good = lines[1]
    fields = good.split('","')
    bad_number = good.replace('"07687209"', '"NOT-A-NUM"')
    no_name = good.replace('"!OBAC UK LIMITED"', '""').replace('"07687209"', '"07687210"')
    bad_date = good.replace('"29/06/2011"', '"31/02/2011"').replace('"07687209"', '"07687211"')
    short = '"SHORT ROW LIMITED","07687212","","'  # cut off mid-row, as a truncated download would be
    extra = good.replace('"07687209"', '"07687213"') + ',"surplus","fields"'
    body = "\n".join([lines[0], good, bad_number, no_name, bad_date, short, extra]) + "\n"
    assert len(fields) > 50
    path = tmp_path / f"BasicCompanyData-{VERSION}.csv"
    path.write_text(body, encoding="utf-8")
    summary = load_register("companies_house", [path], tmp_path / "store")
    problems = {(n.row, n.problem, n.value) for n in summary.notes}
    assert (2, "CompanyNumber is not a company number", "NOT-A-NUM") in problems
    assert (3, "CompanyName is empty", "") in problems
    assert (4, "unparseable IncorporationDate", "31/02/2011") in problems
    frame = open_register(tmp_path / "store", "companies_house")[0]
    numbers = set(frame["number"])
    assert numbers >= {"07687209", "07687211", "07687213"}
    assert "07687210" not in numbers
    assert frame.filter(pl.col("number") == "07687211")["incorporated"].to_list() == [None]
    # A row cut off inside a quoted field would swallow the rest of the file: it is skipped and reported.
    assert (5, "unbalanced quotes (row cut off or broken)", short) in problems
    assert summary.skipped == 3  # bad number, empty name, cut-off row; the bad date keeps its row
    assert frame.height == 3


def test_reload_replaces_atomically_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    store = tmp_path / "store"
    load_register("companies_house", [one_file_zip(tmp_path)], store)
    small = tmp_path / "BasicCompanyData-2025-12-01.csv"
    small.write_text("\n".join(REAL_ROW.read_text(encoding="utf-8").splitlines()[:2]) + "\n", encoding="utf-8")
    summary = load_register("companies_house", [small], store)
    frame, manifest = open_register(store, "companies_house")
    assert (frame.height, manifest.version, summary.version) == (1, "2025-12-01", "2025-12-01")
    with pytest.raises(RegisterError):
        load_register("companies_house", [tmp_path / "BasicCompanyData-nodate.csv"], store)
    broken = tmp_path / "BasicCompanyData-2026-01-01.csv"
    broken.write_text("Not,A,Companies,House,Header\n1,2,3,4,5\n", encoding="utf-8")
    with pytest.raises(RegisterError, match="missing columns"):
        load_register("companies_house", [broken], store)
    assert open_register(store, "companies_house")[1].version == "2025-12-01"  # the failed load changed nothing
    assert sorted(p.name for p in store.iterdir()) == ["companies_house.json", "companies_house.parquet"]


def test_charity_commission_json_and_text_variants_agree(tmp_path: Path) -> None:
    archive = tmp_path / "publicextract.charity.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(REGISTERS_DIR / "publicextract.charity.json", "publicextract.charity.json")
    from_json = load_register("ccew", [archive], tmp_path / "json")
    from_text = load_register("ccew", [REGISTERS_DIR / "publicextract.charity.txt"], tmp_path / "text")
    assert from_json.rows == from_text.rows > 20
    assert from_json.version == from_text.version == VERSION
    assert from_json.version_source == "date_of_extract"
    a = open_register(tmp_path / "json", "ccew")[0].sort("number")
    b = open_register(tmp_path / "text", "ccew")[0].sort("number")
    assert a.equals(b)
    removed = a.filter(pl.col("number") == "1000001").row(0, named=True)
    assert (removed["current"], removed["status"], removed["removed"]) == (False, "Removed", date(2019, 5, 1))
    assert a.filter(pl.col("number") == "1000002")["category"].to_list() == ["CIO"]
    assert a.filter(pl.col("number") == "1000002-1")["linked_number"].to_list() == ["1"]
    assert a["company_number"].drop_nulls().len() > 0


def test_charity_commission_malformed_records_are_reported(tmp_path: Path) -> None:
    records = json.loads((REGISTERS_DIR / "publicextract.charity.json").read_text(encoding="utf-8-sig"))[:3]
    records[1]["registered_charity_number"] = "abc"
    text = json.dumps(records)
    text = text[:-1] + ', {"registered_charity_number": 5, "charity_name": "TRUNCATED' + "]"
    path = tmp_path / "publicextract.charity.json"
    path.write_text(text, encoding="utf-8")
    summary = load_register("ccew", [path], tmp_path / "store")
    assert summary.rows == 2
    assert summary.skipped == 2
    assert [n.problem.split(":")[0] for n in summary.notes] == [
        "registered_charity_number 'abc' is not a charity number",
        "invalid JSON",
    ]
    tsv = (REGISTERS_DIR / "publicextract.charity.txt").read_text(encoding="utf-8").splitlines()
    bad = tmp_path / "publicextract.charity.txt"
    bad.write_text("\n".join([*tsv[:4], "123\tonly two fields", *tsv[4:6]]) + "\n", encoding="utf-8")
    summary = load_register("ccew", [bad], tmp_path / "store2")
    assert summary.rows == 5
    assert [(n.row, n.problem) for n in summary.notes] == [(4, "2 fields, header has 34")]


def test_oscr_current_and_removed_files(tmp_path: Path) -> None:
    main = tmp_path / "CharityExport-01-Nov-2025.csv"
    main.write_text(
        "Charity Number,Charity Name,Registered Date,Known As,Charity Status,Postcode,Constitutional Form\n"
        "SC012345,Highland Hospice,01/06/1984,,Active,IV2 3UJ,Scottish Charitable Incorporated Organisation (SCIO)\n"
        "SC01234X,Broken Number Trust,01/06/1984,,Active,IV2 3UJ,Trust (founding deed)\n",
        encoding="utf-8",
    )
    summary = load_register("oscr", [main, REGISTERS_DIR / "CharityExport-Removed-01-Nov-2025.csv"], tmp_path / "s")
    frame = open_register(tmp_path / "s", "oscr")[0].sort("number")
    assert summary.version == VERSION
    assert summary.skipped == 1
    assert frame.select("number", "current", "postcode").rows() == [
        ("SC000123", False, "G1 1AA"),
        ("SC012345", True, "IV2 3UJ"),
    ]


def test_fca_society_list_with_its_real_header_typo(tmp_path: Path) -> None:
    path = REGISTERS_DIR / "SocietyList.csv"
    assert "Full Registation Number" in path.read_text(encoding="utf-8").splitlines()[0]
    summary = load_register("fca_mutuals", [path], tmp_path / "s")
    frame = open_register(tmp_path / "s", "fca_mutuals")[0]
    gone = frame.filter(pl.col("number") == "7001R").row(0, named=True)
    assert (gone["current"], gone["removed"], gone["postcode"]) == (False, date(2021, 7, 15), "LS2 9JT")
    assert summary.version_source == "latest date in data"
    given = load_register("fca_mutuals", [path], tmp_path / "s", version="2025-11-03")
    assert (given.version, given.version_source) == ("2025-11-03", "given")
