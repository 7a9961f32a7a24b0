"""SME / VCSE / social-enterprise classification of a supplier, with the evidence for every flag.

Rules SE1-SE7 follow the project proposal in social-value/uk-organisation-identifiers.json
(classification_rules_proposal) and social-value.md §4; the extra rules are:
  PB1  protected public-body names (NHS trusts, ICBs, councils) -> not VCSE, not a social enterprise
  FP1  for-profit legal form (Companies House ltd/plc/llp/limited-partnership without the CIC subtype,
       or a "plc"/"LLP" name) -> not VCSE
  SZ1  SME from the feed's declared details.scale; SZ2 SME from a reviewer's attestation
  VC1  a reviewer's direct VCSE / not-VCSE attestation
Tender-level suitability (tender.suitability.sme/vcse) says who an opportunity suits, not who won it,
so it is deliberately not an input. A name containing "Trust" or "Foundation" is not evidence of anything.

Confidence scale (0..1): manual attestation 0.95; register identifier and Companies House type 0.9;
company-number prefix 0.85; public-body name 0.7; for-profit Companies House type 0.6; legal-name patterns
0.45-0.6; feed-declared scale 0.5 and vcse 0.4. Each flag takes the value of its strongest evidence; ties
go to the more authoritative method. Evidence that disagreed and lost stays in the list marked `overruled`
and the flag is named in `conflicts`, so reviewers see e.g. a declared vcse=true on a plc.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from typing import NamedTuple

from socialvalue.identifiers import clean_org_name, company_number_prefix

RULE_VERSION = "enterprise-2026.11.1"

CATEGORIES = ("charity", "cic", "cio", "registered_society", "other_vcse", "sme", "large", "unknown")
VCSE_CATEGORIES = frozenset({"charity", "cic", "cio", "registered_society", "other_vcse"})
FLAGS = ("category", "sme", "vcse", "social_enterprise")

ATTESTATION_KINDS = frozenset(
    {
        "social_enterprise_mark",  # Social Enterprise Mark certificate (SE7)
        "buy_social",  # Buy Social directory listing (SE7)
        "charity_register",  # checked on a charity register (CCEW, OSCR, CCNI)
        "cio_register",  # checked: a CIO / SCIO
        "cic_register",  # checked on Companies House / the CIC Regulator as a CIC
        "mutuals_register",  # checked on the FCA Mutuals Public Register as a registered society
        "vcse",  # reviewer judges the supplier a VCSE on other evidence
        "not_vcse",
        "sme",
        "large",
    }
)

# Companies House company_type values (CH-ENUM constants.yml).
_CH_TYPE_CATEGORY = {
    "charitable-incorporated-organisation": "cio",
    "scottish-charitable-incorporated-organisation": "cio",
    "registered-society-non-jurisdictional": "registered_society",
    "industrial-and-provident-society": "registered_society",
    "northern-ireland-other": "registered_society",  # NI credit union, an IPS like the NP prefix
}
_CH_TYPE_GUARANTEE = frozenset({"private-limited-guarant-nsc", "private-limited-guarant-nsc-limited-exemption"})
_CH_TYPE_FOR_PROFIT = frozenset({"ltd", "plc", "llp", "limited-partnership"})
_CIC_SUBTYPE = "community-interest-company"

# Company-number prefixes that fix the legal form; read only from GB-COH ids, since OSCR charity numbers
# share the SC shape and a bare number says nothing about its register.
_PREFIX_CATEGORY = {
    "RS": "registered_society",
    "IP": "registered_society",
    "SP": "registered_society",
    "NP": "registered_society",
    "CE": "cio",
    "CS": "cio",
}
_CHARITY_SCHEMES = {
    "GB-CHC": "Charity Commission for England and Wales",
    "GB-SC": "Scottish Charity Register (OSCR)",
    "GB-NIC": "Charity Commission for Northern Ireland",
    "GB-REV": "HMRC charity reference",
}

_TRADING_AS = re.compile(r"[\s(,](?:t/a|trading\s+as)\s.*$", re.IGNORECASE)
_CIC_NAME = re.compile(r"\b(?:c\.?\s?i\.?\s?c\.?|community\s+interest\s+(?:company|plc))\W*$", re.IGNORECASE)
_CIC_PHRASE = re.compile(r"\bcommunity\s+interest\s+(?:company|plc)\b|\bcwmni\s+buddiant\s+cymunedol\b", re.IGNORECASE)
_CIO_NAME = re.compile(r"\b(?:s?c\.?i\.?o\.?|charitable\s+incorporated\s+organi[sz]ation)\W*$", re.IGNORECASE)
_BENCOM_NAME = re.compile(r"\bcommunity\s+benefit\s+society\b|\bbencom\b", re.IGNORECASE)
_COOP_NAME = re.compile(r"\bco-?\s?operative\b|\bco-op\b", re.IGNORECASE)
_PLC_NAME = re.compile(r"\b(?:p\.?l\.?c\.?|public\s+limited\s+company|l\.?l\.?p\.?)\W*$", re.IGNORECASE)
_PUBLIC_BODY_NAME = re.compile(
    r"\bNHS\s+(?:foundation\s+)?trust$|\bintegrated\s+care\s+board$|^NHS\s+England$"
    r"|\b(?:city|county|borough|district|metropolitan\s+borough|town|parish)\s+council$",
    re.IGNORECASE,
)
# Stands for the supplier's legal name in name-rule evidence until the memoised decision is made.
_LEGAL_NAME = "\x00legal name\x00"
# Fragments at least one of which every name rule needs (checked on the lower-cased ASCII name): most supplier
# names ("Acme Widgets Ltd") contain none, so the seven rules above are skipped for them.
_NAME_RULE_HINT = re.compile(
    r"c\.?\s?i\.?\s?c|c\.?i\.?o|community|cwmni|charitable|bencom|operative|co-op"
    r"|p\.?l\.?c|public|l\.?l\.?p|trust|board|nhs|council"
)

_METHOD_RANK = {
    "manual_attestation": 6,
    "register_identifier": 5,
    "register_entry": 5,  # a matched register entry (socialvalue.register_evidence)
    "company_type": 4,
    "company_number_prefix": 3,
    "legal_name_pattern": 2,
    "feed_declared": 1,
    "default": 0,
}
# When two legal forms tie, the narrower one wins (a CIO is also a charity).
_CATEGORY_SPECIFICITY = {"cio": 5, "charity": 4, "cic": 3, "registered_society": 2, "other_vcse": 1}
# Categories that contain another: evidence for the broader one agrees with the narrower (a CIO is a
# charity, every legal form is "some VCSE"), so it neither conflicts nor blocks the narrower answer.
_BROADER = {
    "cio": frozenset({"charity", "other_vcse"}),
    "charity": frozenset({"other_vcse"}),
    "cic": frozenset({"other_vcse"}),
    "registered_society": frozenset({"other_vcse"}),
}


@dataclass(frozen=True)
class Attestation:
    """A reviewer's manual attestation, e.g. a Social Enterprise Mark certificate or a register look-up."""

    kind: str
    reference: str
    attested_by: str
    attested_at: datetime

    def __post_init__(self) -> None:
        if self.kind not in ATTESTATION_KINDS:
            raise ValueError(f"unknown attestation kind {self.kind!r}; expected one of {sorted(ATTESTATION_KINDS)}")
        if self.attested_at.tzinfo is None or self.attested_at.utcoffset() is None:
            raise ValueError("attested_at must be timezone-aware")


