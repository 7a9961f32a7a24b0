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

One decision. The category and the three flags come from one decision, so they can never disagree: the legal form
(a VCSE form, "not a VCSE", or not known) and the size band are settled from the evidence, and the category and
every flag are read off that pair. What each category implies (IMPLIED, checked by ``inconsistencies``):

  category            vcse    sme                  social_enterprise
  charity, cio        true    its own evidence     its own evidence (charity status does not show trading income)
  other_vcse          true    its own evidence     its own evidence
  cic                 true    its own evidence     true (statutory asset lock and community-interest test)
  registered_society  true    its own evidence     true (co-operatives and community benefit societies)
  sme                 false   true                 false
  large               false   false                false
  unknown             false or unknown; when vcse is false the size is unknown (else it would be sme or large);
                      social_enterprise false when vcse is false, otherwise false or unknown, never true

Size is a separate axis for a VCSE (a small charity is also an SME, as in the government's SME and VCSE spend
figures), so a VCSE's sme flag stays its own evidence. Social enterprises are VCSEs in the government definition
(VCSE includes charities, social enterprises, CICs, mutuals and co-operatives), so "not a VCSE" means "not a
social enterprise", and a social-enterprise accreditation implies a VCSE. A supplier whose VCSE status is not
known is in category unknown even when its size is known: calling it "sme" would claim it is not a VCSE.

Overrides are a person's decision: they are evidence of the highest weight (1.0, method "override") in the same
decision, later ones winning ties, so an override of the category sets the flags it implies (category sme sets
sme true and vcse false) and an override of a flag moves the category with it (vcse true on an sme makes it the
VCSE form the other evidence names, else other_vcse). An override the decision cannot honour (social_enterprise
false on a CIC) comes out overruled; the service refuses it and says what to send instead.

Confidence scale (0..1): override 1.0; manual attestation 0.95; register identifier and Companies House type 0.9;
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

RULE_VERSION = "enterprise-2026.12.1"

