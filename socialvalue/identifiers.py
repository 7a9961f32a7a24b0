"""Normalising UK organisation identifiers and supplier names for matching.

Sources: org-id/register lists/gb (schemes), mrbrianevans/ch-guide docs/general/company-number.md and the
Companies House URI customer guide (number prefixes, format regex), as compiled in the project research
file social-value/uk-organisation-identifiers.json. Everything here is pure string handling.
"""

import functools
import html
import re
import unicodedata

# Two-character Companies House number prefixes (CH-GUIDE, DOORDA, CH URI guide). "R0" is R-zero.
COMPANY_NUMBER_PREFIXES: frozenset[str] = frozenset(
    {
        "AC", "ZC", "FC", "GE", "LP", "OC", "SE", "SA", "SZ", "SF", "GS", "SL", "SO", "SC", "ES", "SG",
        "NA", "NZ", "NF", "GN", "NL", "NC", "R0", "NI", "EN", "FE", "RS", "IP", "SP", "NP", "NO", "IC",
        "SI", "NV", "RC", "SR", "NR", "CE", "CS", "PC", "OE",
    }
)  # fmt: skip

# Empirical Companies House format regex (CH-GUIDE, tested on 13.6m numbers). It does not cover the
# name-and-number-only registers (IP, SP, NP, IC, CE, CS, RC, ...), which _PREFIXED_NUMBER accepts.
_CH_GUIDE_NUMBER = re.compile(
    r"((AC|ZC|FC|GE|LP|OC|SE|SA|SZ|SF|GS|SL|SO|SC|ES|NA|NZ|NF|GN|NL|NC|R0|NI|EN|\d{2}|SG|FE)\d{5}(\d|C|R))"
    r"|((RS|SO)\d{3}(\d{3}|\d{2}[WSRCZF]|\d(FI|RS|SA|IP|US|EN|AS)|CUS))"
    r"|((NI|SL)\d{5}[\dA])"
    r"|(OC(([\dP]{5}[CWERTB])|([\dP]{4}(OC|CU))))"
)
_PREFIXED_NUMBER = re.compile(r"([A-Z][A-Z0-9])(\d{5}[\dA-Z])")
_PREFIXED_SHORT = re.compile(r"([A-Z][A-Z0-9])(\d{1,6})")
_DIGITS = re.compile(r"\d{1,8}")

# Placeholder values clerks type into identifier fields.
_NOT_AN_IDENTIFIER: frozenset[str] = frozenset(
    {"", "-", "--", ".", "N/A", "NA", "N.A.", "N/K", "NK", "NONE", "NULL", "NIL", "TBC", "TBA", "UNKNOWN",
     "NOT APPLICABLE", "NOT KNOWN", "NOT PROVIDED", "X"}
)  # fmt: skip

# Registers whose ids name one organisation over time. GB-CFS is Contracts Finder's per-notice party id.
STABLE_SCHEMES: frozenset[str] = frozenset(
    {"GB-COH", "GB-CHC", "GB-SC", "GB-NIC", "GB-MPR", "GB-REV", "GB-NHS", "GB-PPON", "GB-CQC", "GB-SRS",
     "GB-GOR", "GB-LAE", "GB-EDU", "GB-UKPRN", "GB-UPIN", "GB-LANI", "GB-PLA", "GB-GOVUK"}
)  # fmt: skip

# Ids that are case-sensitive URLs/paths; upper-casing would break them.
_CASE_SENSITIVE_SCHEMES: frozenset[str] = frozenset({"GB-SRS"})


