"""SME / VCSE / social-enterprise classification (socialvalue.enterprise).

Rows marked real=True are supplier parties copied from the Contracts Finder samples in shared/data/feeds;
test_real_rows_are_in_the_samples checks each one is really there with the flags used here.
"""

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from socialvalue.enterprise import (
    CATEGORIES,
    FLAGS,
    RULE_VERSION,
    VCSE_CATEGORIES,
    Attestation,
    EnterpriseClassification,
    SupplierFacts,
    classify_enterprise,
    inconsistencies,
)
from socialvalue.identifiers import clean_org_name, normalise_identifier
from tests.support.paths import FEEDS_DIR

CF_DIR = FEEDS_DIR / "contracts-finder"
WHEN = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)


@dataclass(frozen=True)
class SampleSupplier:
    name: str
    scheme: str | None
    id: str | None
    scale: str | None
    vcse: bool | None


def _supplier_parties(obj: Any) -> Iterator[dict[str, Any]]:
    if isinstance(obj, dict):
        for party in obj.get("parties") or []:
            if isinstance(party, dict) and "supplier" in (party.get("roles") or []):
                yield party
        for value in obj.values():
            if isinstance(value, dict | list):
                yield from _supplier_parties(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _supplier_parties(value)


def _to_sample(party: dict[str, Any]) -> SampleSupplier:
    ident = party.get("identifier") or {}
    details = party.get("details") or {}
    if "sme" in party or "vco" in party:  # legacy CF: flags on the party itself
        sme = party.get("sme")
        scale = None if sme is None else ("sme" if sme else "large")
        vcse = party.get("vco")
    else:
        scale = details.get("scale")
        vcse = details.get("vcse")
    return SampleSupplier(
        name=clean_org_name(party.get("name") or ident.get("legalName") or ""),
        scheme=ident.get("scheme") or None,
        id=ident.get("id") or None,
        scale=scale,
        vcse=vcse,
    )


def _samples() -> list[SampleSupplier]:
    parties: list[SampleSupplier] = []
    for path in sorted(CF_DIR.rglob("*.json")):
        parties += [_to_sample(p) for p in _supplier_parties(json.loads(path.read_text(encoding="utf-8")))]
    return parties


SAMPLES = _samples()


def _facts(s: SampleSupplier, **extra: Any) -> SupplierFacts:
    ids: tuple[tuple[str, str], ...] = ()
    if s.scheme and s.id:
        norm = normalise_identifier(s.scheme, s.id)
        ids = (norm,) if norm else ()
    return SupplierFacts(
        name=s.name,
        identifiers=ids,
        declared_scale=s.scale,
        declared_vcse=s.vcse,
        declared_source="Contracts Finder sample",
        **extra,
    )


@dataclass(frozen=True)
class Row:
    supplier: SampleSupplier
    real: bool
    category: str
    sme: bool | None
    vcse: bool | None
    social_enterprise: bool | None
    conflicts: tuple[str, ...] = ()
    company_type: str | None = None
    company_subtype: str | None = None
    extra_ids: tuple[tuple[str, str], ...] = ()


def _s(name: str, scheme: str | None, id_: str | None, scale: str | None, vcse: bool | None) -> SampleSupplier:
    return SampleSupplier(name, scheme, id_, scale, vcse)


ROWS: dict[str, Row] = {
    # --- real suppliers from the CF samples ---
    "declared vcse on a limited company, short GB-COH": Row(
        _s("WCL UK Ltd t/a Everything ICT", "GB-COH", "7689604", "sme", True), True, "other_vcse", True, True, None
    ),
    "declared vcse on a limited company": Row(
        _s("Asprey Management Solutions Ltd", "GB-COH", "04482788", "sme", True), True, "other_vcse", True, True, None
    ),
    "charity-like name with no identifier: only the declared flag": Row(
        _s("Stand Against Racism & Inequality (SARI)", None, None, "sme", True), True, "other_vcse", True, True, None
    ),
    "CIC suffix, declared not VCSE: legal form wins, conflict recorded": Row(
        _s("Polish Expats Association CIC", None, None, "large", False),
        True,
        "cic",
        False,
        True,
        True,
        ("vcse",),
    ),
    "CIC suffix on a long name": Row(
        _s("North East Specialist Therapeutic Services CIC", None, None, "large", False),
        True,
        "cic",
        False,
        True,
        True,
        ("vcse",),
    ),
    "CIC suffix, SME": Row(
        _s("Iridescent Ideas CIC", None, None, "sme", False), True, "cic", True, True, True, ("vcse",)
    ),
    "CIC only in the trading name is not a CIC": Row(
        _s("CNLR Horizons Limited T/A CIC Wellbeing", None, None, "large", False), True, "large", False, False, False
    ),
    "co-operative name beats a declared false, weakly": Row(
        _s("The Foster Care Co-operative", None, None, "large", False),
        True,
        "registered_society",
        False,
        True,
        True,
        ("vcse",),
    ),
    "Trust in the name is not a charity": Row(
        _s("The Adolescent and Children's Trust", None, None, "large", False), True, "large", False, False, False
    ),
    "Trust in the name, declared SME": Row(
        _s("St Giles Trust", None, None, "sme", False), True, "sme", True, False, False
    ),
    "Trust in the name, declared VCSE": Row(
        _s("The Oaklea Trust", None, None, "large", True), True, "other_vcse", False, True, None
    ),
    "Foundation is not evidence either": Row(
        _s("Duffus Cancer Foundation", None, None, "sme", False), True, "sme", True, False, False
    ),
    "Community in the name is not evidence": Row(
        _s("Eastern Community Homes", None, None, "large", False), True, "large", False, False, False
    ),
    "Community Council of Devon is not a council": Row(
        _s("Community Council of Devon (operating under Devon Communities To", None, None, "sme", True),
        True,
        "other_vcse",
        True,
        True,
        None,
    ),
    "council supplier is a public body": Row(
        _s("Cambridge City Council", None, None, "large", False), True, "large", False, False, False
    ),
    "council trading name": Row(
        _s("Hertfordshire County Council t/a Herts Fullstop", None, None, "large", False),
        True,
        "large",
        False,
        False,
        False,
    ),
    "plc declared SME and not VCSE": Row(
        _s("GENUS PLC", "GB-COH", "02972325", "sme", False), True, "sme", True, False, False
    ),
    "LLP declared VCSE: for-profit form wins, conflict": Row(
        _s("BAS LLP", None, None, "sme", True), True, "sme", True, False, False, ("vcse", "category")
    ),
    "school declared large and VCSE": Row(
        _s("Landmark International School", None, None, "large", True), True, "other_vcse", False, True, None
    ),
    "Royal Charter prefix says nothing about VCSE": Row(
        _s("LONDON BUSINESS SCHOOL", "GB-COH", "RC000721", "large", True), True, "other_vcse", False, True, None
    ),
    "Scottish company number is a company, not a charity": Row(
        _s("Realise Solutions Limited", "GB-COH", "SC394005", "sme", False), True, "sme", True, False, False
    ),
    "legacy GB-CQC scheme": Row(
        _s("DKM Healthcare Limited", "GB-CQC", "1-2326072185", "sme", False), True, "sme", True, False, False
    ),
    "no flags at all": Row(_s("Building Services NOW", None, None, None, None), True, "unknown", None, None, None),
    "HTML-escaped legacy name with declared VCSE": Row(
        _s("Bromley & Croydon Women's Aid", None, None, "sme", True), True, "other_vcse", True, True, None
    ),
    # --- hand-made edge cases ---
    "NHS trust is a public body, not a charity": Row(
        _s("Walsall Healthcare NHS Trust", None, None, "large", None), False, "large", False, False, False
    ),
    "NHS foundation trust with nothing declared": Row(
        _s("The Dudley Group NHS Foundation Trust", None, None, None, None), False, "unknown", None, False, False
    ),
    "NHS trust charity is not caught by the public-body rule": Row(
        _s("Walsall Healthcare NHS Trust Charity", "GB-CHC", "1057922", None, None), False, "charity", None, True, None
    ),
    "CIC by Companies House subtype, no suffix in the name": Row(
        _s("Ideas Into Action Limited", "GB-COH", "9506232", "sme", None),
        False,
        "cic",
        True,
        True,
        True,
        company_type="ltd",
        company_subtype="community-interest-company",
    ),
    "Companies House ltd without CIC subtype overrules declared vcse": Row(
        _s("Ideas Into Action Limited", "GB-COH", "9506232", "sme", True),
        False,
        "sme",
        True,
        False,
        False,
        ("vcse", "category"),
        company_type="ltd",
    ),
    "GB-SC charity number": Row(
        _s("Some Scottish Charity", "GB-SC", "SC042386", None, None), False, "charity", None, True, None
    ),
    "GB-COH SC number with no charity scheme": Row(
        _s("Some Scottish Charity", "GB-COH", "SC042386", None, None), False, "unknown", None, None, None
    ),
    "GB-CHC charity, declared VCSE agrees": Row(
        _s("Mind in Croydon", "GB-CHC", "1090095", "sme", True), False, "charity", True, True, None
    ),
    "CIO by number prefix": Row(_s("Small Steps", "GB-COH", "CE012345", "sme", None), False, "cio", True, True, None),
    "CIO by number prefix and charity number: the narrower form": Row(
        _s("Small Steps", "GB-COH", "CE012345", None, None),
        False,
        "cio",
        None,
        True,
        None,
        extra_ids=(("GB-CHC", "1173575"),),
    ),
    "registered society by RS prefix": Row(
        _s("Midcounties Co-operative Limited", "GB-COH", "RS19025R", "large", False),
        False,
        "registered_society",
        False,
        True,
        True,
        ("vcse",),
    ),
    "registered society by Mutuals Public Register id": Row(
        _s("Bramley Community Shop", "GB-MPR", "IP031455", None, None), False, "registered_society", None, True, True
    ),
    "registered society by company type": Row(
        _s("Bramley Community Shop", None, None, None, None),
        False,
        "registered_society",
        None,
        True,
        True,
        company_type="registered-society-non-jurisdictional",
    ),
    "community benefit society name": Row(
        _s("Walsall Community Energy Community Benefit Society", None, None, None, None),
        False,
        "registered_society",
        None,
        True,
        True,
    ),
    "CIO by company type": Row(
        _s("Bright Futures", None, None, None, None),
        False,
        "cio",
        None,
        True,
        None,
        company_type="charitable-incorporated-organisation",
    ),
    "CIO name suffix": Row(_s("Bright Futures CIO", None, None, None, None), False, "cio", None, True, None),
    "C.I.C. with dots": Row(_s("Better Days C.I.C.", None, None, "sme", None), False, "cic", True, True, True),
    "Community Interest Company spelt out": Row(
        _s("Better Days Community Interest Company", None, None, None, None), False, "cic", None, True, True
    ),
    # Size known but VCSE status not: "large" would claim it is not a VCSE (one decision: category unknown).
    "guarantee company is only a review hint": Row(
        _s("Nominet UK", None, None, "large", None),
        False,
        "unknown",
        False,
        None,
        None,
        company_type="private-limited-guarant-nsc",
    ),
    "Coopers is not a co-operative": Row(
        _s("Price Waterhouse Coopers Llp", "GB-COH", "OC303525", "large", False), True, "large", False, False, False
    ),
}


@pytest.mark.parametrize("case", list(ROWS), ids=list(ROWS))
def test_classification_table(case: str) -> None:
    row = ROWS[case]
    facts = _facts(row.supplier, company_type=row.company_type, company_subtype=row.company_subtype)
    if row.extra_ids:
        extra = tuple(n for s, v in row.extra_ids if (n := normalise_identifier(s, v)) is not None)
        facts = SupplierFacts(**{**facts.__dict__, "identifiers": facts.identifiers + extra})
    result = classify_enterprise(facts)
    got = (result.category, result.sme, result.vcse, result.social_enterprise, set(result.conflicts))
    assert got == (row.category, row.sme, row.vcse, row.social_enterprise, set(row.conflicts))
    _assert_well_formed(result)


def test_real_rows_are_in_the_samples() -> None:
    available = set(SAMPLES)
    missing = [case for case, row in ROWS.items() if row.real and row.supplier not in available]
    assert missing == []


def _assert_well_formed(result: EnterpriseClassification) -> None:
    assert result.category in CATEGORIES
    assert (result.category in VCSE_CATEGORIES) == (result.vcse is True)
    assert inconsistencies(result.category, result.sme, result.vcse, result.social_enterprise) == []
    for flag in FLAGS:
        explaining = [e for e in result.evidence_for(flag) if not e.overruled]
        assert explaining, f"no evidence for {flag}"
        assert all(0.0 <= e.confidence <= 1.0 for e in result.evidence_for(flag))
    assert all(e.rule_version == RULE_VERSION for e in result.evidence)
    assert set(result.conflicts) == {e.flag for e in result.evidence if e.overruled}
    # The flag's first, winning evidence carries its value.
    first = {flag: result.evidence_for(flag)[0] for flag in FLAGS}
    assert first["category"].value == result.category
    for flag, value in (("sme", result.sme), ("vcse", result.vcse), ("social_enterprise", result.social_enterprise)):
        assert first[flag].value == ("unknown" if value is None else str(value).lower())


def test_every_sample_supplier_classifies_cleanly() -> None:
    assert len(SAMPLES) > 1000
    categories: dict[str, int] = {}
    for supplier in SAMPLES:
        result = classify_enterprise(_facts(supplier))
        _assert_well_formed(result)
        categories[result.category] = categories.get(result.category, 0) + 1
        if supplier.scheme is None and "trust" in supplier.name.lower():
            assert result.category != "charity", supplier
    # Without identifiers, charities can only come from registers: none in these samples.
    assert "charity" not in categories
    assert categories["cic"] >= 3


def test_declared_flags_carry_lower_confidence_than_registers() -> None:
    declared = classify_enterprise(SupplierFacts(name="Asprey Management Solutions Ltd", declared_vcse=True))
    registered = classify_enterprise(SupplierFacts(name="Mind in Croydon", identifiers=(("GB-CHC", "1090095"),)))
    d = declared.evidence_for("vcse")[0]
    r = registered.evidence_for("vcse")[0]
    assert (d.method, d.rule_id) == ("feed_declared", "SE6")
    assert (r.method, r.rule_id, r.source) == ("register_identifier", "SE4", "identifier GB-CHC 1090095")
    assert d.confidence < 0.5 < r.confidence


def test_manual_attestation_overrides_declared_vcse() -> None:
    facts = _facts(_s("Asprey Management Solutions Ltd", "GB-COH", "04482788", "sme", True))
    before = classify_enterprise(facts)
    assert (before.category, before.vcse) == ("other_vcse", True)
    assert before.evidence_for("category")[0].confidence <= 0.5

    checked = Attestation("not_vcse", "Companies House 04482788: ltd, no CIC subtype", "j.patel", WHEN)
    after = classify_enterprise(SupplierFacts(**{**facts.__dict__, "attestations": (checked,)}))
    assert (after.category, after.sme, after.vcse) == ("sme", True, False)
    top = after.evidence_for("vcse")[0]
    assert (top.method, top.evidence, top.confidence) == ("manual_attestation", checked.reference, 0.95)
    assert "j.patel" in top.source
    overruled = [e for e in after.evidence_for("vcse") if e.overruled]
    assert [(e.method, e.value) for e in overruled] == [("feed_declared", "true")]
    assert "vcse" in after.conflicts


def test_social_enterprise_mark_makes_a_social_enterprise() -> None:
    mark = Attestation("social_enterprise_mark", "SEM-00123", "reviewer", WHEN)
    result = classify_enterprise(SupplierFacts(name="Realise Solutions Limited", attestations=(mark,)))
    assert (result.category, result.vcse, result.social_enterprise) == ("other_vcse", True, True)
    assert result.evidence_for("social_enterprise")[0].rule_id == "SE7"


def test_social_enterprise_mark_keeps_the_known_legal_form() -> None:
    mark = Attestation("buy_social", "https://www.buysocialdirectory.org.uk/example", "reviewer", WHEN)
    result = classify_enterprise(SupplierFacts(name="Iridescent Ideas CIC", attestations=(mark,)))
    assert (result.category, result.social_enterprise) == ("cic", True)


def test_charity_is_vcse_but_not_automatically_social_enterprise() -> None:
    charity = classify_enterprise(SupplierFacts(name="Mind in Croydon", identifiers=(("GB-CHC", "1090095"),)))
    assert (charity.vcse, charity.social_enterprise) == (True, None)
    why = charity.evidence_for("social_enterprise")[0]
    assert (why.value, why.method) == ("unknown", "default")
    assert "trading income" in why.source

    mark = Attestation("social_enterprise_mark", "SEM-9", "reviewer", WHEN)
    trading = classify_enterprise(
        SupplierFacts(name="Mind in Croydon", identifiers=(("GB-CHC", "1090095"),), attestations=(mark,))
    )
    assert (trading.category, trading.social_enterprise) == ("charity", True)


def test_later_attestation_of_equal_weight_wins() -> None:
    old = Attestation("sme", "2024 accounts", "a", WHEN - timedelta(days=400))
    new = Attestation("large", "2026 accounts: 310 staff", "b", WHEN)
    for order in ((old, new), (new, old)):
        facts = SupplierFacts(name="Growing Ltd", declared_scale="sme", declared_vcse=False, attestations=order)
        result = classify_enterprise(facts)
        assert (result.sme, result.category) == (False, "large")
        assert result.evidence_for("sme")[0].evidence == "2026 accounts: 310 staff"


def test_sc_number_register_depends_on_scheme() -> None:
    as_company = classify_enterprise(SupplierFacts(name="X", identifiers=(("GB-COH", "SC042386"),)))
    as_charity = classify_enterprise(SupplierFacts(name="X", identifiers=(("GB-SC", "SC042386"),)))
    bare = classify_enterprise(SupplierFacts(name="X SC042386"))
    assert as_company.category == "unknown"
    assert bare.category == "unknown"
    assert as_charity.category == "charity"
    assert as_charity.evidence_for("category")[0].source == "identifier GB-SC SC042386"


def test_micro_scale_counts_as_sme() -> None:
    assert classify_enterprise(SupplierFacts(name="Tiny Ltd", declared_scale="micro")).sme is True


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"kind": "gold_star"}, "unknown attestation kind 'gold_star'"),
        ({"attested_at": datetime(2026, 11, 20, 14, 30)}, "must be timezone-aware"),
    ],
)
def test_attestation_validation(bad: dict[str, Any], message: str) -> None:
    fields: dict[str, Any] = {"kind": "sme", "reference": "r", "attested_by": "x", "attested_at": WHEN} | bad
    with pytest.raises(ValueError, match=re.escape(message)):
        Attestation(**fields)


def test_classification_ignores_suitability_because_it_is_not_an_input() -> None:
    # tender.suitability says who an opportunity suits; SupplierFacts has no field for it on purpose.
    assert not any("suitab" in name for name in SupplierFacts.__dataclass_fields__)
