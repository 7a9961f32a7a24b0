"""UK postcode parsing, normalisation and extraction from free-text addresses.

Pure functions, no data files. Rules follow docs/geography.md section 5: canonical form is
outward + single space + inward, the strict regex is applied to new input only, and nothing is
auto-corrected except the explicit inward ``O`` -> ``0`` repair in :func:`extract_postcode`.

``ParsedPostcode.level`` describes the *shape* of the input: ``unit`` for anything shaped like a full
postcode (including special ones such as ``GIR 0AA``, ``ZZ99 3VZ`` or ``ASCN 1ZZ``), ``sector`` /
``district`` / ``area`` for partial postcodes, ``special`` for ``BFPO 1234`` (no postcode shape at
all) and ``invalid`` otherwise. ``special`` says what kind of non-ordinary postcode it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

STRICT_UNIT_RE = re.compile(
    r"^(?:(?:[A-PR-UWYZ][0-9][0-9]?|[A-PR-UWYZ][A-HK-Y][0-9][0-9]?|[A-PR-UWYZ][0-9][A-HJKPSTUW]"
    r"|[A-PR-UWYZ][A-HK-Y][0-9][ABEHMNPRVWXY]) [0-9][ABD-HJLNP-UW-Z]{2}|GIR 0AA)$"
)

# Postcode areas in use (ONS area table, plus BT which the shipped data leaves out, and the
# format-valid special areas BF (BFPO) and BX (non-geographic)). Used by extract_postcode to
# reject look-alikes such as Canadian "K2K 2MB" or glued letters like "RNB15".
_UK_AREAS_TEXT = """
    AB AL B BA BB BD BF BH BL BN BR BS BT BX CA CB CF CH CM CO CR CT CV CW DA DD DE DG DH DL DN DT DY
    E EC EH EN EX FK FY G GL GU GY HA HD HG HP HR HS HU HX IG IM IP IV JE KA KT KW KY L LA LD LE LL LN
    LS LU M ME MK ML N NE NG NN NP NR NW OL OX PA PE PH PL PO PR RG RH RM S SA SE SG SK SL SM SN SO SP
    SR SS ST SW SY TA TD TF TN TQ TR TS TW UB W WA WC WD WF WN WR WS WV YO ZE
