"""Supplier-to-register matching (socialvalue.matching) on a labelled set of real supplier names."""

import csv

import polars as pl
import pytest

from importers.registers import load_register, open_register
from socialvalue.matching import RegisterIndex, SupplierQuery
from tests.cores.registers_support import REGISTERS_DIR, VERSION, one_file_zip


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> RegisterIndex:
    work = tmp_path_factory.mktemp("registers")
    store = work / "store"
    load_register("companies_house", [one_file_zip(work)], store)
    load_register("ccew", [REGISTERS_DIR / "publicextract.charity.json"], store)
    load_register("fca_mutuals", [REGISTERS_DIR / "SocietyList.csv"], store, version=VERSION)
    registers = {}
    for kind in ("companies_house", "ccew", "fca_mutuals"):
        frame, manifest = open_register(store, kind)
        registers[kind] = (frame, manifest.version)
    return RegisterIndex(registers)


def _labelled() -> list[dict[str, str]]:
    with (REGISTERS_DIR / "labelled_suppliers.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _query(row: dict[str, str]) -> SupplierQuery:
    ids = ((row["scheme"], row["identifier"]),) if row["identifier"] else ()
    return SupplierQuery(row["supplier_name"], row["postcode"] or None, ids)


def test_labelled_real_suppliers_precision_and_recall(index: RegisterIndex) -> None:
    rows = _labelled()
    assert len(rows) >= 200
    results = index.match([_query(r) for r in rows])
    correct = wrong = positives = review = 0
    by_method: dict[str, int] = {}
    for row, result in zip(rows, results, strict=True):
        expected = set(filter(None, row["expected"].split("|")))
        positives += bool(expected)
        review += result.status == "review"
        if result.status != "matched":
            continue
        assert result.entry is not None
        assert result.version == VERSION
        assert result.register == result.entry.register
        got = {f"{e.register}:{e.number}" for e in (result.entry, *result.linked)}
        by_method[str(result.method)] = by_method.get(str(result.method), 0) + 1
        if expected & got:
            correct += 1
        else:
            wrong += 1
    precision = correct / (correct + wrong)
    recall = correct / positives
    print(
        f"\nlabelled suppliers: {len(rows)} ({positives} in the register); automatic matches: {correct + wrong} "
        f"{by_method}; correct {correct}, wrong {wrong}; sent to review {review}; "
        f"precision {precision:.3f}, recall {recall:.3f}"
    )
    assert precision >= 0.98
    assert recall >= 0.80


def _row(index: RegisterIndex, register: str, number: str) -> dict[str, object]:
    return index.entries.filter((pl.col("register") == register) & (pl.col("number") == number)).row(0, named=True)


def test_identifier_first_and_a_contradicting_name_goes_to_review(index: RegisterIndex) -> None:
    real = SupplierQuery("!Obac UK Ltd", None, (("GB-COH", "07687209"),))
    wrong_name = SupplierQuery("Totally Different Catering", None, (("GB-COH", "07687209"),))
    by_old_name = SupplierQuery("Obac Fittings Limited", None, (("GB-COH", "07687209"),))
    a, b, c = index.match([real, wrong_name, by_old_name])
    assert (a.status, a.method, a.entry and a.entry.number) == ("matched", "identifier", "07687209")
    assert (b.status, b.reason) == ("review", "the identifier's entry has a different name")
    assert c.status == "matched"  # the entry's previous name agrees with the supplier


def test_a_dissolved_namesake_is_ambiguous_unless_the_postcode_decides(index: RegisterIndex) -> None:
    rows = [
        r for r in _labelled() if "dissolved namesake" in r["case"] and "hard" not in r["case"] and not r["identifier"]
    ]
    row = rows[0]
    number = row["expected"].split(":")[1]
    live = _row(index, "companies_house", number)
    without, with_pc = index.match(
        [SupplierQuery(row["supplier_name"]), SupplierQuery(row["supplier_name"], str(live["postcode"]).lower())]
    )
    assert without.status == "review"
    assert len(without.candidates) >= 2
    assert not all(c.current for c in without.candidates)
    assert (with_pc.status, with_pc.method, with_pc.entry and with_pc.entry.number) == (
        "matched", "name+postcode", number,
    )  # fmt: skip


def test_fuzzy_matches_need_the_postcode_to_be_automatic(index: RegisterIndex) -> None:
    live = _row(index, "companies_house", "07687209")
    typo = "Obacc UK Ltd"  # a doubled letter
    at, nowhere = index.match([SupplierQuery(typo, str(live["postcode"])), SupplierQuery(typo)])
    assert (at.status, at.method) == ("matched", "name+postcode")
    assert at.entry
    assert at.entry.number == "07687209"
    assert at.score < 100
    assert nowhere.status == "review"
    assert nowhere.candidates[0].number == "07687209"
    (none,) = index.match([SupplierQuery("Quixotic Zebra Upholstery")])
    assert (none.status, none.entry, none.candidates) == ("none", None, ())


def test_a_charitable_company_in_two_registers_is_one_organisation(index: RegisterIndex) -> None:
    rows = [r for r in _labelled() if "charitable company" in r["case"] and "hard" not in r["case"]]
    for row in rows:
        (result,) = index.match([SupplierQuery(row["supplier_name"])])
        registers = {e.register for e in (result.entry, *result.linked) if e}
        if "decoy" not in row["case"]:
            assert result.status == "matched"
            assert registers == {"ccew", "companies_house"}
    assert rows
