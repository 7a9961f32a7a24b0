"""Compiling releases per ocid and mapping compiled releases to normalised records, on the real samples.

Expected values were read by hand from the sample JSON (see the comments at each assertion).
"""

import collections
import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from importers.files import iter_releases_from_file
from importers.ocds import (
    _RULE_TREE,
    MERGE_RULES,
    Procurement,
    _unique_ids,
    compile_procurement,
    compile_releases,
    compile_releases_with_notes,
    group_by_ocid,
    is_legacy_cf,
    map_compiled,
    release_hash,
    release_identity,
    upgrade_legacy,
)
from tests.support.paths import FEEDS_DIR

CF_PAGE = FEEDS_DIR / "contracts-finder" / "ocds-search-page-2022-10-20.json"
CF_2025 = FEEDS_DIR / "contracts-finder" / "releases-2025-01-23_2025-03-11.json"
FTS_PACKAGE = FEEDS_DIR / "find-a-tender" / "release-package-032703-2026-tender.json"
LEGACY_DIR = FEEDS_DIR / "contracts-finder" / "legacy-2019-2020-bluetail"


def _releases(path: Path) -> list[dict[str, Any]]:
    return [i.release for i in iter_releases_from_file(path) if i.release is not None]


def _procurements(source: str, path: Path) -> dict[str, Procurement]:
    return {
        ocid: map_compiled(source, compile_releases(group)) for ocid, group in group_by_ocid(_releases(path)).items()
    }


@pytest.fixture(scope="module")
def cf_page() -> dict[str, Procurement]:
    return _procurements("contracts_finder", CF_PAGE)


@pytest.fixture(scope="module")
def cf_2025() -> dict[str, Procurement]:
    return _procurements("contracts_finder", CF_2025)


def test_counts_on_the_real_samples(cf_page: dict[str, Procurement], cf_2025: dict[str, Procurement]) -> None:
    for name, procs in (("2022 page", cf_page), ("2025 releases", cf_2025)):
        awards = [a for p in procs.values() for a in p.awards]
        suppliers = {s for a in awards for s in a.supplier_party_ids}
        print(f"{name}: {len(procs)} ocids, {len(awards)} awards, {len(suppliers)} supplier party ids")
    # 2022 page: 100 releases, 86 distinct ocids; 53 award releases, but awardUpdates share award ids -> 48 awards.
    assert len(cf_page) == 86
    assert sum(len(p.awards) for p in cf_page.values()) == 48
    # 2025 array: 180 releases, 171 ocids; 130 award releases; award+awardUpdate pairs share award ids.
    assert len(cf_2025) == 171
    assert sum(len(p.awards) for p in cf_2025.values()) == 127
    assert all(a.status == "active" for p in cf_2025.values() for a in p.awards)
    assert all(a.currency == "GBP" for p in cf_2025.values() for a in p.awards if a.value_amount is not None)


def test_birmingham_building_services_now(cf_page: dict[str, Procurement]) -> None:
    proc = cf_page["ocds-b5fd17-8af6ed71-be4a-4cf4-bb4b-bbb35e04cbfa"]
    assert proc.buyer is not None
    assert proc.buyer.name == "Birmingham City Council"
    assert (proc.buyer.postcode, proc.buyer.postcode_source) == ("B4 7DJ", "structured")
    [award] = proc.awards
    assert award.status == "active"
    assert award.value_amount == Decimal(1875000)
    assert award.currency == "GBP"
    # "2022-06-28T00:00:00+01:00" is 27 June in UTC: the date must be taken in UK time.
    assert award.award_date == date(2022, 6, 28)
    assert (award.start_date, award.end_date) == (date(2022, 6, 28), date(2023, 4, 4))
    assert award.cpv_codes[0] == "71315000"
    assert award.title == "P0917 DOLPHIN CENTRE BUILDING IMPROVEMENT WORKS - AWARD"
    [supplier_id] = award.supplier_party_ids
    supplier = proc.parties[supplier_id]
    assert supplier.name == "Building Services NOW"
    assert (supplier.postcode, supplier.postcode_source) == ("DY5 1XN", "extracted")
    assert supplier.postal_code is None
    # tender.suitability.sme is true here, but it is NOT a declaration about the supplier.
    assert supplier.declared_scale is None
    assert supplier.declared_vcse is None