"""
UK_AREAS = frozenset(_UK_AREAS_TEXT.split())

# British overseas territories that use a UK-format postcode (outward codes).
OVERSEAS_OUTWARDS = frozenset(("ASCN", "STHL", "TDCU", "BBND", "BIQQ", "FIQQ", "PCRN", "SIQQ", "TKCA", "GX11"))
CROWN_DEPENDENCY_AREAS = frozenset(("GY", "JE", "IM"))

_OUTWARD = r"[A-Z]{1,2}[0-9][A-Z0-9]?"
# GIR (Girobank) and NPT (pre-1984 Newport, terminated but still in the directory) lack the usual digit.
_LOOSE_UNIT_RE = re.compile(rf"^({_OUTWARD}|{'|'.join(sorted(OVERSEAS_OUTWARDS))}|GIR|NPT)([0-9][A-Z]{{2}})$")
_DISTRICT_RE = re.compile(rf"^{_OUTWARD}$")
_AREA_RE = re.compile(r"^[A-Z]{1,2}$")
_SECTOR_RE = re.compile(rf"^({_OUTWARD}) ([0-9])[A-Z]?$")
_BFPO_RE = re.compile(r"^BFPO ?([0-9]{1,4})$")
_NON_ALNUM_RE = re.compile(r"[^A-Z0-9]+")


@dataclass(frozen=True)
class ParsedPostcode:
    raw: str
    normalised: str | None
    level: str
    strict_valid: bool
    special: str | None


_SPECIAL_BY_AREA = {
    "BF": "bfpo",
    "BX": "non_geographic",
    "XM": "non_geographic",
    "BT": "northern_ireland",
    **dict.fromkeys(CROWN_DEPENDENCY_AREAS, "crown_dependency"),
}


def _special_for(outward: str) -> str | None:
    if outward == "GIR":
        return "girobank"
    if outward in OVERSEAS_OUTWARDS:
        return "overseas_territory"
    if outward.startswith("ZZ99"):
        return "nhs_pseudo"
    letters = re.match(r"[A-Z]*", outward)
    return _SPECIAL_BY_AREA.get(letters.group(0) if letters else "")


def parse_postcode(text: str) -> ParsedPostcode:
    """Parse a postcode field (not free text): full unit, sector, district, area, BFPO, or invalid."""
    spaced = " ".join(_NON_ALNUM_RE.sub(" ", text.upper()).split())
    bfpo = _BFPO_RE.match(spaced)
    if bfpo:
        return ParsedPostcode(text, f"BFPO {int(bfpo.group(1))}", "special", False, "bfpo")
    compact = spaced.replace(" ", "")
    unit = _LOOSE_UNIT_RE.match(compact)
    if unit:
        outward, inward = unit.groups()
        canonical = f"{outward} {inward}"
        return ParsedPostcode(text, canonical, "unit", bool(STRICT_UNIT_RE.match(canonical)), _special_for(outward))
    sector = _SECTOR_RE.match(spaced)
    if sector:
        outward, digit = sector.groups()
        return ParsedPostcode(text, f"{outward} {digit}", "sector", False, _special_for(outward))
    if _DISTRICT_RE.match(compact) and " " not in spaced:
        return ParsedPostcode(text, compact, "district", False, _special_for(compact))
    if _AREA_RE.match(compact) and " " not in spaced:
        return ParsedPostcode(text, compact, "area", False, _special_for(compact))
    return ParsedPostcode(text, None, "invalid", False, None)


def normalise_postcode(text: str) -> str | None:
    """Canonical form of a strictly valid unit postcode, else None."""
    parsed = parse_postcode(text)
    if parsed.level == "unit" and parsed.strict_valid:
        return parsed.normalised
    return None


# A candidate anywhere in the upper-cased text; boundaries are checked against the original text
# because the Contracts Finder damage ("\r\n" -> "rn", "\n" -> "n") is lower case.
_CANDIDATE_RE = re.compile(r"(?=([A-Z]{1,2})([0-9][A-Z0-9]?)(\s*-?\s*)([0-9O])([A-Z]{2}))")


def _left_ok(original: str, start: int) -> bool:
    if start == 0:
        return True
    prev = original[start - 1]
    if not prev.isalnum():
        return True
    # A glued line break: "...Birminghamrnb15 2gw" or "LONDONnSW15 6AR".
    return prev == "n"


def _right_ok(original: str, end: int) -> bool:
    if end >= len(original):
        return True
    nxt = original[end]
    if not nxt.isalnum():
        return True
    return original.startswith("rn", end) or nxt == "n"


def _candidate(match: re.Match[str], address: str) -> tuple[str, bool, int, int] | None:
    """(canonical postcode, repaired, end offset, area length) for a plausible match, else None."""
    start = match.start()
    letters, district_rest, space, inward_digit, inward_letters = match.groups()
    repaired = inward_digit == "O"
    if repaired and not space:
        return None
    outward = letters + district_rest
    end = start + len(outward) + len(space) + 3
    if letters not in UK_AREAS or not _left_ok(address, start) or not _right_ok(address, end):
        return None
    if address[start] == "n" and address[start + 1].isupper():
        return None  # "LondonnE1W 1AW": the lower-case n is a damaged line break, not part of "NE1W"
    canonical = f"{outward} {'0' if repaired else inward_digit}{inward_letters}"
    if not STRICT_UNIT_RE.match(canonical):
        return None
    return canonical, repaired, end, len(letters)


def extract_postcode(address: str) -> str | None:
    """The most plausible UK unit postcode in free text (canonical form), or None.

    Takes the last plausible candidate, since addresses end with the postcode. A candidate must be
    strictly valid, use a real postcode area, and sit at a word boundary (a glued damaged line break
    counts as one). An inward code written with a letter O for the zero ("SW20 OBA") is repaired only
    when it is separated by a space and no clean candidate exists.
    """
    if not address:
        return None
    upper = address.upper()
    if len(upper) != len(address):  # some Unicode upper-casing changes length; keep offsets aligned
        upper = "".join(ch.upper() if len(ch.upper()) == 1 else ch for ch in address)
    # Per kind (clean, repaired): the latest candidate; at the same end ("NW1" vs "W1") the longer area.
    best: dict[bool, tuple[int, int, str]] = {}
    for match in _CANDIDATE_RE.finditer(upper):
        found = _candidate(match, address)
        if found is None:
            continue
        canonical, repaired, end, area_len = found
        key = (end, area_len, canonical)
        if repaired not in best or key[:2] >= best[repaired][:2]:
            best[repaired] = key
    for kind in (False, True):
        if kind in best:
            return best[kind][2]
    return None
