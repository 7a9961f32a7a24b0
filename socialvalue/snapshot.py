"""A quarterly statement's frozen snapshot: its shape, canonical JSON, hash and validation, and the text formats
people read (pounds, shares, dates)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal, NoReturn, TypedDict, cast
from zoneinfo import ZoneInfo

from socialvalue.catalogue import CASH_UNIT
from socialvalue.periods import long_date

# Version 2 added each share's coverage, the contracts and suppliers a headline rests on, the largest suppliers
# of any location and a null share for "not known". Version 1 snapshots stay valid and are read through
# ``upgrade_snapshot``, so statements published before then still render.
SCHEMA = "localvalue.statement/2"
SCHEMA_V1 = "localvalue.statement/1"


LANGUAGE = "en-GB"


UK_TZ = ZoneInfo("Europe/London")


class Supersedes(TypedDict):
    id: str
    version: int
    reason: str


class StatementInfo(TypedDict):
    id: str
    anchor_name: str
    anchor_code: str | None
    scope_kind: Literal["anchor", "group"]
    members: list[str]
    period: str
    period_label: str
    version: int
    status: Literal["draft", "published", "superseded", "withdrawn"]
    published_at: str | None
    generated_at: str
    supersedes: Supersedes | None


class Exclusions(TypedDict):
    non_gbp: int
    withdrawn: int
    no_value: int
    no_date: int


class Coverage(TypedDict):
    """The share of value each kind of share could be judged on (null when nothing was counted)."""

    locality: str | None
    status: str | None
    sme: str | None
    vcse: str | None
    social_enterprise: str | None


class Headline(TypedDict):
    basis: str
    total_value_pence: int
    line_count: int
    contract_count: int | None  # None: not recorded (version 1)
    supplier_count: int
    supplier_names: list[str]  # all of them when five or fewer, else empty
    coverage: Coverage
    coverage_threshold: str | None
    local_share: str | None
    local_share_known: str | None
    regional_share: str | None
    sme_share: str | None
    vcse_share: str | None
    social_enterprise_share: str | None
    unknown_locality_share: str | None
    unknown_status_share: str | None
    excluded: Exclusions


class TrendPoint(TypedDict):
    period: str
    local_share: str | None
    total_value_pence: int
    coverage: str | None


class TierRow(TypedDict):
    tier: Literal["local", "regional", "rest_of_uk", "outside_uk", "unknown"]
    value_pence: int
    share: str | None


class SupplierTypeRow(TypedDict):
    category: str
    value_pence: int
    share: str | None
    suppliers: int


class TopSupplier(TypedDict):
    name: str
    value_pence: int
    category: str
    lad_name: str | None


class Supplier(TypedDict):
    name: str
    value_pence: int
    category: str
    tier: str


class Commitment(TypedDict):
    contract: str
    supplier: str
    measure: str
    unit: str
    committed: str
    delivered: str
    verified: str


class LocalDefinition(TypedDict):
    preset: str | None
    label: str
    lad_names: list[str]


class RuleVersions(TypedDict):
    locality: str
    enterprise: str
    metrics: str


class Methodology(TypedDict):
    local_definition: LocalDefinition
    bases: list[str]
    rule_versions: RuleVersions
    exclusions: list[str]
    notes: list[str]


class Source(TypedDict):
    name: str
    licence: str
    attribution: str


class StatementSnapshot(TypedDict):
    schema: str
    statement: StatementInfo
    headline: Headline
    spread_headline: Headline | None
    trend: list[TrendPoint]
    by_tier: list[TierRow]
    by_supplier_type: list[SupplierTypeRow]
    top_local_suppliers: list[TopSupplier]
    top_suppliers: list[Supplier]
    commitments: list[Commitment]
    methodology: Methodology
    sources: list[Source]
    figures_sha256: str


# Attribution the licences require on every published statement; builders of snapshots start from this list.
STANDARD_SOURCES: tuple[Source, ...] = (
    Source(
        name="Contracts Finder",
        licence="Open Government Licence v3.0",
        attribution="Contains public sector information licensed under the Open Government Licence v3.0 "
        "(Cabinet Office, Contracts Finder).",
    ),
    Source(
        name="Find a Tender",
        licence="Open Government Licence v3.0",
        attribution="Contains public sector information licensed under the Open Government Licence v3.0 "
        "(Cabinet Office, Find a Tender).",
    ),
    Source(
        name="ONS Postcode Directory and geography lookups",
        licence="Open Government Licence v3.0",
        attribution="Source: Office for National Statistics licensed under the Open Government Licence v3.0. "
        "Contains OS data © Crown copyright and database right 2025. "
        "Contains Royal Mail data © Royal Mail copyright and database right 2025.",
    ),
)


def _plain(value: Any, path: str) -> Any:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"statement snapshot: key {key!r} under {path or 'the top level'} is not a string")
            out[key] = _plain(item, f"{path}.{key}" if path else key)
        return out
    if isinstance(value, list | tuple):
        return [_plain(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, float):
        # Floats would make the hash depend on binary rounding; the schema has none.
        raise ValueError(f"statement snapshot: {path} is a float; money is integer pence and shares decimal strings")
    if value is None or isinstance(value, str | int):
        return value
    raise ValueError(f"statement snapshot: {path} has type {type(value).__name__}, which is not JSON data")


def canonical_json(snapshot: Mapping[str, Any]) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the same data always gives the same bytes."""
    return json.dumps(
        _plain(snapshot, ""), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def figures_sha256(snapshot: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of the snapshot without its own ``figures_sha256`` key."""
    body = {key: value for key, value in snapshot.items() if key != "figures_sha256"}
    return hashlib.sha256(canonical_json(body)).hexdigest()


def format_pence(p: int) -> str:
    """Whole pounds with thousands separators, rounded to the nearest pound (halves away from zero).

    Statements show whole pounds because contract values are published to the pound or coarser; shares are
    computed from the exact pence, so a share need not equal the ratio of two rounded amounts.
    """
    if isinstance(p, bool) or not isinstance(p, int):
        raise ValueError(f"money must be integer pence, got {p!r}")
    pounds = (abs(p) + 50) // 100
    return f"{'-' if p < 0 and pounds else ''}£{pounds:,}"


def _share_decimal(s: str) -> Decimal:
    try:
        value = Decimal(s)
    except InvalidOperation:
        raise ValueError(f"share must be a decimal string such as '0.4125', got {s!r}") from None
    if not value.is_finite():
        raise ValueError(f"share must be a finite decimal string, got {s!r}")
    return value


def format_share(s: str | None) -> str:
    """A share such as "0.4125" as a percentage to one decimal place ("41.3%"), or "not known"."""
    if s is None:
        return "not known"
    percent = (_share_decimal(s) * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return f"{percent}%"


def format_commitment(text: str, unit: str) -> str:
    """A commitment quantity for people: cash in pounds and pence ("£5,000.00"), anything else as a number."""
    if unit == CASH_UNIT:
        try:
            return f"£{Decimal(text):,.2f}"
        except InvalidOperation:
            return text
    return _format_quantity(text)


def _format_quantity(text: str) -> str:
    """Commitment quantities: thousands separators when the text is a plain number, else as given."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        return text
    if not value.is_finite():
        return text
    sign = "-" if value < 0 else ""
    whole, _, frac = f"{abs(value):f}".partition(".")
    return f"{sign}{int(whole):,}" + (f".{frac}" if frac else "")


def _parse_instant(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _uk_date(text: str) -> str:
    local = _parse_instant(text).astimezone(UK_TZ)
    return long_date(local.date())


def _uk_datetime(text: str) -> str:
    local = _parse_instant(text).astimezone(UK_TZ)
    return f"{_uk_date(text)}, {local:%H:%M} UK time"


def _short_period(period: str) -> str:
    """'2025Q1' -> 'Q1 25/26' (UK financial years start in April)."""
    year, quarter = int(period[:4]), period[5]
    return f"Q{quarter} {year % 100:02d}/{(year + 1) % 100:02d}"


_Check = Callable[[Any, str], None]


def _fail(path: str, expected: str, value: Any) -> NoReturn:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    raise ValueError(f"statement snapshot: {path} must be {expected}, got {shown}")


def _text(value: Any, path: str) -> None:
    if not isinstance(value, str):
        _fail(path, "a string", value)


def _count(value: Any, path: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        _fail(path, "a non-negative integer", value)


def _pence(value: Any, path: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(path, "integer pence", value)


def _share(value: Any, path: str) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        _fail(path, "a decimal string or null", value)
    try:
        share = _share_decimal(value)
    except ValueError:
        _fail(path, "a decimal string such as '0.4125'", value)
    if not Decimal(0) <= share <= Decimal(1):
        _fail(path, "a share between 0 and 1", value)


def _instant(value: Any, path: str) -> None:
    if not isinstance(value, str):
        _fail(path, "an ISO 8601 date-time string", value)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        _fail(path, "an ISO 8601 date-time string", value)
    if parsed.tzinfo is None:
        _fail(path, "a date-time with a time zone", value)


def _period(value: Any, path: str) -> None:
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}Q[1-4]", value):
        _fail(path, "a quarter like '2025Q1'", value)


def _sha256_hex(value: Any, path: str) -> None:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-f]{64}", value):
        _fail(path, "64 lower-case hex digits", value)


def _one_of(*allowed: str) -> _Check:
    def check(value: Any, path: str) -> None:
        if value not in allowed:
            _fail(path, "one of " + ", ".join(repr(a) for a in allowed), value)

    return check


def _optional(check: _Check) -> _Check:
    def optional(value: Any, path: str) -> None:
        if value is not None:
            check(value, path)

    return optional


def _list_of(check: _Check, max_items: int | None = None) -> _Check:
    def each(value: Any, path: str) -> None:
        if not isinstance(value, list | tuple):
            _fail(path, "a list", value)
        if max_items is not None and len(value) > max_items:
            _fail(path, f"a list of at most {max_items} items", f"{len(value)} items")
        for i, item in enumerate(value):
            check(item, f"{path}[{i}]")

    return each


def _record(spec: Mapping[str, _Check]) -> _Check:
    def record(value: Any, path: str) -> None:
        if not isinstance(value, Mapping):
            _fail(path or "the snapshot", "an object", value)
        for key, check in spec.items():
            key_path = f"{path}.{key}" if path else key
            if key not in value:
                raise ValueError(f"statement snapshot is missing required key {key_path!r}")
            check(value[key], key_path)

    return record


_HEADLINE_V1_KEYS: dict[str, _Check] = {
    "basis": _text,
    "total_value_pence": _pence,
    "line_count": _count,
    "supplier_count": _count,
    "local_share": _share,
    "local_share_known": _share,
    "regional_share": _share,
    "sme_share": _share,
    "vcse_share": _share,
    "social_enterprise_share": _share,
    "unknown_locality_share": _share,
    "unknown_status_share": _share,
    "excluded": _record({"non_gbp": _count, "withdrawn": _count, "no_value": _count, "no_date": _count}),
}


_HEADLINE_V1 = _record(_HEADLINE_V1_KEYS)


_HEADLINE = _record(
    {
        **_HEADLINE_V1_KEYS,
        "contract_count": _optional(_count),
        "supplier_names": _list_of(_text),
        "coverage": _record(
            {"locality": _share, "status": _share, "sme": _share, "vcse": _share, "social_enterprise": _share}
        ),
        "coverage_threshold": _optional(_share),
    }
)


_V1_KEYS: dict[str, _Check] = {
    "schema": _one_of(SCHEMA_V1),
    "statement": _record(
        {
            "id": _text,
            "anchor_name": _text,
            "anchor_code": _optional(_text),
            "scope_kind": _one_of("anchor", "group"),
            "members": _list_of(_text),
            "period": _period,
            "period_label": _text,
            "version": _count,
            "status": _one_of("draft", "published", "superseded", "withdrawn"),
            "published_at": _optional(_instant),
            "generated_at": _instant,
            "supersedes": _optional(_record({"id": _text, "version": _count, "reason": _text})),
        }
    ),
    "headline": _HEADLINE_V1,
    "spread_headline": _optional(_HEADLINE_V1),
    "trend": _list_of(_record({"period": _period, "local_share": _share, "total_value_pence": _pence}), max_items=8),
    "by_tier": _list_of(
        _record(
            {
                "tier": _one_of("local", "regional", "rest_of_uk", "outside_uk", "unknown"),
                "value_pence": _pence,
                "share": _share,
            }
        )
    ),
    "by_supplier_type": _list_of(
        _record({"category": _text, "value_pence": _pence, "share": _share, "suppliers": _count})
    ),
    "top_local_suppliers": _list_of(
        _record({"name": _text, "value_pence": _pence, "category": _text, "lad_name": _optional(_text)})
    ),
    "commitments": _list_of(
        _record(
            {
                "contract": _text,
                "supplier": _text,
                "measure": _text,
                "unit": _text,
                "committed": _text,
                "delivered": _text,
                "verified": _text,
            }
        )
    ),
    "methodology": _record(
        {
            "local_definition": _record({"preset": _optional(_text), "label": _text, "lad_names": _list_of(_text)}),
            "bases": _list_of(_text),
            "rule_versions": _record({"locality": _text, "enterprise": _text, "metrics": _text}),
            "exclusions": _list_of(_text),
            "notes": _list_of(_text),
        }
    ),
    "sources": _list_of(_record({"name": _text, "licence": _text, "attribution": _text})),
    "figures_sha256": _sha256_hex,
}


_SNAPSHOT_V1 = _record(_V1_KEYS)


_SNAPSHOT = _record(
    {
        **_V1_KEYS,
        "schema": _one_of(SCHEMA),
        "headline": _HEADLINE,
        "spread_headline": _optional(_HEADLINE),
        "trend": _list_of(
            _record({"period": _period, "local_share": _share, "total_value_pence": _pence, "coverage": _share}),
            max_items=8,
        ),
        "top_suppliers": _list_of(
            _record(
                {
                    "name": _text,
                    "value_pence": _pence,
                    "category": _text,
                    "tier": _one_of("local", "regional", "rest_of_uk", "outside_uk", "unknown"),
                }
            )
        ),
    }
)


def _flag(value: Any, path: str) -> None:
    if not isinstance(value, bool):
        _fail(path, "true or false", value)


# The optional section of a statement that shows the paid basis (payments from published spend files).
_PAID = _record(
    {
        "lines": _count,
        "transactions": _count,
        "redacted_lines": _count,
        "redacted_value_pence": _pence,
        "months": _list_of(_text),
        "months_missing": _list_of(_text),
        "partial_quarter": _flag,
        "influenceable_only": _flag,
        "left_out_lines": _count,
        "left_out_value_pence": _pence,
        "left_out_by_rule": _list_of(_record({"rule": _text, "value_pence": _pence})),
        "files": _list_of(_record({"name": _text, "sha256": _sha256_hex, "months": _list_of(_text)})),
    }
)


def validate_snapshot(snapshot: Mapping[str, Any]) -> StatementSnapshot:
    """Check every required key and value type; raise ValueError naming the first problem found.

    The stored hash must match the figures, so a snapshot edited after it was frozen cannot be rendered.
    """
    if isinstance(snapshot, Mapping) and snapshot.get("schema") == SCHEMA_V1:
        _SNAPSHOT_V1(snapshot, "")
    else:
        _SNAPSHOT(snapshot, "")
    if snapshot.get("paid") is not None:
        _PAID(snapshot["paid"], "paid")
    expected = figures_sha256(snapshot)
    if snapshot["figures_sha256"] != expected:
        raise ValueError(
            "statement snapshot: figures_sha256 does not match the snapshot's figures "
            f"(stored {snapshot['figures_sha256']}, computed {expected}); it was changed after it was hashed"
        )
    return cast(StatementSnapshot, snapshot)


def _complement(share: str | None) -> str | None:
    return None if share is None else str(Decimal(1) - _share_decimal(share))


_V1_STANDARD_EXCLUSIONS = frozenset(
    {
        "Withdrawn and cancelled contracts are left out.",
        "Values in currencies other than pounds sterling are left out and counted, never converted.",
        "Contract lines with no value, or with neither an award date nor a contract period, are left out and counted.",
    }
)


def upgrade_snapshot(snapshot: Mapping[str, Any]) -> StatementSnapshot:
    """A validated snapshot in the current shape; a version 1 snapshot gets what can be derived from it.

    Version 1 did not record the coverage of SME, VCSE and social-enterprise shares separately, so they take
    the coverage of supplier status; its shares stay as they were published (they are the public record).
    """
    snap = validate_snapshot(snapshot)
    if snap["schema"] != SCHEMA_V1:
        return snap
    out: dict[str, Any] = json.loads(canonical_json(snap))

    def headline(h: dict[str, Any]) -> dict[str, Any]:
        status = _complement(h["unknown_status_share"])
        coverage = {"locality": _complement(h["unknown_locality_share"]), "status": status}
        coverage |= {"sme": status, "vcse": status, "social_enterprise": status}
        return {**h, "contract_count": None, "supplier_names": [], "coverage": coverage, "coverage_threshold": None}

    out["headline"] = headline(out["headline"])
    if out["spread_headline"] is not None:
        out["spread_headline"] = headline(out["spread_headline"])
    out["trend"] = [{**p, "coverage": None} for p in out["trend"]]
    out["top_suppliers"] = []
    # Version 1 repeated the standard exclusions (which every statement lists) in its own list.
    method = out["methodology"]
    method["exclusions"] = [e for e in method["exclusions"] if e not in _V1_STANDARD_EXCLUSIONS]
    return cast(StatementSnapshot, out)


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """'1 contract', '3 contracts'."""
    return f"{count:,} {singular if count == 1 else (plural_form or singular + 's')}"


def format_judged(share: str | None, coverage: str | None) -> str:
    """A share for people: "41.3%", or "not known" with the part of the value it could be judged on."""
    if share is not None:
        return format_share(share)
    if coverage is None:
        return "not known (nothing counted)"
    return f"not known (judged on {format_share(coverage)} of the value)"


def resting_on(head: Headline) -> str:
    """What a headline rests on: 'It rests on 1 contract with 1 supplier: Building Services NOW.'"""
    contracts = head["contract_count"]
    suppliers = plural(head["supplier_count"], "supplier")
    if head.get("basis") == "paid":
        text = f"It rests on {plural(head['line_count'], 'payment line')} to {plural(head['supplier_count'], 'payee')}"
    elif contracts is None:
        text = f"It rests on {plural(head['line_count'], 'contract line')} with {suppliers}"
    else:
        text = f"It rests on {plural(contracts, 'contract')} with {suppliers}"
    names = head["supplier_names"]
    return text + (f": {', '.join(names)}." if names else ".")


def glossary(snap: StatementSnapshot) -> list[tuple[str, str]]:
    """The words a reader needs, closing every statement (the PDF and the HTML version alike)."""
    threshold = snap["headline"]["coverage_threshold"]
    bar = f"at least {format_share(threshold)}" if threshold is not None else "enough"
    return [
        ("Local", f"A supplier whose postcode is in {snap['methodology']['local_definition']['label']}."),
        (
            "Coverage",
            "The share of the value for which a supplier's location or status is known, so a share could be "
            "judged on it. Every share is shown with its coverage.",
        ),
        (
            "Not known",
            f"A share is given only when {bar} of the value could be judged; otherwise it is shown as not known, "
            "never as 0%.",
        ),
        ("Awarded basis", "Each contract's whole value counts in the quarter in which it was awarded."),
        (
            "Spread basis",
            "Each contract's value is spread evenly over its contract term, and only the part in the quarter counts.",
        ),
        ("SME", "A small or medium-sized enterprise: fewer than 250 staff and a turnover of at most £44 million."),
        (
            "VCSE",
            "A voluntary, community or social enterprise organisation: a charity, community interest company, "
            "charitable incorporated organisation, registered society or similar.",
        ),
        (
            "Social enterprise",
            "A business with social aims that reinvests most of its profits in them, such as a community interest "
            "company.",
        ),
    ]