def normalise_company_number(value: str) -> str | None:
    """Companies House number in its 8-character form, or None if the value cannot be one.

    Purely numeric values (source data often drops leading zeros) are left-padded to 8 digits; a known
    two-character prefix followed by 1-6 digits is padded after the prefix ("sc123" -> "SC000123"),
    which is the only reading that keeps the prefix meaning. More than 8 digits (e.g. a VAT number) or
    all zeros is not a company number.
    """
    compact = re.sub(r"\s+", "", value).upper().removeprefix("GB-COH-")
    result: str | None = None
    short = _PREFIXED_SHORT.fullmatch(compact)
    prefixed = _PREFIXED_NUMBER.fullmatch(compact)
    if _DIGITS.fullmatch(compact):
        result = compact.zfill(8)
    elif short and short.group(1) in COMPANY_NUMBER_PREFIXES:
        result = short.group(1) + short.group(2).zfill(6)
    elif _CH_GUIDE_NUMBER.fullmatch(compact) or (prefixed and prefixed.group(1) in COMPANY_NUMBER_PREFIXES):
        result = compact
    if result is None:
        return None
    serial = result if result.isdigit() else result[2:]
    return None if set(serial) <= {"0"} else result


def company_number_prefix(number: str) -> str | None:
    """The two-character register prefix ("SC", "RS", "CE", ...); None for plain E&W numbers or non-numbers."""
    normalised = normalise_company_number(number)
    if normalised is None or normalised[:2].isdigit():
        return None
    prefix = normalised[:2]
    return prefix if prefix in COMPANY_NUMBER_PREFIXES else None


def _is_placeholder(value: str) -> bool:
    compact = value.strip().upper()
    return compact in _NOT_AN_IDENTIFIER or bool(re.fullmatch(r"0+", compact))


def _normalise_scheme(scheme: str) -> str:
    return re.sub(r"[\s_]+", "-", scheme.strip()).upper()


def _normalise_value(scheme: str, compact: str) -> str | None:
    upper = compact.upper()
    result: str | None
    match scheme:
        case "GB-COH":
            result = normalise_company_number(compact)
        case "GB-CHC":
            # E&W charity numbers are at most 7 digits; "-1" style suffixes name linked subsidiary charities.
            m = re.fullmatch(r"0*(\d{1,7})(-\d{1,3})?", compact)
            result = m.group(1) + (m.group(2) or "") if m else None
        case "GB-SC":
            m = re.fullmatch(r"(?:SC)?(\d{1,6})", upper)
            result = "SC" + m.group(1).zfill(6) if m and set(m.group(1)) != {"0"} else None
        case "GB-NIC":
            m = re.fullmatch(r"(?:NIC)?0*(\d{1,6})", upper)
            result = m.group(1) if m else None
        case "GB-PPON":
            m = re.fullmatch(r"([A-Z]{4})-?(\d{4})-?([A-Z]{4})", upper)
            result = f"{m.group(1)}-{m.group(2)}-{m.group(3)}" if m else None
        case "GB-MPR" | "GB-NHS" | "GB-REV":
            result = upper if re.fullmatch(r"[A-Z0-9]{1,12}", upper) else None
        case "GB-CQC":
            result = upper if re.fullmatch(r"1-\d{6,12}", upper) else None
        case _:
            result = compact if scheme in _CASE_SENSITIVE_SCHEMES else upper
    return result


def normalise_identifier(scheme: str, value: str) -> tuple[str, str] | None:
    """(scheme, id) in canonical form, or None when the value is not an identifier of that scheme.

    A malformed value under a register we know the shape of (e.g. a 9-digit "GB-COH") is rejected rather
    than kept, so it can never join two suppliers; the caller still has the raw text.
    """
    norm_scheme = _normalise_scheme(scheme)
    if not norm_scheme or _is_placeholder(value):
        return None
    raw = value.strip()
    # Party ids such as "GB-COH-04482788" carry the scheme in the value.
    if raw.upper().startswith(norm_scheme + "-"):
        raw = raw[len(norm_scheme) + 1 :].strip()
    result = _normalise_value(norm_scheme, re.sub(r"\s+", "", raw))
    if result is None or _is_placeholder(result):
        return None
    return norm_scheme, result


@functools.lru_cache(maxsize=1024)  # a few schemes, asked for every party of every import batch
def is_stable_identity(scheme: str) -> bool:
    """True when ids of this scheme identify the same organisation across notices (GB-CFS ids do not)."""
    return _normalise_scheme(scheme) in STABLE_SCHEMES