@dataclass(frozen=True)
class SupplierFacts:
    name: str | None
    identifiers: tuple[tuple[str, str], ...] = ()  # (scheme, id), already normalised
    declared_scale: str | None = None  # feed parties[].details.scale: "sme" | "micro" | "large"
    declared_vcse: bool | None = None  # feed parties[].details.vcse (supplier-declared)
    declared_source: str | None = None  # e.g. "Contracts Finder ocds-b5fd17-... release ...-1"
    company_type: str | None = None  # Companies House company_type
    company_subtype: str | None = None  # e.g. "community-interest-company"
    attestations: tuple[Attestation, ...] = ()
    # Evidence from a matched register entry (socialvalue.register_evidence.register_findings).
    register_evidence: "tuple[Evidence, ...]" = ()


@dataclass(frozen=True)
class Evidence:
    flag: str  # "category" | "sme" | "vcse" | "social_enterprise"
    value: str  # category name, or "true" | "false" | "unknown" | "review"
    method: str  # see _METHOD_RANK
    source: str
    evidence: str
    confidence: float
    rule_id: str
    rule_version: str
    overruled: bool = False  # disagreed with the flag's final value and had less weight


@dataclass(frozen=True)
class EnterpriseClassification:
    category: str
    sme: bool | None
    vcse: bool | None
    social_enterprise: bool | None
    evidence: tuple[Evidence, ...]  # every flag has at least one Evidence explaining it
    conflicts: tuple[str, ...] = ()  # flags whose evidence disagreed

    def evidence_for(self, flag: str) -> tuple[Evidence, ...]:
        return tuple(e for e in self.evidence if e.flag == flag)