def test_warwickshire_seventeen_suppliers_value_zero(cf_2025: dict[str, Procurement]) -> None:
    proc = cf_2025["ocds-b5fd17-0d7a6907-8595-4413-9a4e-746f8a1313a0"]
    [award] = proc.awards
    assert len(award.supplier_party_ids) == 17
    assert award.value_amount == Decimal(0)
    assert award.award_date == date(2025, 3, 11)
    assert (award.start_date, award.end_date) == (date(2025, 4, 1), date(2028, 3, 31))
    andrusida = next(proc.parties[s] for s in award.supplier_party_ids if proc.parties[s].name == "Andrusida Care LTD")
    assert andrusida.postcode == "CV3 1QT"
    assert andrusida.declared_scale is None


def test_duplicate_supplier_in_one_award_kept_once(cf_2025: dict[str, Procurement]) -> None:
    # Espo framework: 35 supplier references, 34 distinct ids (GB-COH-03794455 twice).
    ocid = "ocds-b5fd17-8d84c691-fc64-4f64-b240-443a0af1ba82"
    proc = cf_2025[ocid]
    [award] = proc.awards
    assert len(award.supplier_party_ids) == 34
    assert award.value_amount == Decimal(400000000)
    group = [r for r in _releases(CF_2025) if r["ocid"] == ocid]
    compiled, notes = compile_releases_with_notes(group)
    assert any("GB-COH-03794455" in n.message and "awards.suppliers" in n.message for n in notes)
    # Mapping a single uncompiled release still de-duplicates and says so.
    raw_proc = map_compiled("contracts_finder", group[0])
    assert len(raw_proc.awards[0].supplier_party_ids) == 34
    assert any("listed twice" in n.message for n in raw_proc.notes)
    assert compiled["awards"][0]["id"] == award.award_id


def test_company_number_missing_leading_zero(cf_2025: dict[str, Procurement]) -> None:
    proc = cf_2025["ocds-b5fd17-cd83e46c-34df-4bdf-8a23-d61b279c4b3d"]
    party = proc.parties["GB-COH-7689604"]
    assert party.identifiers == (("GB-COH", "07689604"),)
    # "124 City RoadrnLondonrnEC1V 2NX": the source's damaged line breaks.
    assert party.postcode == "EC1V 2NX"
    assert (party.declared_scale, party.declared_vcse) == ("sme", True)


def test_supplier_without_name_is_kept_with_a_note(cf_2025: dict[str, Procurement]) -> None:
    proc = cf_2025["ocds-b5fd17-1dfbc9b2-d863-427c-9a37-856d6c4b364d"]
    party = proc.parties["GB-CFS-173"]
    assert party.name is None
    assert party.name_key == ""
    assert any(n.message == "party without name" for n in proc.notes)


def test_real_award_update_replaces_the_value(cf_page: dict[str, Procurement]) -> None:
    # award 1350 at 09:12:34, awardUpdate 4050 at 09:27:24; the file lists the newer one first.
    [award] = cf_page["ocds-b5fd17-9acd68ad-792b-4018-834f-ae3b047c8a7d"].awards
    assert award.value_amount == Decimal(4050)


def test_compile_orders_by_instant_not_string() -> None:
    base = next(r for r in _releases(CF_PAGE) if r["ocid"] == "ocds-b5fd17-8af6ed71-be4a-4cf4-bb4b-bbb35e04cbfa")
    earlier = json.loads(json.dumps(base, default=str))
    later = json.loads(json.dumps(base, default=str))
    # 09:30+01:00 is 08:30Z, so "2022-10-20T08:45:00Z" is LATER though it sorts first as a string.
    earlier["id"], earlier["date"] = "r1", "2022-10-20T09:30:00+01:00"
    later["id"], later["date"] = "r2", "2022-10-20T08:45:00Z"
    later["awards"][0]["value"]["amount"] = 2000000
    compiled = compile_releases([later, earlier])
    assert compiled["awards"][0]["value"]["amount"] == 2000000
    assert compiled["tag"] == ["compiled"]