# Mojibake from UTF-8 bytes decoded as cp1252/latin-1 ("CafÃ©", "â€™").
_MOJIBAKE_MARKERS = ("Ã", "Â", "â€")

_LEGAL_SUFFIXES: tuple[tuple[str, ...], ...] = tuple(
    tuple(s.split())
    for s in (
        "community interest company",
        "charitable incorporated organisation",
        "public limited company",
        "limited liability partnership",
        "private limited company",
        "limited",
        "ltd",
        "plc",
        "llp",
        "cic",
        "cio",
        "scio",
        "inc",
        "incorporated",
        "llc",
        "cyf",
        "cyfyngedig",
    )
)
_SUFFIX_LAST_WORDS: frozenset[str] = frozenset(suffix[-1] for suffix in _LEGAL_SUFFIXES)
_TRADING_AS = re.compile(r"[\s(](?:t/a|t\\a|trading\s+as)\s.*$", re.IGNORECASE)


def _repair_mojibake(text: str) -> str:
    if text.isascii() or not any(marker in text for marker in _MOJIBAKE_MARKERS):
        return text
    for codec in ("cp1252", "latin-1"):
        try:
            return text.encode(codec).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
    return text


def _collapse_initials(tokens: list[str]) -> list[str]:
    """Join runs of single letters so "T.S.G" and "TSG", "C.I.C." and "CIC" give the same key."""
    out: list[str] = []
    run = ""
    for token in tokens:
        if len(token) == 1 and token.isalpha():
            run += token
            continue
        if run:
            out.append(run)
            run = ""
        out.append(token)
    if run:
        out.append(run)
    return out


def clean_org_name(name: str) -> str:
    """Display form of a feed name: HTML entities decoded, trivial mojibake repaired, spaces collapsed."""
    if name.isascii() and "&" not in name:  # the common case: nothing to decode or repair
        return " ".join(name.split())
    text = name
    for _ in range(2):  # legacy feeds double-escape ("&amp;amp;")
        text = html.unescape(text)
    return " ".join(_repair_mojibake(text).split())


_APOSTROPHES = re.compile(r"['\u2019`]")
_NON_WORD = re.compile(r"[^\w]+|_")
_TRAILING_ACRONYM = re.compile(r"\s*\(\s*[A-Z][A-Z&.]{1,9}\s*\)\s*$")


def normalise_org_name(name: str) -> str:
    """Matching key for an organisation name; "" when nothing is left.

    Trading names after "t/a" are dropped so the key names the legal entity. Legal-form suffixes are
    dropped from the end only: "CIC" leaves the key, the enterprise rules read the raw name.
    """
    # A trailing acronym in brackets ("Warwickshire County Council (WCC)") names the same body.
    text = _TRAILING_ACRONYM.sub("", clean_org_name(name))
    if not text.isascii():  # NFKD and accent stripping change nothing in ASCII text
        text = unicodedata.normalize("NFKD", text)
        text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.casefold()
    if "t" in text:  # every trading-as marker contains a "t"
        text = _TRADING_AS.sub("", " " + text + " ")
    text = text.replace("&", " and ").replace("+", " and ")
    text = _APOSTROPHES.sub("", text)
    text = _NON_WORD.sub(" ", text)
    tokens = _collapse_initials(text.split())
    if tokens and tokens[0] == "the":
        tokens = tokens[1:]
    changed = True
    while changed and tokens:
        changed = False
        if tokens[-1] == "the":
            tokens = tokens[:-1]
            changed = True
            continue
        if tokens[-1] not in _SUFFIX_LAST_WORDS:
            break
        for suffix in _LEGAL_SUFFIXES:
            if len(tokens) > len(suffix) and tuple(tokens[-len(suffix) :]) == suffix:
                tokens = tokens[: -len(suffix)]
                changed = True
                break
    return " ".join(tokens)