class _Basis(NamedTuple):
    """Where a signal comes from; one basis can speak to several flags."""

    method: str
    source: str
    raw: str
    confidence: float
    rule_id: str


def _ev(flag: str, value: str, basis: _Basis) -> Evidence:
    return Evidence(flag, value, basis.method, basis.source, basis.raw, basis.confidence, basis.rule_id, RULE_VERSION)


def _bool_text(value: bool) -> str:
    return "true" if value else "false"


def _legal_name(name: str) -> str:
    """The registered-entity part of a feed name: "Norty Ltd T/A T-Pro" -> "Norty Ltd"."""
    return _TRADING_AS.sub("", clean_org_name(name)).strip(" ,")


def _form_signal(category: str, basis: _Basis) -> list[Evidence]:
    """A VCSE legal form speaks to the category and to vcse=true."""
    return [_ev("category", category, basis), _ev("vcse", "true", basis)]


def _identifier_signals(identifiers: Iterable[tuple[str, str]]) -> list[Evidence]:
    out: list[Evidence] = []
    for scheme, value in identifiers:
        label = f"identifier {scheme} {value}"
        if scheme in _CHARITY_SCHEMES:
            out += _form_signal("charity", _Basis("register_identifier", label, value, 0.9, "SE4"))
        elif scheme == "GB-MPR":
            out += _form_signal("registered_society", _Basis("register_identifier", label, value, 0.9, "SE3"))
        elif scheme == "GB-COH":
            # A plain E&W number (the common case) has no prefix; skip the parse.
            prefix = None if value.isascii() and value.isdigit() else company_number_prefix(value)
            if prefix in _PREFIX_CATEGORY:
                category = _PREFIX_CATEGORY[prefix]
                rule = "SE4" if category == "cio" else "SE3"
                source = f"Companies House number prefix {prefix} ({label})"
                out += _form_signal(category, _Basis("company_number_prefix", source, value, 0.85, rule))
    return out


def _company_type_signals(company_type: str | None, company_subtype: str | None) -> list[Evidence]:
    out: list[Evidence] = []
    ctype = (company_type or "").strip().lower()
    subtype = (company_subtype or "").strip().lower()
    if subtype == _CIC_SUBTYPE:
        out += _form_signal(
            "cic", _Basis("company_type", f"Companies House company_subtype {subtype}", subtype, 0.9, "SE1")
        )
    if ctype in _CH_TYPE_CATEGORY:
        category = _CH_TYPE_CATEGORY[ctype]
        rule = "SE4" if category == "cio" else "SE3"
        out += _form_signal(category, _Basis("company_type", f"Companies House company_type {ctype}", ctype, 0.9, rule))
    elif ctype in _CH_TYPE_GUARANTEE:
        # SE5: limited by guarantee is a hint for review, not a classification.
        source = f"Companies House company_type {ctype}: possible not-for-profit, check charity and CIC registers"
        out.append(_ev("vcse", "review", _Basis("company_type", source, ctype, 0.3, "SE5")))
    elif ctype in _CH_TYPE_FOR_PROFIT and subtype != _CIC_SUBTYPE:
        source = f"Companies House company_type {ctype} without the CIC subtype: distributes profit to owners"
        out.append(_ev("vcse", "false", _Basis("company_type", source, ctype, 0.6, "FP1")))
    return out