def test_cancelled_award_and_cancelled_tender_end_withdrawn() -> None:
    base = next(r for r in _releases(CF_PAGE) if r["ocid"] == "ocds-b5fd17-8af6ed71-be4a-4cf4-bb4b-bbb35e04cbfa")
    cancel = {
        "ocid": base["ocid"],
        "id": "cancel-1",
        "date": "2022-11-01T10:00:00Z",
        "tag": ["awardCancellation"],
        "awards": [{"id": base["awards"][0]["id"], "status": "cancelled"}],
    }
    proc = map_compiled("contracts_finder", compile_releases([base, cancel]))
    [award] = proc.awards
    assert award.status == "withdrawn"
    # Merging keeps the rest of the award.
    assert award.value_amount == Decimal(1875000)
    tender_cancel = {
        "ocid": base["ocid"],
        "id": "cancel-2",
        "date": "2022-11-02T10:00:00Z",
        "tag": ["tenderCancellation"],
        "tender": {"status": "cancelled"},
    }
    proc2 = map_compiled("contracts_finder", compile_releases([base, tender_cancel]))
    assert proc2.tender_status == "cancelled"
    assert [a.status for a in proc2.awards] == ["withdrawn"]


def test_compile_rejects_mixed_ocids() -> None:
    releases = _releases(CF_2025)[:2]
    assert releases[0]["ocid"] != releases[1]["ocid"]
    with pytest.raises(ValueError, match="several ocids"):
        compile_releases(releases)


def test_merge_rules_come_from_the_vendored_schema() -> None:
    assert MERGE_RULES[("parties", "roles")] == "wholeListMerge"
    assert MERGE_RULES[("tender", "items", "deliveryAddresses")] == "wholeListMerge"
    assert MERGE_RULES[("tag",)] == "omitWhenMerged"


def test_the_rule_tree_holds_exactly_the_merge_rules() -> None:
    found: dict[tuple[str, ...], str] = {}

    def walk(node: dict[str, Any], path: tuple[str, ...]) -> None:
        for key, (rule, below) in node.items():
            if rule is not None:
                found[(*path, key)] = rule
            walk(below, (*path, key))

    walk(_RULE_TREE, ())
    assert found == MERGE_RULES
    assert ("parties", "roles") in found


@pytest.mark.parametrize(
    ("items", "unique"),
    [
        ([], True),
        ("not a list", True),
        ([{"id": "1"}, {"id": "2"}], True),
        ([{"id": 1}, {"id": "1"}], False),  # ocdsmerge keys by the id's text
        ([{"id": "1"}, {"name": "x"}], False),
        ([{"id": "1"}, "1"], False),
    ],
)
def test_unique_ids(items: Any, unique: bool) -> None:
    assert _unique_ids(items) is unique


def test_compiling_the_same_release_twice_does_not_duplicate_addresses() -> None:
    release = next(r for r in _releases(CF_PAGE) if r["ocid"] == "ocds-b5fd17-8af6ed71-be4a-4cf4-bb4b-bbb35e04cbfa")
    again = dict(release, id="again", date="2022-10-21T09:00:00+01:00")
    compiled = compile_releases([release, again])
    assert compiled["tender"]["items"] == release["tender"]["items"]


def test_fts_sample_has_a_buyer_and_no_awards() -> None:
    procs = _procurements("find_a_tender", FTS_PACKAGE)
    [proc] = procs.values()
    assert proc.ocid == "ocds-h6vhtk-067fb8"
    assert proc.awards == ()
    assert proc.buyer is not None
    assert proc.buyer.name == "Harrogate Town Council"
    assert proc.buyer.identifiers == (("GB-PPON", "PDTL-7248-GWZW"),)
    assert (proc.buyer.postcode, proc.buyer.postcode_source) == ("HG1 5LT", "structured")
    assert proc.buyer.country == "United Kingdom"


