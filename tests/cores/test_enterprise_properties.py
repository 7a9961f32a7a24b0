"""One decision per supplier status: whatever the evidence, overrides and attestations, the flags are what the
category implies (socialvalue.enterprise.IMPLIED and its docstring table)."""

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from socialvalue.enterprise import (
    ATTESTATION_KINDS,
    CATEGORIES,
    FLAGS,
    OVERRIDE_VALUES,
    Attestation,
    Evidence,
    Override,
    SupplierFacts,
    classify_enterprise,
    inconsistencies,
)

T0 = datetime(2025, 1, 1, tzinfo=UTC)
NAMES = [
    "Acme Widgets Ltd",
    "Better Days CIC",
    "Bright Futures CIO",
    "Walsall Community Energy Community Benefit Society",
    "The Foster Care Co-operative",
    "GENUS PLC",
    "BAS LLP",
    "Walsall Healthcare NHS Trust",
    "Cambridge City Council",
    "Mind in Croydon",
    "",
]
IDENTIFIERS = [
    ("GB-CHC", "1090095"),
    ("GB-MPR", "IP031455"),
    ("GB-COH", "CE012345"),
    ("GB-COH", "RS19025R"),
    ("GB-COH", "04482788"),
    ("GB-SC", "SC042386"),
]
COMPANY_TYPES = [None, "ltd", "plc", "private-limited-guarant-nsc", "charitable-incorporated-organisation"]
REGISTER = [
    Evidence("category", "cic", "register_entry", "Companies House", "CIC", 0.9, "RG1", "r"),
    Evidence("vcse", "true", "register_entry", "Companies House", "CIC", 0.9, "RG1", "r"),
    Evidence("vcse", "false", "register_entry", "Companies House", "ltd", 0.6, "RG6", "r"),
    Evidence("sme", "true", "register_entry", "Companies House", "SMALL", 0.7, "RG7", "r"),
    Evidence("sme", "false", "register_entry", "Companies House", "GROUP", 0.45, "RG7", "r"),
    Evidence("vcse", "review", "register_entry", "CCEW", "removed", 0.2, "RG4", "r"),
]


@st.composite
def facts(draw: st.DrawFn) -> SupplierFacts:
    minutes = st.integers(0, 10_000)
    attestations = tuple(
        Attestation(kind, "reference", "reviewer", T0 + timedelta(minutes=m))
        for kind, m in draw(st.lists(st.tuples(st.sampled_from(sorted(ATTESTATION_KINDS)), minutes), max_size=4))
    )
    overrides = []
    for i, (flag, m) in enumerate(draw(st.lists(st.tuples(st.sampled_from(FLAGS), minutes), max_size=4)), start=1):
        value = draw(st.sampled_from(OVERRIDE_VALUES[flag]))
        overrides.append(Override(i, flag, value, "a reason given", "reviewer", T0 + timedelta(minutes=m)))
    return SupplierFacts(
        name=draw(st.sampled_from(NAMES)),
        identifiers=tuple(draw(st.lists(st.sampled_from(IDENTIFIERS), max_size=2, unique=True))),
        declared_scale=draw(st.sampled_from([None, "sme", "micro", "large"])),
        declared_vcse=draw(st.sampled_from([None, True, False])),
        declared_source="Contracts Finder",
        company_type=draw(st.sampled_from(COMPANY_TYPES)),
        company_subtype=draw(st.sampled_from([None, "community-interest-company"])),
        attestations=attestations,
        register_evidence=tuple(draw(st.lists(st.sampled_from(REGISTER), max_size=3))),
        overrides=tuple(overrides),
    )


@settings(max_examples=600, deadline=None)
@given(facts())
def test_flags_are_what_the_category_implies(f: SupplierFacts) -> None:
    result = classify_enterprise(f)
    assert result.category in CATEGORIES
    assert inconsistencies(result.category, result.sme, result.vcse, result.social_enterprise) == []
    # The why states the single decision: each flag's first record carries the decided value.
    for flag in FLAGS:
        assert result.evidence_for(flag)[0].value == result.value_text(flag)


@settings(max_examples=300, deadline=None)
@given(facts(), st.sampled_from(FLAGS), st.data())
def test_the_latest_override_is_honoured_unless_the_category_forbids_it(
    f: SupplierFacts, flag: str, data: st.DataObject
) -> None:
    value = data.draw(st.sampled_from(OVERRIDE_VALUES[flag]))
    latest = Override(99, flag, value, "the latest word", "reviewer", T0 + timedelta(days=30))
    result = classify_enterprise(SupplierFacts(**{**f.__dict__, "overrides": (*f.overrides, latest)}))
    if flag == "social_enterprise" and value != result.value_text(flag):
        # Only the category's own implication may refuse it: a CIC or registered society is a social enterprise,
        # a supplier that is not a VCSE is not one, and while VCSE status is unknown it cannot be one.
        assert 99 in result.overruled_overrides()
        assert result.category in {"cic", "registered_society"} or result.vcse is not True
    else:
        assert result.value_text(flag) == value
        assert 99 not in result.overruled_overrides()


def test_override_of_category_sets_the_flags() -> None:
    at = T0 + timedelta(days=1)
    base = SupplierFacts(name="Acme Widgets Ltd", declared_scale="large", declared_vcse=True)
    to_sme = classify_enterprise(
        SupplierFacts(**{**base.__dict__, "overrides": (Override(1, "category", "sme", "checked", "a", at),)})
    )
    assert (to_sme.category, to_sme.sme, to_sme.vcse, to_sme.social_enterprise) == ("sme", True, False, False)
    first = to_sme.evidence_for("sme")[0]
    assert (first.method, first.override_id) == ("override", 1)
    back = classify_enterprise(
        SupplierFacts(**{**base.__dict__, "overrides": (Override(1, "category", "large", "checked", "a", at),)})
    )
    assert (back.category, back.sme, back.vcse) == ("large", False, False)


def test_override_of_a_flag_moves_the_category() -> None:
    at = T0 + timedelta(days=1)
    sme = SupplierFacts(name="Better Days CIC", declared_scale="sme", company_type="ltd")
    assert classify_enterprise(sme).category == "sme"  # the for-profit company type beats the name
    vcse = classify_enterprise(
        SupplierFacts(**{**sme.__dict__, "overrides": (Override(1, "vcse", "true", "asset lock seen", "a", at),)})
    )
    # The form the other evidence names (the CIC in the name), not a guess.
    assert (vcse.category, vcse.vcse, vcse.sme, vcse.social_enterprise) == ("cic", True, True, True)
    plain = classify_enterprise(
        SupplierFacts(
            name="Acme Widgets Ltd",
            declared_scale="sme",
            overrides=(Override(1, "vcse", "true", "constitution seen", "a", at),),
        )
    )
    assert (plain.category, plain.vcse, plain.sme) == ("other_vcse", True, True)
