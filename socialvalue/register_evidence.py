"""Evidence from a matched register entry, in the enterprise classifier's terms (rules in docs/registers.md).

Input: the matched entry and its linked entries (rows of the importers.registers schema, as mappings) and how
the match was made. Output: ``Evidence`` items for ``SupplierFacts.register_evidence``, warnings a reviewer
should see (dissolved company, removed charity), and the registered postcode as a locality fallback.

Confidence is the rule's own confidence times the match's: an identifier match is certain (1.0), an automatic
name + postcode match 0.95, an automatic name-only match 0.9, a reviewer's confirmation 1.0. Review-state
matches give no evidence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from socialvalue.enterprise import Evidence

RULE_VERSION = "registers-2026.11.1"
MATCH_CERTAINTY = {"identifier": 1.0, "name+postcode": 0.95, "name": 0.9, "confirmed": 1.0}  # confirmed: by a reviewer
REGISTER_LABEL = {
    "companies_house": "Companies House Free Company Data Product",
    "ccew": "Charity Commission for England and Wales register",
    "oscr": "Scottish Charity Register (OSCR)",
    "fca_mutuals": "FCA Mutuals Public Register",
}
# Companies House CompanyCategory (bulk product strings) -> VCSE legal form.
CH_CATEGORY_FORM = {
    "community interest company": ("cic", 0.9, "RG1"),
    "charitable incorporated organisation": ("cio", 0.9, "RG2"),
    "scottish charitable incorporated organisation": ("cio", 0.9, "RG2"),
    "registered society": ("registered_society", 0.9, "RG3"),
    "industrial and provident society": ("registered_society", 0.9, "RG3"),
}
CH_FOR_PROFIT = ("private limited company", "public limited company", "limited liability partnership")
CH_GUARANTEE = "pri/ltd by guar/nsc"
# Accounts.AccountCategory -> (sme value, confidence, reason). See docs/registers.md for the reasoning.
ACCOUNT_SIZE: dict[str, tuple[str, float, str]] = {
    "MICRO ENTITY": ("true", 0.8, "micro-entity accounts: within the micro-entity thresholds"),
    "SMALL": ("true", 0.7, "small-company accounts: within the small-company thresholds"),
    "TOTAL EXEMPTION FULL": ("true", 0.7, "audit exemption for small companies"),
    "TOTAL EXEMPTION SMALL": ("true", 0.7, "audit exemption for small companies"),
    "UNAUDITED ABRIDGED": ("true", 0.7, "abridged accounts are open only to small companies"),
    "AUDITED ABRIDGED": ("true", 0.7, "abridged accounts are open only to small companies"),
    "MEDIUM": ("true", 0.55, "medium-sized company accounts: under 250 staff, so within the SME definition"),
    "GROUP": ("false", 0.45, "group accounts: a parent of a group above the small-group thresholds"),
    "FULL": ("false", 0.35, "full accounts: required above the small thresholds, but many small bodies file them"),
}  # fmt: skip
LOCALITY_CONFIDENCE = 0.5  # a registered office is often an accountant's address; a delivery address is 0.9


@dataclass(frozen=True)
class LocalityFallback:
    postcode: str
    confidence: float
    source: str


@dataclass(frozen=True)
class RegisterFindings:
    evidence: tuple[Evidence, ...]
    warnings: tuple[str, ...]
    locality: LocalityFallback | None


def _ev(flag: str, value: str, source: str, raw: str, confidence: float, rule_id: str) -> Evidence:
    return Evidence(flag, value, "register_entry", source, raw, round(confidence, 3), rule_id, RULE_VERSION)


def _form(category: str, source: str, raw: str, confidence: float, rule_id: str) -> list[Evidence]:
    return [
        _ev("category", category, source, raw, confidence, rule_id),
        _ev("vcse", "true", source, raw, confidence, rule_id),
    ]


def _text(entry: Mapping[str, Any], key: str) -> str:
    value = entry.get(key)
    return "" if value is None else str(value).strip()


def _entry_findings(entry: Mapping[str, Any], version: str, certainty: float) -> tuple[list[Evidence], list[str]]:
    register = _text(entry, "register")
    number = _text(entry, "number")
    source = f"{REGISTER_LABEL.get(register, register)} {version}, entry {number}"
    current = bool(entry.get("current"))
    removed = entry.get("removed")
    when = f" on {removed.isoformat()}" if isinstance(removed, date) else ""
    category = _text(entry, "category")
    out: list[Evidence] = []
    warnings: list[str] = []
    if register == "companies_house":
        lowered = category.lower()
        if lowered in CH_CATEGORY_FORM:
            form, confidence, rule = CH_CATEGORY_FORM[lowered]
            out += _form(form, f"{source}: CompanyCategory", category, confidence * certainty, rule)
        elif lowered.startswith(CH_GUARANTEE):
            out.append(_ev("vcse", "review", f"{source}: limited by guarantee, check charity and CIC registers",
                           category, 0.3 * certainty, "RG5"))  # fmt: skip
        elif lowered in CH_FOR_PROFIT:
            out.append(_ev("vcse", "false", f"{source}: CompanyCategory {category} (distributes profit)", category,
                           0.6 * certainty, "RG6"))  # fmt: skip
        accounts = _text(entry, "account_category").upper()
        if accounts in ACCOUNT_SIZE and current:
            value, confidence, reason = ACCOUNT_SIZE[accounts]
            out.append(_ev("sme", value, f"{source}: Accounts.AccountCategory {accounts}: {reason}", accounts,
                           confidence * certainty, "RG7"))  # fmt: skip
        if not current:
            warnings.append(f"company {number} is {(_text(entry, 'status') or 'dissolved').lower()}{when}")
    elif register in {"ccew", "oscr"}:
        if current:
            is_cio = category.upper() == "CIO" or "charitable incorporated organisation" in category.lower()
            out += _form("cio" if is_cio else "charity", f"{source}: registered charity", category or "registered",
                         0.9 * certainty, "RG4")  # fmt: skip
        else:
            warnings.append(f"charity {number} was removed from the register{when}: not a current charity")
            out.append(_ev("vcse", "review", f"{source}: removed charity", _text(entry, "status"), 0.2, "RG4"))
    elif register == "fca_mutuals":
        if current:
            out += _form("registered_society", f"{source}: {category or 'registered society'}", number,
                         0.9 * certainty, "RG3")  # fmt: skip
        else:
            warnings.append(f"society {number} was deregistered{when}")
            out.append(_ev("vcse", "review", f"{source}: deregistered society", _text(entry, "status"), 0.2, "RG3"))
    return out, warnings


def register_findings(
    entries: Sequence[Mapping[str, Any]], versions: Mapping[str, str], method: str, has_delivery_postcode: bool
) -> RegisterFindings:
    """Evidence from an automatic match: ``entries`` are the chosen entry first, then its linked entries."""
    certainty = MATCH_CERTAINTY.get(method)
    if certainty is None or not entries:
        return RegisterFindings((), (), None)
    evidence: list[Evidence] = []
    warnings: list[str] = []
    for entry in entries:
        found, warned = _entry_findings(entry, versions.get(_text(entry, "register"), "?"), certainty)
        evidence += found
        warnings += warned
    locality = None
    postcode = _text(entries[0], "postcode")
    if postcode and not has_delivery_postcode:
        register = _text(entries[0], "register")
        locality = LocalityFallback(
            postcode,
            round(LOCALITY_CONFIDENCE * certainty, 3),
            f"registered postcode in {REGISTER_LABEL.get(register, register)} (no delivery address in the feed)",
        )
    return RegisterFindings(tuple(evidence), tuple(warnings), locality)