def test_fts_award_value_and_period_come_from_the_contract() -> None:
    # FTS award-stage JSON is not in the samples; this derives a UK7-shaped release from the real UK4 one.
    [release] = _releases(FTS_PACKAGE)
    award_release = json.loads(json.dumps(release, default=str))
    award_release["id"], award_release["date"] = "032704-2026", "2026-05-01T10:00:00+01:00"
    award_release["parties"].append(
        {
            "id": "GB-COH-04482788",
            "name": "Asprey Management Solutions Ltd",
            "identifier": {"scheme": "GB-COH", "id": "04482788"},
            "additionalIdentifiers": [{"scheme": "GB-PPON", "id": "PDTL-7248-GWZW"}],
            "address": {"postalCode": "pe30 5by", "country": "GB"},
            "roles": ["supplier"],
        }
    )
    award_release["awards"] = [
        {"id": "1", "status": "active", "date": "2026-04-30T23:30:00Z", "suppliers": [{"id": "GB-COH-04482788"}]}
    ]
    award_release["contracts"] = [
        {
            "id": "1",
            "awardID": "1",
            "value": {"amount": 11985, "amountGross": 14382, "currency": "GBP"},
            "period": {"startDate": "2026-05-01T00:00:00+01:00", "endDate": "2027-04-30T23:59:59+01:00"},
        }
    ]
    proc = map_compiled("find_a_tender", compile_releases([release, award_release]))
    [award] = proc.awards
    assert award.value_amount == Decimal(11985)
    # 23:30Z on 30 April is 00:30 BST on 1 May.
    assert award.award_date == date(2026, 5, 1)
    assert (award.start_date, award.end_date) == (date(2026, 5, 1), date(2027, 4, 30))
    supplier = proc.parties["GB-COH-04482788"]
    assert supplier.identifiers == (("GB-COH", "04482788"), ("GB-PPON", "PDTL-7248-GWZW"))
    assert (supplier.postcode, supplier.postcode_source, supplier.country) == ("PE30 5BY", "structured", "GB")


def test_legacy_upgrade_moves_flags_and_unescapes() -> None:
    files = sorted(LEGACY_DIR.glob("*.json"))
    releases = [r for f in files for r in _releases(f)]
    assert all(is_legacy_cf(r) for r in releases)
    upgraded = [upgrade_legacy(r) for r in releases]
    suppliers = [p for r in upgraded for p in r["parties"] if "supplier" in p.get("roles", [])]
    print(f"legacy: {len(releases)} releases, {len(suppliers)} supplier parties")
    assert len(suppliers) == 789
    assert not any("sme" in p or "vco" in p for p in suppliers)
    assert not any("&amp;" in json.dumps(r, default=str) for r in upgraded)
    # The file's ocid is kept.
    assert [r["ocid"] for r in upgraded] == [r["ocid"] for r in releases]
    dkm = [p for p in suppliers if p["name"] == "DKM Healthcare Limited"]
    assert dkm
    assert dkm[0]["details"] == {"scale": "sme", "vcse": False}
    procs = [map_compiled("contracts_finder", compile_releases([r])) for r in upgraded]
    scales = collections.Counter(
        p.declared_scale for proc in procs for p in proc.parties.values() if "supplier" in p.roles
    )
    print(f"legacy declared scales: {dict(scales)}")
    assert sum(len(p.awards) for p in procs) >= 100


def test_release_hash_is_stable_and_decimal_safe() -> None:
    a = {"ocid": "x", "id": "1", "value": {"amount": Decimal("3036.96")}}
    b = {"value": {"amount": Decimal("3036.96")}, "id": "1", "ocid": "x"}
    assert release_hash(a) == release_hash(b)
    assert release_hash(a) != release_hash({**a, "id": "2"})
    assert len(release_hash(a)) == 64