def _name_signals(name: str | None) -> tuple[str, list[Evidence]]:
    """(legal name, signals); the signals carry _LEGAL_NAME for the name so that deciding can be memoised."""
    if not name or not name.strip():
        return "", []
    legal = _legal_name(name)
    if legal.isascii() and not _NAME_RULE_HINT.search(legal.lower()):
        return legal, []
    found = legal
    legal = _LEGAL_NAME
    out: list[Evidence] = []
    cic = _CIC_NAME.search(found) or _CIC_PHRASE.search(found)
    if cic:
        out += _form_signal(
            "cic", _Basis("legal_name_pattern", f"legal name form {cic.group(0).strip()!r}", legal, 0.6, "SE2")
        )
    elif suffix := _PLC_NAME.search(found):
        source = f"legal name suffix {suffix.group(0).strip()!r}: a for-profit company or partnership"
        out.append(_ev("vcse", "false", _Basis("legal_name_pattern", source, legal, 0.5, "FP1")))
    cio = _CIO_NAME.search(found)
    if cio:
        out += _form_signal(
            "cio", _Basis("legal_name_pattern", f"legal name form {cio.group(0).strip()!r}", legal, 0.6, "SE4")
        )
    bencom = _BENCOM_NAME.search(found)
    if bencom:
        source = f"legal name form {bencom.group(0)!r}"
        out += _form_signal("registered_society", _Basis("legal_name_pattern", source, legal, 0.55, "SE3"))
    elif coop := _COOP_NAME.search(found):
        # Many co-operatives are registered societies, but a company can use the word too.
        source = f"legal name word {coop.group(0)!r}"
        out += _form_signal("registered_society", _Basis("legal_name_pattern", source, legal, 0.45, "SE3"))
    public = _PUBLIC_BODY_NAME.search(found)
    if public:
        source = f"public-body name {public.group(0)!r}: not non-governmental, so not a VCSE"
        out.append(_ev("vcse", "false", _Basis("legal_name_pattern", source, legal, 0.7, "PB1")))
        out.append(_ev("social_enterprise", "false", _Basis("legal_name_pattern", source, legal, 0.7, "PB1")))
    return found, out


def _declared_signals(facts: SupplierFacts) -> list[Evidence]:
    out: list[Evidence] = []
    where = facts.declared_source or "procurement feed"
    scale = (facts.declared_scale or "").strip().lower()
    if scale in {"sme", "micro"}:
        out.append(_ev("sme", "true", _Basis("feed_declared", f"{where} details.scale", scale, 0.5, "SZ1")))
    elif scale == "large":
        out.append(_ev("sme", "false", _Basis("feed_declared", f"{where} details.scale", scale, 0.5, "SZ1")))
    if facts.declared_vcse is True:
        out += _form_signal(
            "other_vcse", _Basis("feed_declared", f"{where} details.vcse (self-declared)", "true", 0.4, "SE6")
        )
    elif facts.declared_vcse is False:
        out.append(
            _ev("vcse", "false", _Basis("feed_declared", f"{where} details.vcse (self-declared)", "false", 0.4, "SE6"))
        )
    return out