CATEGORIES = ("charity", "cic", "cio", "registered_society", "other_vcse", "sme", "large", "unknown")
VCSE_CATEGORIES = frozenset({"charity", "cic", "cio", "registered_society", "other_vcse"})
FLAGS = ("category", "sme", "vcse", "social_enterprise")
BOOL_FLAGS = ("sme", "vcse", "social_enterprise")
# What each category fixes; a flag not listed is left to its own evidence. "unknown" is checked by rule below.
IMPLIED: dict[str, dict[str, bool]] = {
    "charity": {"vcse": True},
    "cio": {"vcse": True},
    "other_vcse": {"vcse": True},
    "cic": {"vcse": True, "social_enterprise": True},
    "registered_society": {"vcse": True, "social_enterprise": True},
    "sme": {"vcse": False, "sme": True, "social_enterprise": False},
    "large": {"vcse": False, "sme": False, "social_enterprise": False},
    "unknown": {},
}

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
    "override": 7,
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
BROADER = {
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


# The flag and value each attestation kind speaks for (the service checks that an override does not hide it).
ATTESTATION_CLAIMS = {
    "social_enterprise_mark": ("social_enterprise", "true"),
    "buy_social": ("social_enterprise", "true"),
    "charity_register": ("category", "charity"),
    "cio_register": ("category", "cio"),
    "cic_register": ("category", "cic"),
    "mutuals_register": ("category", "registered_society"),
    "vcse": ("vcse", "true"),
    "not_vcse": ("vcse", "false"),
    "sme": ("sme", "true"),
    "large": ("sme", "false"),
}
OVERRIDE_VALUES = {
    "category": CATEGORIES,
    "sme": ("true", "false", "unknown"),
    "vcse": ("true", "false", "unknown"),
    "social_enterprise": ("true", "false", "unknown"),
}


@dataclass(frozen=True)
class Override:
    """A person's decision on the category or one flag, with their reason."""

    id: int
    flag: str  # "category" | "sme" | "vcse" | "social_enterprise"
    value: str  # a category, or "true" | "false" | "unknown"
    reason: str
    by: str
    at: datetime

    def __post_init__(self) -> None:
        if self.value not in OVERRIDE_VALUES.get(self.flag, ()):
            raise ValueError(f"override of {self.flag!r} to {self.value!r} is not allowed")


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
    overrides: tuple[Override, ...] = ()


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
    override_id: int | None = None  # set on evidence from a person's override
    by: str | None = None


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

    def value_text(self, flag: str) -> str:
        """A flag's decided value as an override would say it: a category, "true", "false" or "unknown"."""
        if flag == "category":
            return self.category
        value: bool | None = getattr(self, flag)
        return "unknown" if value is None else _bool_text(value)

    def overruled_overrides(self) -> dict[int, str]:
        """Override id -> the flag it spoke to that the decision did not honour."""
        return {e.override_id: e.flag for e in self.evidence if e.override_id is not None and e.overruled}


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


def _override_signals(overrides: Iterable[Override]) -> list[Evidence]:
    """A person's override speaks to its flag and to every flag its value implies; later ones are listed last."""
    out: list[Evidence] = []
    for o in sorted(overrides, key=lambda o: (o.at, o.id)):
        basis = _Basis("override", f"override #{o.id} ({o.flag}={o.value}) by {o.by} on {o.at.isoformat()}", o.reason,
                       1.0, "OVERRIDE")  # fmt: skip

        def ev(flag: str, value: str, o: Override = o, basis: _Basis = basis) -> Evidence:
            return replace(_ev(flag, value, basis), override_id=o.id, by=o.by)

        if o.flag == "category":
            out.append(ev("category", o.value))
            if o.value in VCSE_CATEGORIES:
                out.append(ev("vcse", "true"))
            elif o.value in {"sme", "large"}:
                out += [ev("vcse", "false"), ev("sme", _bool_text(o.value == "sme"))]
            else:  # "unknown": the person says none of it is known
                out += [ev("vcse", "unknown"), ev("sme", "unknown"), ev("social_enterprise", "unknown")]
        else:
            out.append(ev(o.flag, o.value))
            if o.flag == "social_enterprise" and o.value == "true":
                out.append(ev("vcse", "true"))
    return out


def _weight(e: Evidence, order: int) -> tuple[float, int, int, int]:
    # Between people's overrides the later one wins; the narrower-form tie-break is for automatic evidence.
    specificity = 0 if e.method == "override" else _CATEGORY_SPECIFICITY.get(e.value, 0)
    return (e.confidence, _METHOD_RANK[e.method], specificity, order)


def _decisive(s: Evidence) -> bool:
    """Counts towards a decision: a value, a category, or a person saying "unknown" (not a review hint)."""
    return s.value in {"true", "false"} or s.flag == "category" or s.method == "override"


def _flag_value(winner: Evidence | None) -> bool | None:
    return None if winner is None or winner.value == "unknown" else winner.value == "true"


def _strongest(signals: list[Evidence]) -> Evidence | None:
    ranked = [(s, i) for i, s in enumerate(signals) if _decisive(s)]
    if not ranked:
        return None
    return max(ranked, key=lambda pair: _weight(*pair))[0]


def _narrowest(signals: list[Evidence]) -> Evidence | None:
    """Strongest category, then refined to a narrower form it contains if any evidence names one."""
    winner = _strongest(signals)
    while winner is not None:
        narrower = [s for s in signals if winner.value in BROADER.get(s.value, ())]
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
        disagrees = _decisive(s) and s.value != winner.value and s.value not in BROADER.get(winner.value, ())
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
        + (_override_signals(facts.overrides) if facts.overrides else [])
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
    """The one decision: legal form (vcse) and size band first, then the category and every flag read off them."""
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
    sme = _flag_value(sme_winner)
    settle("sme", sme_winner, None if sme_winner else [_default("sme", "no declared scale or attestation")])

    vcse_winner = _strongest(by_flag["vcse"])
    vcse = _flag_value(vcse_winner)
    settle(
        "vcse", vcse_winner, None if vcse_winner else [_default("vcse", "no legal-form, register or declared evidence")]
    )

    category_winner = _category_winner(by_flag["category"], vcse_winner, vcse, sme_winner, sme)
    category = category_winner.value
    settle("category", category_winner)

    se_winner, se_default = _social_enterprise_winner(by_flag["social_enterprise"], category_winner, vcse_winner, vcse)
    settle("social_enterprise", se_winner, [se_default] if se_winner is None else None)

    return EnterpriseClassification(
        category=category,
        sme=sme,
        vcse=vcse,
        social_enterprise=_flag_value(se_winner),
        evidence=tuple(e for flag in FLAGS for e in evidence[flag]),
        conflicts=tuple(dict.fromkeys(conflicts)),
    )


def _category_winner(
    signals: list[Evidence],
    vcse_winner: Evidence | None,
    vcse: bool | None,
    sme_winner: Evidence | None,
    sme: bool | None,
) -> Evidence:
    """The category read off the settled legal form and size band, explained by the evidence that settled it."""
    if vcse and vcse_winner is not None:
        forms = [s for s in signals if s.value in VCSE_CATEGORIES]
        top = _strongest(forms)
        if top is not None and top.method == "override":
            return top  # a person named the form: no narrowing
        # Without a known legal form (e.g. only a Social Enterprise Mark or a declared flag) it is "other".
        source = f"a VCSE without a known legal form: {vcse_winner.source}"
        return _narrowest(forms) or replace(vcse_winner, flag="category", value="other_vcse", source=source)
    if vcse is False and vcse_winner is not None:
        if sme_winner is None or sme is None:
            base = sme_winner or vcse_winner
            value, why = "unknown", f"not a VCSE ({vcse_winner.source}) and no size evidence"
        else:
            base, value = sme_winner, "sme" if sme else "large"
            why = f"not a VCSE ({vcse_winner.source}); size band: {sme_winner.source}"
    else:
        # VCSE status not known: calling it "sme" or "large" would claim it is not a VCSE.
        base = vcse_winner or _default("category", "")
        value, why = "unknown", "VCSE status not known" + (f" ({vcse_winner.source})" if vcse_winner else "")
    stated = [s for s in signals if s.method == "override" and s.value == value]
    return stated[-1] if stated else replace(base, flag="category", value=value, source=why, overruled=False)


def _social_enterprise_winner(
    signals: list[Evidence], category_winner: Evidence, vcse_winner: Evidence | None, vcse: bool | None
) -> tuple[Evidence | None, Evidence]:
    """(winner or None, the default explaining an unknown); the category's implication comes before any evidence."""
    category = category_winner.value
    if category in {"cic", "registered_society"}:
        # A CIC has a statutory asset lock and community-interest test (SE1/SE2). SE3: co-operatives and community
        # benefit societies trade for members or community; the objects are not checked, so the inference is weaker.
        confidence = category_winner.confidence if category == "cic" else round(category_winner.confidence * 0.8, 2)
        implied = replace(category_winner, flag="social_enterprise", value="true", confidence=confidence)
        return implied, implied
    if vcse is False and vcse_winner is not None:
        source = f"not a VCSE, so not a social enterprise (social enterprises are VCSEs): {vcse_winner.source}"
        implied = replace(vcse_winner, flag="social_enterprise", value="false", source=source)
        return _strongest([s for s in signals if s.value == "false"]) or implied, implied
    if vcse is None:
        # A social enterprise is a VCSE, so while VCSE status is unknown it can be "not" or "unknown", never "is".
        default = _default("social_enterprise", "VCSE status not known")
        return _strongest([s for s in signals if s.value != "true"]), default
    # Charities and CIOs are VCSEs, but SEUK and the Social Enterprise Mark also require over half of income
    # from trading, which charity status does not show (many are grant- or donation-funded); so they stay
    # unknown unless an accreditation (SE7) or a person says otherwise.
    if category in {"charity", "cio"}:
        reason = "charity status does not show majority trading income (SEUK / Social Enterprise Mark criteria)"
    else:
        reason = "no CIC, registered-society or accreditation evidence"
    return _strongest(signals), _default("social_enterprise", reason)


def inconsistencies(category: str, sme: bool | None, vcse: bool | None, social_enterprise: bool | None) -> list[str]:
    """Where the flags disagree with what the category implies (the table in the module docstring); [] if none."""
    flags = {"sme": sme, "vcse": vcse, "social_enterprise": social_enterprise}
    out = [
        f"category {category} implies {flag} {_bool_text(value)}, not {_text(flags[flag])}"
        for flag, value in IMPLIED[category].items()
        if flags[flag] is not value
    ]
    if category == "unknown":
        if vcse is True:
            out.append("category unknown cannot have vcse true: a VCSE has a category of its own")
        if vcse is False and sme is not None:
            out.append(f"category unknown with vcse false and sme {_text(sme)} should be sme or large")
        if social_enterprise is True or (vcse is False and social_enterprise is not False):
            out.append(
                f"category unknown with vcse {_text(vcse)} cannot have social_enterprise {_text(social_enterprise)}"
            )
    return out


_CATEGORY_TEXT = {
    "charity": "a registered charity",
    "cio": "a charitable incorporated organisation",
    "cic": "a community interest company",
    "registered_society": "a registered society (co-operative or community benefit society)",
    "other_vcse": "a VCSE of no known legal form",
    "sme": "an SME that is not a VCSE",
    "large": "a large organisation that is not a VCSE",
    "unknown": "not established",
}


def decision_text(category: str, sme: bool | None, vcse: bool | None, social_enterprise: bool | None) -> str:
    """The one decision in words: the category, then each flag as implied by it or decided by its own evidence."""
    implied = IMPLIED[category]
    flags = {"vcse": vcse, "sme": sme, "social_enterprise": social_enterprise}
    parts = [
        f"{flag} {_text(value)} ({'implied' if flag in implied else 'own evidence'})" for flag, value in flags.items()
    ]
    return f"category {category}: {_CATEGORY_TEXT[category]}; " + ", ".join(parts)


def _text(value: bool | None) -> str:
    return "unknown" if value is None else _bool_text(value)