def test_release_identity() -> None:
    assert release_identity({"ocid": "o", "id": "r"}) == (("o", "r"), None)
    identity, note = release_identity({"ocid": "o"})
    assert identity is None
    assert note is not None
    assert note.ocid == "o"
    assert "without id" in note.message


def _ocdsmerge(releases: list[dict[str, Any]]) -> dict[str, Any]:
    full, _ = compile_releases_with_notes(releases)
    return {k: v for k, v in full.items() if k not in ("id", "date", "tag")}


def test_direct_merge_equals_ocdsmerge_on_every_real_multi_release_ocid() -> None:
    releases = [r for path in sorted(FEEDS_DIR.rglob("*.json")) for r in _releases(path)]
    groups = {o: g for o, g in group_by_ocid(releases).items() if len(g) > 1}
    assert len(groups) >= 20  # 21 ocids in the shared samples have more than one release
    for ocid, group in groups.items():
        upgraded = [upgrade_legacy(r) if is_legacy_cf(r) else r for r in group]
        fast, notes = compile_procurement(upgraded)
        assert notes == []
        assert fast == _ocdsmerge(upgraded), ocid


def _release(day: int, **fields: Any) -> dict[str, Any]:
    return {"ocid": "ocds-x-1", "id": f"r{day}", "date": f"2025-01-{day:02d}T00:00:00Z", "tag": ["award"], **fields}


@pytest.mark.parametrize(
    "later",
    [
        {"awards": [{"id": "1", "value": {"amount": 5, "currency": "GBP"}}, {"id": 2, "status": "active"}]},
        {"awards": [{"id": 1, "value": {"amount": None}}]},  # null removes a value, leaves the object
        {"awards": [], "tender": {}},  # empty arrays and objects change nothing
        {"awards": [{"title": "no id: always a new object"}]},
        {"parties": [{"id": "p1", "roles": ["supplier"], "additionalIdentifiers": [{"scheme": "GB-COH", "id": "9"}]}]},
        {"tender": {"title": None, "items": [{"id": "i1", "classification": {"id": "45000000", "scheme": "CPV"}}]}},
    ],
)
def test_direct_merge_equals_ocdsmerge_on_edge_cases(later: dict[str, Any]) -> None:
    first = _release(
        1,
        tender={"title": "Roads", "items": [{"id": "i1", "quantity": 2}]},
        parties=[{"id": "p1", "name": "A Ltd", "roles": ["buyer", "supplier"],
                  "additionalIdentifiers": [{"scheme": "GB-CHC", "id": "1"}]}],
        awards=[{"id": 1, "value": {"amount": 3, "currency": "GBP"}, "suppliers": [{"id": "p1"}]}],
    )  # fmt: skip
    second = _release(2, **later)
    fast, _ = compile_procurement([second, first])  # given out of date order on purpose
    assert fast == _ocdsmerge([first, second])


@pytest.mark.parametrize(
    "later",
    [
        {"awards": [{"id": "9", "title": "a"}, {"id": "9", "title": "b"}]},  # one id twice: ocdsmerge warns
        {"tender": "now a string"},  # an object becomes a scalar
        {"awards": "none"},  # an array becomes a scalar
        # An object without an id and with no value in it: dropped, unless a null was in it.
        {"awards": [{"id": "a"}, {"title": None}, {}]},
        {"awards": [{}, {"id": "a"}]},
        {"awards": [{"value": {}}, {"items": []}, {"title": "kept"}]},
        {"awards": [{"id": 1, "items": [{}]}]},
    ],
)
def test_unusual_merges_are_left_to_ocdsmerge(later: dict[str, Any]) -> None:
    first = _release(1, tender={"title": "Roads"}, awards=[{"id": "1", "title": "x"}])
    second = _release(2, **later)
    fast, notes = compile_procurement([first, second])
    full, full_notes = compile_releases_with_notes([first, second])
    assert (fast, notes) == (full, full_notes)