def _attestation_signals(attestations: Iterable[Attestation]) -> list[Evidence]:
    out: list[Evidence] = []
    # Later attestations of equal weight win: order them oldest first, ties resolve to the last seen.
    for att in sorted(attestations, key=lambda a: a.attested_at):
        source = f"{att.kind} attested by {att.attested_by} on {att.attested_at.isoformat()}"
        raw = att.reference
        match att.kind:
            case "social_enterprise_mark" | "buy_social":
                out.append(_ev("social_enterprise", "true", _Basis("manual_attestation", source, raw, 0.95, "SE7")))
                out.append(_ev("vcse", "true", _Basis("manual_attestation", source, raw, 0.9, "SE7")))
            case "charity_register":
                out += _form_signal("charity", _Basis("manual_attestation", source, raw, 0.95, "SE4"))
            case "cio_register":
                out += _form_signal("cio", _Basis("manual_attestation", source, raw, 0.95, "SE4"))
            case "cic_register":
                out += _form_signal("cic", _Basis("manual_attestation", source, raw, 0.95, "SE1"))
            case "mutuals_register":
                out += _form_signal("registered_society", _Basis("manual_attestation", source, raw, 0.95, "SE3"))
            case "vcse" | "not_vcse":
                out.append(
                    _ev("vcse", _bool_text(att.kind == "vcse"), _Basis("manual_attestation", source, raw, 0.95, "VC1"))
                )
            case "sme" | "large":
                out.append(
                    _ev("sme", _bool_text(att.kind == "sme"), _Basis("manual_attestation", source, raw, 0.95, "SZ2"))
                )
    return out


def _weight(e: Evidence, order: int) -> tuple[float, int, int, int]:
    return (e.confidence, _METHOD_RANK[e.method], _CATEGORY_SPECIFICITY.get(e.value, 0), order)


def _strongest(signals: list[Evidence]) -> Evidence | None:
    ranked = [(s, i) for i, s in enumerate(signals) if s.value in {"true", "false"} or s.flag == "category"]
    if not ranked:
        return None
    return max(ranked, key=lambda pair: _weight(*pair))[0]


def _narrowest(signals: list[Evidence]) -> Evidence | None:
    """Strongest category, then refined to a narrower form it contains if any evidence names one."""
    winner = _strongest(signals)
    while winner is not None:
        narrower = [s for s in signals if winner.value in _BROADER.get(s.value, ())]
        if not narrower:
            break
        winner = _strongest(narrower)
    return winner


def _settle(signals: list[Evidence], winner: Evidence | None) -> tuple[list[Evidence], bool]:
    """Winner first, then the rest by weight; losers that disagree are marked overruled."""
    if winner is None:
        return signals, False
    rest = sorted(
        (s for s in signals if s is not winner), key=lambda s: (-s.confidence, -_METHOD_RANK[s.method], s.rule_id)
    )
    settled = [winner]
    conflict = False
    for s in rest:
        disagrees = (
            (s.value in {"true", "false"} or s.flag == "category")
            and s.value != winner.value
            and s.value not in _BROADER.get(winner.value, ())
        )
        conflict = conflict or disagrees
        settled.append(replace(s, overruled=True) if disagrees else s)
    return settled, conflict


def _default(flag: str, source: str) -> Evidence:
    return _ev(flag, "unknown", _Basis("default", source, "", 0.0, "DEFAULT"))


def classify_enterprise(facts: SupplierFacts) -> EnterpriseClassification:
    legal, name_signals = _name_signals(facts.name)
    signals = (
        (_identifier_signals(facts.identifiers) if facts.identifiers else [])
        + (
            _company_type_signals(facts.company_type, facts.company_subtype)
            if facts.company_type or facts.company_subtype
            else []
        )
        + name_signals
        + list(_declared_signals_cached(facts.declared_scale, facts.declared_vcse, facts.declared_source))
        + (_attestation_signals(facts.attestations) if facts.attestations else [])
        + list(facts.register_evidence)
    )
    result = _decide(tuple(signals))
    if not name_signals:
        return result
    evidence = tuple(replace(e, evidence=legal) if e.evidence == _LEGAL_NAME else e for e in result.evidence)
    return replace(result, evidence=evidence)


@lru_cache(maxsize=4096)
def _declared_signals_cached(
    declared_scale: str | None, declared_vcse: bool | None, declared_source: str | None
) -> tuple[Evidence, ...]:
    facts = SupplierFacts(
        name=None, declared_scale=declared_scale, declared_vcse=declared_vcse, declared_source=declared_source
    )
    return tuple(_declared_signals(facts))


