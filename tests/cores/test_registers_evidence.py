"""Evidence from matched register entries (socialvalue.register_evidence) joining the enterprise decision."""

from datetime import date
from typing import Any

from socialvalue.enterprise import SupplierFacts, classify_enterprise
from socialvalue.register_evidence import register_findings

VERSIONS = {"companies_house": "2025-11-01", "ccew": "2025-11-01", "fca_mutuals": "2025-11-03"}


def _ch(**values: Any) -> dict[str, Any]:
    entry = {
        "register": "companies_house",
        "number": "12345678",
        "current": True,
        "status": "Active",
        "category": "Private Limited Company",
        "account_category": "",
        "postcode": "B15 2GW",
        "removed": None,
    }
    entry.update(values)
    return entry


def _classify(entries: list[dict[str, Any]], method: str = "name", **facts: Any) -> Any:
    found = register_findings(entries, VERSIONS, method, has_delivery_postcode=False)
    return classify_enterprise(SupplierFacts(name="Brum Meals", register_evidence=found.evidence, **facts)), found


def test_cic_category_makes_a_cic_and_a_social_enterprise() -> None:
    result, _ = _classify([_ch(category="Community Interest Company", account_category="MICRO ENTITY")])
    assert (result.category, result.vcse, result.social_enterprise, result.sme) == ("cic", True, True, True)
    cic = result.evidence_for("category")[0]
    assert (cic.method, cic.rule_id, cic.confidence) == ("register_entry", "RG1", 0.81)  # 0.9 rule x 0.9 name match
    assert "Companies House Free Company Data Product 2025-11-01, entry 12345678" in cic.source


def test_a_current_charity_counts_and_a_removed_one_does_not() -> None:
    charity = {"register": "ccew", "number": "1000002", "current": True, "category": "CIO", "postcode": "B1 1AA"}
    result, _ = _classify([charity], method="identifier")
    assert (result.category, result.vcse) == ("cio", True)
    removed = {**charity, "current": False, "status": "Removed", "removed": date(2019, 5, 1), "category": "Other"}
    result, found = _classify([removed], method="identifier")
    assert result.category != "charity"
    assert result.vcse is None
    assert found.warnings == ("charity 1000002 was removed from the register on 2019-05-01: not a current charity",)


def test_registered_society_from_the_fca_and_from_companies_house() -> None:
    society = {"register": "fca_mutuals", "number": "7001R", "current": True, "category": "Registered Society"}
    assert _classify([society])[0].category == "registered_society"
    assert _classify([_ch(number="RS007155", category="Registered Society")])[0].category == "registered_society"


def test_account_category_is_size_evidence_with_stated_strength() -> None:
    micro, _ = _classify([_ch(account_category="MICRO ENTITY")])
    assert micro.sme is True
    assert micro.category == "sme"
    full, _ = _classify([_ch(account_category="FULL")])
    assert full.sme is False
    # Full accounts are weak: a feed's declared SME (0.5) outweighs them (0.35 x 0.9).
    declared, _ = _classify([_ch(account_category="FULL")], declared_scale="sme")
    assert declared.sme is True
    assert "sme" in declared.conflicts
    dormant, _ = _classify([_ch(account_category="DORMANT")])
    assert dormant.sme is None


def test_dissolved_companies_are_flagged_and_give_no_size_evidence() -> None:
    gone = _ch(current=False, status="Dissolved", removed=date(2018, 3, 4), account_category="MICRO ENTITY")
    result, found = _classify([gone])
    assert found.warnings == ("company 12345678 is dissolved on 2018-03-04",)
    assert result.sme is None


def test_registered_postcode_is_a_weaker_locality_fallback_only_without_a_delivery_address() -> None:
    found = register_findings([_ch()], VERSIONS, "identifier", has_delivery_postcode=False)
    assert found.locality is not None
    assert (found.locality.postcode, found.locality.confidence) == ("B15 2GW", 0.5)
    assert register_findings([_ch()], VERSIONS, "identifier", has_delivery_postcode=True).locality is None
    assert register_findings([_ch()], VERSIONS, "review", has_delivery_postcode=False).evidence == ()


def test_for_profit_category_says_not_vcse_but_a_charity_link_wins() -> None:
    plain, _ = _classify([_ch()])
    assert plain.vcse is False
    linked = [
        _ch(category="PRI/LTD BY GUAR/NSC (Private, limited by guarantee, no share capital)"),
        {"register": "ccew", "number": "512345", "current": True, "category": "Charitable company"},
    ]
    result, _ = _classify(linked)
    assert (result.category, result.vcse) == ("charity", True)
