"""Locality tiers: where a supplier's place sits relative to an anchor's own definition of "local".

An anchor's local area is a set of LAD codes (never postcode prefixes), built from a preset or given
explicitly. Tiers:

* ``local`` - the supplier's LAD is in the area;
* ``regional`` - same region as the area (the anchor's region) but not local;
* ``rest_of_uk`` - elsewhere in England, Wales, Scotland or Northern Ireland (``BT`` by rule);
* ``outside_uk`` - Channel Islands, Isle of Man, British overseas territories, or no usable postcode
  and a country hint that is clearly not the UK;
* ``unknown`` - no usable postcode and no (non-UK) country; also BFPO, NHS pseudo, non-geographic and
  unlocated postcodes. BFPO is ``unknown`` rather than ``outside_uk`` on purpose: a BFPO number routes
  forces mail through the UK and says nothing reliable about where a supplier operates.

Partial-postcode matches keep the locator's confidence (the best-fit LAD's share of the sector,
district or area), so callers can report expected values and lower bounds.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import polars as pl

from socialvalue.geography import Place, lad_reference

TIERS = ("local", "regional", "rest_of_uk", "outside_uk", "unknown")
PRESETS = ("own_lad", "icb", "wmca_7", "wm_region")
RULE_VERSION = "locality-2026.11.1"

WMCA_CODE = "E47000007"
WEST_MIDLANDS_REGION = "E12000005"
UK_COUNTRY_CODES = frozenset(("E92000001", "W92000004", "S92000003", "N92000002"))
CROWN_DEPENDENCY_LADS = frozenset(("L99999999", "M99999999"))

# Locator methods that decide the tier by rule: (tier, confidence, reason).
_RULE_TIERS: dict[str, tuple[str, float | None, str]] = {
    "special_overseas_territory": ("outside_uk", 1.0, "British overseas territory postcode: outside the UK."),
    "rule_northern_ireland": ("rest_of_uk", 1.0, "Northern Ireland (BT) postcode: rest of the UK."),
    "special_bfpo": ("unknown", None, "BFPO address: forces mail, location unknown."),
    "special_nhs_pseudo": ("unknown", None, "NHS pseudo-postcode: no location."),
    "special_non_geographic": ("unknown", None, "Non-geographic postcode: no location."),
    "unit_no_location": ("unknown", None, "Postcode exists but has no location in the ONS directory."),
}

_UK_NAMES = frozenset(
    (
        "uk",
        "gb",
        "gbr",
        "u.k.",
        "united kingdom",
        "great britain",
        "britain",
        "england",
        "scotland",
        "wales",
        "cymru",
        "northern ireland",
        "united kingdom of great britain and northern ireland",
    )
)
_OUTSIDE_UK_TEXT = (
    "jersey; guernsey; isle of man; channel islands; alderney; sark; gibraltar; falkland islands; bermuda; "
    "cayman islands; anguilla; montserrat; pitcairn; ascension; st helena; saint helena; tristan da cunha; "
    "british virgin islands; turks and caicos islands; ireland; republic of ireland; eire; france; germany; "
    "deutschland; spain; espana; italy; italia; portugal; netherlands; the netherlands; holland; belgium; "
    "luxembourg; denmark; danmark; sweden; norway; finland; iceland; austria; switzerland; poland; "
    "czech republic; czechia; slovakia; hungary; romania; bulgaria; greece; cyprus; malta; croatia; slovenia; "
    "serbia; bosnia and herzegovina; montenegro; albania; north macedonia; kosovo; estonia; latvia; lithuania; "
    "ukraine; belarus; moldova; russia; russian federation; turkey; turkiye; georgia; armenia; azerbaijan; "
    "israel; palestine; lebanon; jordan; syria; iraq; iran; saudi arabia; kuwait; qatar; bahrain; oman; yemen; "
    "united arab emirates; uae; egypt; libya; tunisia; algeria; morocco; sudan; ethiopia; kenya; uganda; "
    "tanzania; rwanda; nigeria; ghana; senegal; niger; mali; cameroon; ivory coast; cote d'ivoire; "
    "south africa; namibia; botswana; zimbabwe; zambia; mozambique; malawi; madagascar; mauritius; angola; "
    "congo; democratic republic of the congo; india; pakistan; bangladesh; sri lanka; nepal; bhutan; maldives; "
    "afghanistan; kazakhstan; uzbekistan; china; hong kong; macau; taiwan; japan; south korea; korea; "
    "north korea; mongolia; vietnam; thailand; malaysia; singapore; indonesia; philippines; cambodia; laos; "
    "myanmar; brunei; australia; new zealand; fiji; papua new guinea; canada; united states; "
    "united states of america; usa; u.s.a; america; mexico; guatemala; belize; honduras; el salvador; "
    "nicaragua; costa rica; panama; cuba; jamaica; haiti; dominican republic; bahamas; barbados; "
    "trinidad and tobago; colombia; venezuela; ecuador; peru; bolivia; brazil; brasil; paraguay; uruguay; "
    "argentina; chile"
)
_OUTSIDE_UK_NAMES = frozenset(name.strip() for name in _OUTSIDE_UK_TEXT.split(";"))
# ISO 3166 alpha-2 codes seen in supplier data; GB and UK are handled as UK.
_NON_UK_ISO2_TEXT = (
    "IE FR DE ES IT PT NL BE LU DK SE NO FI IS AT CH PL CZ SK HU RO BG GR CY MT HR SI EE LV LT UA TR IL AE SA QA "
    "EG ZA NG KE IN PK BD CN HK JP KR SG MY ID PH TH VN AU NZ CA US MX BR AR CL JE GG IM GI"
)
_NON_UK_ISO2 = frozenset(_NON_UK_ISO2_TEXT.split())


def country_is_uk(country_hint: str | None) -> bool | None:
    """True for a UK country name or code, False for one clearly outside the UK, None if unsure."""
    if country_hint is None:
        return None
    text = re.sub(r"\s+", " ", country_hint.strip().lower()).strip(" .,")
    if not text:
        return None
    if text in _UK_NAMES:
        return True
    if text.upper() in _NON_UK_ISO2 and len(text) == 2:
        return False
    if text in _OUTSIDE_UK_NAMES:
        return False
    return None


@dataclass(frozen=True)
class LocalArea:
    preset: str | None
    lad_codes: frozenset[str]
    region_code: str
    label: str


@dataclass(frozen=True)
class TierResult:
    tier: str
    confidence: float | None
    method: str
    reason: str


def _lad_row(lad_code: str) -> dict[str, object]:
    rows = lad_reference().filter(pl.col("lad_code") == lad_code)
    if rows.is_empty():
        raise ValueError(f"unknown LAD code {lad_code!r}")
    return rows.row(0, named=True)


def _modal_region(lad_codes: Iterable[str]) -> str:
    regions = lad_reference().filter(pl.col("lad_code").is_in(list(lad_codes)))["region_code"].to_list()
    counts: Counter[str] = Counter(str(r) for r in regions if r)
    if not counts:
        raise ValueError("no region for these LADs")
    return min(counts, key=lambda code: (-counts[code], code))


def _short_icb_name(name: str) -> str:
    return re.sub(r"^NHS\s+|\s+Integrated Care Board$", "", name) + " ICB"


def _icb_lads(icb_code: str) -> tuple[str, frozenset[str]]:
    lads = lad_reference()
    column = "icb_ods_code" if icb_code.upper().startswith("Q") else "icb_code"
    rows = lads.filter(pl.col(column) == icb_code.upper())
    if rows.is_empty():
        raise ValueError(f"no LAD has best-fit ICB {icb_code!r}")
    return rows["icb_name"][0], frozenset(rows["lad_code"].to_list())


def local_area(preset: str, *, lad_code: str | None = None, icb_code: str | None = None) -> LocalArea:
    """An anchor's local area from a preset.

    ``own_lad`` needs ``lad_code``; ``icb`` takes ``icb_code`` (GSS ``E54...`` or ODS ``Q..``) or the
    ICB of ``lad_code``; ``wmca_7`` is the 7 WMCA constituent councils (ONS CAUTH E47000007);
    ``wm_region`` is the 30 LADs of the West Midlands region.
    """
    lads = lad_reference()
    if preset == "own_lad":
        if lad_code is None:
            raise ValueError("own_lad needs lad_code")
        row = _lad_row(lad_code)
        return LocalArea(preset, frozenset((lad_code,)), str(row["region_code"]), f"{row['lad_name']} (own LAD)")
    if preset == "icb":
        if icb_code is None:
            if lad_code is None:
                raise ValueError("icb needs icb_code or lad_code")
            found = _lad_row(lad_code)["icb_code"]
            if not found:
                raise ValueError(f"LAD {lad_code} has no ICB")
            icb_code = str(found)
        name, codes = _icb_lads(icb_code)
        region = str(_lad_row(lad_code)["region_code"]) if lad_code in codes else _modal_region(codes)
        return LocalArea(preset, codes, region, f"{_short_icb_name(name)} footprint ({len(codes)} LADs)")
    if preset == "wmca_7":
        codes = frozenset(lads.filter(pl.col("cauth_code") == WMCA_CODE)["lad_code"].to_list())
        return LocalArea(preset, codes, WEST_MIDLANDS_REGION, f"WMCA constituent councils ({len(codes)} LADs)")
    if preset == "wm_region":
        codes = frozenset(lads.filter(pl.col("region_code") == WEST_MIDLANDS_REGION)["lad_code"].to_list())
        return LocalArea(preset, codes, WEST_MIDLANDS_REGION, f"West Midlands region ({len(codes)} LADs)")
    raise ValueError(f"unknown preset {preset!r}; expected one of {PRESETS}")


def custom_area(lad_codes: Iterable[str], *, label: str) -> LocalArea:
    """A local area from explicit LAD codes (checked against the LAD reference); region = their modal region."""
    codes = frozenset(code.strip().upper() for code in lad_codes)
    if not codes:
        raise ValueError("a local area needs at least one LAD code")
    known = set(lad_reference()["lad_code"].to_list())
    unknown = sorted(codes - known)
    if unknown:
        raise ValueError(f"unknown LAD codes: {', '.join(unknown)}")
    return LocalArea(None, codes, _modal_region(codes), label)


def _no_postcode(method: str, country_hint: str | None, why: str) -> TierResult:
    uk = country_is_uk(country_hint)
    if uk is False:
        return TierResult("outside_uk", 1.0, method, f"{why} Country given as {country_hint!r}, outside the UK.")
    if uk is True:
        return TierResult("unknown", None, method, f"{why} Country given as {country_hint!r}; UK but area unknown.")
    return TierResult("unknown", None, method, why)


def _percent(share: float) -> int:
    # Half-up, written so the vectorised tiers_for rounds identically.
    return math.floor(share * 100 + 0.5)


def _tier_by_lad(place: Place, area: LocalArea) -> TierResult:
    confidence = place.confidence
    where = place.lad_name or place.lad_code
    how = ""
    if place.method != "unit":
        share = "" if confidence is None else f", {_percent(confidence)}%"
        how = f" (best fit for {place.method} {place.lookup_key or place.postcode}{share})"
    if place.lad_code in CROWN_DEPENDENCY_LADS:
        tier, reason = "outside_uk", f"{where}: Crown Dependency, outside the UK{how}."
    elif place.lad_code in area.lad_codes:
        tier, reason = "local", f"{where} is in {area.label}{how}."
    elif place.region_code == area.region_code:
        tier, reason = "regional", f"{where} is in the same region, outside {area.label}{how}."
    elif place.country_code in UK_COUNTRY_CODES:
        tier, reason = "rest_of_uk", f"{where} is elsewhere in the UK{how}."
    else:
        tier, confidence, reason = "unknown", None, f"{where}: country not recognised."
    return TierResult(tier, confidence, place.method, reason)


def tier_for(place: Place | None, area: LocalArea, *, country_hint: str | None = None) -> TierResult:
    """The locality tier of a located supplier against an anchor's local area.

    ``country_hint`` (e.g. an OCDS ``countryName``) is used only when there is no usable postcode.
    """
    if place is None:
        return _no_postcode("no_postcode", country_hint, "No postcode.")
    rule = _RULE_TIERS.get(place.method)
    if rule is not None:
        tier, confidence, reason = rule
        return TierResult(tier, confidence, place.method, reason)
    if place.lad_code is None:
        why = "No usable postcode." if place.postcode is None else f"Postcode {place.postcode} not found."
        return _no_postcode(place.method, country_hint, why)
    return _tier_by_lad(place, area)


def tiers_for(
    places: pl.DataFrame, area: LocalArea, *, country_hints: Sequence[str | None] | None = None
) -> pl.DataFrame:
    """:func:`tier_for` over a :func:`~socialvalue.geography.locate_many` frame, vectorised.

    Returns one row per place with ``tier``, ``tier_confidence``, ``tier_method``, ``tier_reason``,
    equal to what ``tier_for`` gives row by row.
    """
    hints = list(country_hints) if country_hints is not None else [None] * places.height
    if len(hints) != places.height:
        raise ValueError("country_hints must have one entry per place")
    distinct = {hint for hint in hints if hint is not None}
    uk_by_hint = {hint: country_is_uk(hint) for hint in distinct}
    frame = places.select(
        "method", "postcode", "lookup_key", "confidence", "lad_code", "lad_name", "region_code", "country_code"
    ).with_columns(
        hint_uk=pl.Series([uk_by_hint.get(h) if h is not None else None for h in hints], dtype=pl.Boolean),
        hint_repr=pl.Series([repr(h) if h is not None else None for h in hints], dtype=pl.String),
    )
    rules = pl.DataFrame(
        {
            "method": list(_RULE_TIERS),
            "rule_tier": [rule[0] for rule in _RULE_TIERS.values()],
            "rule_confidence": [rule[1] for rule in _RULE_TIERS.values()],
            "rule_reason": [rule[2] for rule in _RULE_TIERS.values()],
        },
        schema={"method": pl.String, "rule_tier": pl.String, "rule_confidence": pl.Float64, "rule_reason": pl.String},
    )
    frame = frame.join(rules, on="method", how="left", maintain_order="left")
    method, conf = pl.col("method"), pl.col("confidence")
    why = (
        pl.when(pl.col("postcode").is_null())
        .then(pl.lit("No usable postcode."))
        .otherwise(pl.lit("Postcode ") + pl.col("postcode") + pl.lit(" not found."))
    )
    where = pl.coalesce("lad_name", "lad_code")
    share = (
        pl.when(conf.is_null())
        .then(pl.lit(""))
        .otherwise(pl.lit(", ") + (conf * 100 + 0.5).floor().cast(pl.Int64).cast(pl.String) + pl.lit("%"))
    )
    how = (
        pl.when(method == "unit")
        .then(pl.lit(""))
        .otherwise(
            pl.lit(" (best fit for ")
            + method
            + pl.lit(" ")
            + pl.coalesce("lookup_key", "postcode")
            + share
            + pl.lit(")")
        )
    )
    in_area = pl.col("lad_code").is_in(list(area.lad_codes))
    crown = pl.col("lad_code").is_in(list(CROWN_DEPENDENCY_LADS))
    same_region = pl.col("region_code") == area.region_code
    in_uk = pl.col("country_code").is_in(list(UK_COUNTRY_CODES))
    has_rule, no_lad = pl.col("rule_tier").is_not_null(), pl.col("lad_code").is_null()
    hint_uk = pl.col("hint_uk")
    tier = (
        pl.when(has_rule)
        .then(pl.col("rule_tier"))
        .when(no_lad & (hint_uk == False))  # noqa: E712 - polars comparison, null stays null
        .then(pl.lit("outside_uk"))
        .when(no_lad)
        .then(pl.lit("unknown"))
        .when(crown)
        .then(pl.lit("outside_uk"))
        .when(in_area)
        .then(pl.lit("local"))
        .when(same_region)
        .then(pl.lit("regional"))
        .when(in_uk)
        .then(pl.lit("rest_of_uk"))
        .otherwise(pl.lit("unknown"))
    )
    confidence = (
        pl.when(has_rule)
        .then(pl.col("rule_confidence"))
        .when(no_lad & (hint_uk == False))  # noqa: E712
        .then(pl.lit(1.0))
        .when(no_lad)
        .then(pl.lit(None, dtype=pl.Float64))
        .when(crown | in_area | same_region | in_uk)
        .then(conf)
    )
    label = area.label
    reason = (
        pl.when(has_rule)
        .then(pl.col("rule_reason"))
        .when(no_lad & (hint_uk == False))  # noqa: E712
        .then(why + pl.lit(" Country given as ") + pl.col("hint_repr") + pl.lit(", outside the UK."))
        .when(no_lad & hint_uk)
        .then(why + pl.lit(" Country given as ") + pl.col("hint_repr") + pl.lit("; UK but area unknown."))
        .when(no_lad)
        .then(why)
        .when(crown)
        .then(where + pl.lit(": Crown Dependency, outside the UK") + how + pl.lit("."))
        .when(in_area)
        .then(where + pl.lit(f" is in {label}") + how + pl.lit("."))
        .when(same_region)
        .then(where + pl.lit(f" is in the same region, outside {label}") + how + pl.lit("."))
        .when(in_uk)
        .then(where + pl.lit(" is elsewhere in the UK") + how + pl.lit("."))
        .otherwise(where + pl.lit(": country not recognised."))
    )
    return frame.select(tier=tier, tier_confidence=confidence, tier_method=method, tier_reason=reason)