# The answer depends only on the signals, and most suppliers share a handful of signal sets (a feed's declared
# scale, a plain company name), so the settling is memoised. Results are immutable, so sharing them is safe.
@lru_cache(maxsize=16384)
def _decide(signals_key: tuple[Evidence, ...]) -> EnterpriseClassification:
    signals = list(signals_key)
    by_flag: dict[str, list[Evidence]] = {flag: [s for s in signals if s.flag == flag] for flag in FLAGS}
    conflicts: list[str] = []
    evidence: dict[str, list[Evidence]] = {}

    def settle(flag: str, winner: Evidence | None, extra: list[Evidence] | None = None) -> None:
        settled, conflict = _settle(by_flag[flag], winner)
        if conflict:
            conflicts.append(flag)
        evidence[flag] = (extra or []) + settled

    sme_winner = _strongest(by_flag["sme"])
    sme = None if sme_winner is None else sme_winner.value == "true"
    settle("sme", sme_winner, None if sme_winner else [_default("sme", "no declared scale or attestation")])

    vcse_winner = _strongest(by_flag["vcse"])
    vcse = None if vcse_winner is None else vcse_winner.value == "true"
    settle(
        "vcse", vcse_winner, None if vcse_winner else [_default("vcse", "no legal-form, register or declared evidence")]
    )

    # The category is a VCSE legal form only when vcse came out true; otherwise it is the size band.
    if vcse and vcse_winner is not None:
        # Without a known legal form (e.g. only a Social Enterprise Mark or a declared flag) it is "other".
        category_winner = _narrowest(by_flag["category"]) or replace(vcse_winner, flag="category", value="other_vcse")
    else:
        size = "unknown" if sme is None else ("sme" if sme else "large")
        base = sme_winner or _default("category", "no VCSE legal form and no size evidence")
        source = f"size band (VCSE not established): {base.source}"
        category_winner = replace(base, flag="category", value=size, source=source)
    category = category_winner.value
    settle("category", category_winner)

    by_flag["social_enterprise"] += _implied_social_enterprise(category_winner, vcse)
    se_winner = _strongest(by_flag["social_enterprise"])
    social_enterprise = None if se_winner is None else se_winner.value == "true"
    settle("social_enterprise", se_winner, None if se_winner else [_explain_unknown_social_enterprise(category)])

    return EnterpriseClassification(
        category=category,
        sme=sme,
        vcse=vcse,
        social_enterprise=social_enterprise,
        evidence=tuple(e for flag in FLAGS for e in evidence[flag]),
        conflicts=tuple(dict.fromkeys(conflicts)),
    )


def _implied_social_enterprise(category_winner: Evidence, vcse: bool | None) -> list[Evidence]:
    """Social-enterprise evidence implied by the settled legal form; direct signals are SE7 and PB1."""
    if vcse and category_winner.value == "cic":
        # A CIC has a statutory asset lock and community-interest test (SE1/SE2).
        return [replace(category_winner, flag="social_enterprise", value="true")]
    if vcse and category_winner.value == "registered_society":
        # SE3: co-operatives and community benefit societies trade for members or community, but the
        # society's objects are not checked here, so the inference is a notch weaker than the legal form.
        confidence = round(category_winner.confidence * 0.8, 2)
        return [replace(category_winner, flag="social_enterprise", value="true", confidence=confidence)]
    # Charities and CIOs are VCSEs, but SEUK and the Social Enterprise Mark also require over half of income
    # from trading, which charity status does not show (many are grant- or donation-funded); so they stay
    # unknown unless an accreditation (SE7) says otherwise.
    return []


def _explain_unknown_social_enterprise(category: str) -> Evidence:
    if category in {"charity", "cio"}:
        return _default(
            "social_enterprise",
            "charity status does not show majority trading income (SEUK / Social Enterprise Mark criteria)",
        )
    return _default("social_enterprise", "no CIC, registered-society or accreditation evidence")
