"""OCDS releases -> compiled release per ocid -> normalised procurement records. Pure: no I/O.

Merging uses ocdsmerge with the vendored merge subset of the release schema, so it never fetches anything.
"""

import copy
import functools
import hashlib
import html
import json
import warnings
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from ocdsmerge.exceptions import DuplicateIdValueWarning
from ocdsmerge.merge import CompiledRelease
from ocdsmerge.rules import get_merge_rules

from socialvalue.identifiers import normalise_identifier, normalise_org_name
from socialvalue.postcodes import extract_postcode, normalise_postcode

UK_TZ = ZoneInfo("Europe/London")

# Feeds repeat the same buyers, suppliers and addresses notice after notice; these pure functions are a
# large share of mapping time, so their results are memoised (bounded, values are immutable).
_CACHE_SIZE = 1 << 16
_name_key = functools.lru_cache(maxsize=_CACHE_SIZE)(normalise_org_name)
_identifier = functools.lru_cache(maxsize=_CACHE_SIZE)(normalise_identifier)
_postcode = functools.lru_cache(maxsize=_CACHE_SIZE)(normalise_postcode)
_extracted_postcode = functools.lru_cache(maxsize=_CACHE_SIZE)(extract_postcode)

INFO = "info"
WARNING = "warning"
ERROR = "error"


# The records below are msgspec Structs rather than dataclasses: a large file import sends them from its
# reader process to the writing one, and msgpack-encoding Structs costs a fraction of pickling dataclasses.
# gc=False: they never form reference cycles, so the collector need not track millions of them.


class Note(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """Something an import noticed and a user may need to see (why a contract is missing or odd).

    ``path`` is a JSON path inside the release (e.g. ``awards[ocds-x-1].value``) or, for page-level
    notes of the HTTP clients, the URL of the page.
    """

    level: str
    message: str
    ocid: str | None = None
    release_id: str | None = None
    path: str | None = None
    value: str | None = None


# --------------------------------------------------------------------------------------------------
# identity and hashing

_CANONICAL = msgspec.json.Encoder(decimal_format="number", order="sorted")


def canonical_json(value: Any) -> bytes:
    """Sorted-key compact JSON; Decimals are written as numbers, never floats or strings."""
    return _CANONICAL.encode(value)


def release_hash(release: Mapping[str, Any]) -> str:
    """sha256 hex of the canonical JSON of a release (content address for the raw archive)."""
    return hashlib.sha256(canonical_json(release)).hexdigest()


def release_identity(release: Any) -> tuple[tuple[str, str] | None, Note | None]:
    """(ocid, release id), or None and a note saying why the release cannot be stored."""
    if type(release) is not dict and not isinstance(release, Mapping):
        return None, Note(ERROR, f"release is a JSON {type(release).__name__}, not an object; skipped")
    ocid = release.get("ocid")
    release_id = release.get("id")
    ocid_s = ocid.strip() if isinstance(ocid, str) else None
    # Integer release ids are allowed by OCDS; store them as text.
    rid_s = str(release_id).strip() if isinstance(release_id, (str, int)) and not isinstance(release_id, bool) else None
    if ocid_s and rid_s:
        return (ocid_s, rid_s), None
    missing = " and ".join(name for name, v in (("ocid", ocid_s), ("id", rid_s)) if not v)
    return None, Note(
        ERROR,
        f"release without {missing}; skipped",
        ocid=ocid_s or None,
        release_id=rid_s or None,
        path="ocid" if not ocid_s else "id",
        value=_short(canonical_json(release).decode("utf-8", "replace")),
    )


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------------------------------
# compiling


def _load_merge_rules() -> dict[tuple[str, ...], str]:
    text = resources.files("importers.schema").joinpath("release-schema-merge.json").read_text("utf-8")
    schema = json.loads(text)
    rules: dict[tuple[str, ...], str] = get_merge_rules(schema)
    # Guard the hand-written subset: these rules are what makes compiled releases correct for our fields.
    expected = {
        ("tag",): "omitWhenMerged",
        ("id",): "omitWhenMerged",
        ("date",): "omitWhenMerged",
        ("links",): "omitWhenMerged",
        ("parties", "roles"): "wholeListMerge",
        ("parties", "additionalIdentifiers"): "wholeListMerge",
        ("tender", "items", "additionalClassifications"): "wholeListMerge",
    }
    wrong = {k: v for k, v in expected.items() if rules.get(k) != v}
    if wrong:
        raise RuntimeError(f"vendored OCDS merge schema gives unexpected rules: {wrong}")
    return rules


MERGE_RULES = _load_merge_rules()


def parse_instant(text: Any) -> datetime | None:
    """An OCDS date-time as an aware datetime; a naive value is taken as UK local time."""
    if not isinstance(text, str) or not text.strip():
        return None
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UK_TZ)
    return parsed


def _release_sort_key(indexed: tuple[int, Mapping[str, Any]]) -> tuple[int, datetime, int]:
    index, release = indexed
    instant = parse_instant(release.get("date"))
    if instant is None:
        return (0, datetime.min.replace(tzinfo=UK_TZ), index)
    return (1, instant, index)


def compile_releases(releases: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Merge the releases of ONE ocid into a compiled release, oldest first, so later values replace earlier.

    Dates are compared as instants (feeds mix ``Z`` and ``+01:00``, which sort wrongly as strings);
    releases without a usable date go first, ties keep the given order. Raises ``ValueError`` for an empty
    list or mixed ocids. ``compile_releases_with_notes`` also returns what ocdsmerge warned about.
    """
    return compile_releases_with_notes(releases)[0]


def compile_releases_with_notes(releases: Sequence[Mapping[str, Any]]) -> tuple[dict[str, Any], list[Note]]:
    """``compile_releases`` plus notes for ocdsmerge's warnings (e.g. two suppliers with the same id collapse)."""
    if not releases:
        raise ValueError("compile_releases needs at least one release")
    ocids = {r.get("ocid") for r in releases}
    if len(ocids) != 1:
        raise ValueError(f"compile_releases got releases of several ocids: {sorted(map(str, ocids))}")
    ocid = _text(next(iter(ocids)))
    compiled = CompiledRelease(merge_rules=MERGE_RULES)
    notes: list[Note] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DuplicateIdValueWarning)
        # Appending one by one bypasses ocdsmerge's string sort of dates.
        for _, release in sorted(enumerate(releases), key=_release_sort_key):
            compiled.append(dict(release))
    for warning in caught:
        if issubclass(warning.category, DuplicateIdValueWarning):
            notes.append(Note(WARNING, f"merged as one: {warning.message}", ocid=ocid))
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    result: dict[str, Any] = compiled.asdict()
    return result, notes


_OMIT_WHEN_MERGED = frozenset({"id", "date", "tag", "links"})


def _unique_ids(items: Any) -> bool:
    # Every item an object with an id, no two ids with the same text.
    if not isinstance(items, list):
        return True
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, dict) or "id" not in item:
            return False
        seen.add(str(item["id"]))
    return len(seen) == len(items)


def compile_procurement(
    releases: Sequence[Mapping[str, Any]], *, null_free: bool = False
) -> tuple[dict[str, Any], list[Note]]:
    """The compiled release of one ocid. Most ocids have a single release; merging one release only drops
    the omitWhenMerged fields unless an array holds two objects with one id, so that case skips ocdsmerge
    (a third of an import's time). tests/test_import_service.py checks both paths agree on the real samples.
    """
    if len(releases) == 1:
        release = releases[0]
        awards = release.get("awards")
        tender = release.get("tender")
        arrays = [release.get("parties"), awards, release.get("contracts")]
        if isinstance(tender, dict):
            arrays.append(tender.get("items"))
        if isinstance(awards, list):
            for award in awards:
                if isinstance(award, dict):
                    arrays.extend((award.get("suppliers"), award.get("items")))
        if all(_unique_ids(a) for a in arrays) and (null_free or not _has_null(release)):
            compiled = dict(release)  # a copy in C, then four pops: cheaper than filtering every key in Python
            for key in _OMIT_WHEN_MERGED:
                compiled.pop(key, None)
            return compiled, []
    elif releases:
        merged = _merge_simple(releases)
        if merged is not None:
            return merged, []
    return compile_releases_with_notes(releases)


class _NeedsOcdsmergeError(Exception):
    """The releases need a case of the merge rules that only ocdsmerge handles (or that it warns about)."""


def _merge_simple(releases: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """ocdsmerge's compiled release (less id, date and tag), by a direct recursive merge; None when unsure.

    ocdsmerge flattens every release to (path -> value) pairs and rebuilds the tree, which is most of an
    import's compile time. Merging the trees directly gives the same result for what feeds send: objects
    merged key by key, arrays of objects merged by ``id`` in order of first appearance (an object without
    ``id`` is always new), other arrays and wholeListMerge fields replaced whole, empty objects and arrays
    ignored, null removing a value. Anything else - a value changing between object, array and scalar, one
    id twice in an array - goes to ocdsmerge. tests/test_import_service.py compares both on the samples.
    """
    ocids = {r.get("ocid") for r in releases}
    if len(ocids) != 1:
        return None
    target: dict[str, Any] = {}
    try:
        for _, release in sorted(enumerate(releases), key=_release_sort_key):
            _merge_object(target, release, _RULE_TREE)
    except _NeedsOcdsmergeError:
        return None
    target["ocid"] = next(iter(ocids))
    return target


def _rule_tree(rules: Mapping[tuple[str, ...], str]) -> dict[str, tuple[str | None, dict[str, Any]]]:
    """The merge rules as nested dicts (key -> (rule, rules below it)), so a merge looks up one key per field."""
    tree: dict[str, Any] = {}
    for path, rule in rules.items():
        node = tree
        for i, key in enumerate(path):
            entry = node.get(key)
            if entry is None:
                entry = node[key] = [None, {}]
            if i == len(path) - 1:
                entry[0] = rule
            node = entry[1]

    def frozen(node: dict[str, Any]) -> dict[str, tuple[str | None, dict[str, Any]]]:
        return {k: (v[0], frozen(v[1])) for k, v in node.items()}

    return frozen(tree)


_RULE_TREE = _rule_tree(MERGE_RULES)
_NO_RULE: tuple[None, dict[str, Any]] = (None, {})


def _merge_object(
    target: dict[str, Any], source: Mapping[str, Any], rules: Mapping[str, Any], *, skip_id: bool = False
) -> None:
    for key, value in source.items():
        if skip_id and key == "id":
            continue
        rule, below = rules.get(key, _NO_RULE)
        if rule == "omitWhenMerged":
            continue
        current = target.get(key)
        if rule is None and not isinstance(value, (dict, list)):
            # Most fields are plain values: _merge_leaf inlined.
            if current is not None and (
                isinstance(current, dict) or (isinstance(current, list) and current and isinstance(current[0], dict))
            ):
                raise _NeedsOcdsmergeError
            if value is None:
                target.pop(key, None)
            else:
                target[key] = value
            continue
        if (
            rule == "wholeListMerge"
            or not isinstance(value, (dict, list))
            or (type(value) is list and not all(isinstance(item, dict) for item in value))
        ):
            _merge_leaf(target, key, value, merged_before=rule != "wholeListMerge")
        elif value:  # ocdsmerge skips empty objects and arrays of objects
            _merge_container(target, key, value, current, below)


def _merge_container(target: dict[str, Any], key: str, value: Any, current: Any, rules: Mapping[str, Any]) -> None:
    if isinstance(value, dict):
        if current is None:
            current = target[key] = {}
        elif not isinstance(current, dict):
            raise _NeedsOcdsmergeError
        _merge_object(current, value, rules)
    else:
        if current is None:
            current = target[key] = []
        elif not isinstance(current, list) or (current and not isinstance(current[0], dict)):
            raise _NeedsOcdsmergeError
        _merge_array(current, value, rules)


def _merge_leaf(target: dict[str, Any], key: str, value: Any, *, merged_before: bool) -> None:
    current = target.get(key)
    if merged_before and (
        isinstance(current, dict) or (isinstance(current, list) and current and isinstance(current[0], dict))
    ):
        raise _NeedsOcdsmergeError  # ocdsmerge would keep the nested values beside the new leaf
    if value is None:
        target.pop(key, None)
    else:
        target[key] = value


def _merge_array(target: list[Any], source: list[dict[str, Any]], rules: Mapping[str, Any]) -> None:
    by_id = {str(item["id"]): item for item in target if "id" in item}
    seen: set[str] = set()
    for item in source:
        if "id" not in item:
            fresh: dict[str, Any] = {}
            _merge_object(fresh, item, rules)
            if not fresh:
                # ocdsmerge keeps such an object only if it held a null: rare enough to leave to it.
                raise _NeedsOcdsmergeError
            target.append(fresh)
            continue
        if not isinstance(item["id"], str | int) or isinstance(item["id"], bool):
            raise _NeedsOcdsmergeError
        identifier = str(item["id"])
        if identifier in seen:
            raise _NeedsOcdsmergeError  # ocdsmerge merges them and warns
        seen.add(identifier)
        existing = by_id.get(identifier)
        if existing is None:
            existing = by_id[identifier] = {"id": item["id"]}
            target.append(existing)
        # The first id value is kept (ocdsmerge keys by its text, so 1 and "1" are one object).
        _merge_object(existing, item, rules, skip_id=True)


def _has_null(value: Any) -> bool:
    # ocdsmerge drops null fields; a release that has any takes the full path.
    if value is None:
        return True
    if isinstance(value, dict):
        return any(_has_null(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_null(v) for v in value)
    return False


# --------------------------------------------------------------------------------------------------
# legacy Contracts Finder format (before Oct 2022)


def is_legacy_cf(release: Mapping[str, Any]) -> bool:
    """Legacy CF releases carry ``sme``/``vco`` on the party itself (and bluetail's ``ocds-b5fd17raw-`` ocids)."""
    parties = release.get("parties")
    if isinstance(parties, list):
        for party in parties:
            if isinstance(party, Mapping) and ("sme" in party or "vco" in party):
                return True
    ocid = release.get("ocid")
    return isinstance(ocid, str) and ocid.startswith("ocds-b5fd17raw-")


def _unescape_all(value: Any) -> Any:
    if isinstance(value, str):
        # Legacy feeds sometimes double-escape ("&amp;amp;").
        for _ in range(2):
            if "&" not in value:
                break
            value = html.unescape(value)
        return value
    if isinstance(value, dict):
        return {k: _unescape_all(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unescape_all(v) for v in value]
    return value


def upgrade_legacy(release: Mapping[str, Any]) -> dict[str, Any]:
    """Bring a legacy 2019-2020 CF release to the current shape; returns a new dict.

    - party-level ``sme`` -> ``details.scale`` (``"sme"``/``"large"``, as current CF), ``vco`` -> ``details.vcse``;
    - HTML entities in all text are decoded (legacy text is escaped: ``Telford &amp; Wrekin``);
    - empty identifier fields (``"scheme": ""``) are dropped.

    The file's ``ocid`` is kept even when it was rewritten by the source (bluetail's ``ocds-b5fd17raw-``);
    the original ocid stays visible inside ``id``/``tender.id``.
    """
    upgraded: dict[str, Any] = _unescape_all(copy.deepcopy(dict(release)))
    for party in upgraded.get("parties") or []:
        if not isinstance(party, dict):
            continue
        sme = party.pop("sme", None)
        vco = party.pop("vco", None)
        details = party.get("details")
        if not isinstance(details, dict):
            details = {}
        if isinstance(sme, bool) and "scale" not in details:
            details["scale"] = "sme" if sme else "large"
        if isinstance(vco, bool) and "vcse" not in details:
            details["vcse"] = vco
        if details:
            party["details"] = details
        identifier = party.get("identifier")
        if isinstance(identifier, dict):
            cleaned = {k: v for k, v in identifier.items() if v not in ("", None)}
            if cleaned:
                party["identifier"] = cleaned
            else:
                party.pop("identifier")
    return upgraded


# --------------------------------------------------------------------------------------------------
# mapping


class PartyRecord(msgspec.Struct, frozen=True, gc=False, array_like=True):
    party_id: str
    name: str | None
    roles: tuple[str, ...]
    identifiers: tuple[tuple[str, str], ...]
    street_address: str | None
    locality: str | None
    postal_code: str | None
    postcode: str | None
    postcode_source: str | None
    country: str | None
    declared_scale: str | None
    declared_vcse: bool | None
    name_key: str


class AwardRecord(msgspec.Struct, frozen=True, gc=False, array_like=True):
    award_id: str
    status: str
    title: str | None
    description: str | None
    cpv_codes: tuple[str, ...]
    value_amount: Decimal | None
    currency: str | None
    award_date: date | None
    start_date: date | None
    end_date: date | None
    supplier_party_ids: tuple[str, ...]


class Procurement(msgspec.Struct, frozen=True, gc=False, array_like=True):
    source: str
    ocid: str
    buyer: PartyRecord | None
    awards: tuple[AwardRecord, ...]
    parties: Mapping[str, PartyRecord]
    tender_status: str | None
    notes: tuple[Note, ...]


ACTIVE = "active"
PENDING = "pending"
WITHDRAWN = "withdrawn"
_WITHDRAWN_AWARD = frozenset({"cancelled", "unsuccessful", "withdrawn"})
_WITHDRAWN_TENDER = frozenset({"cancelled", "withdrawn", "unsuccessful"})


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        stripped = value.strip()
        return stripped or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _as_dict(value: Any) -> Mapping[str, Any]:
    # type() first: nearly every value is a plain dict, and the ABC check is several times slower.
    return value if type(value) is dict or isinstance(value, Mapping) else {}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _amount(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, Decimal)):
        return Decimal(value)
    if isinstance(value, str):
        try:
            return Decimal(value.strip().replace(",", ""))
        except InvalidOperation:
            return None
    # A float can only come from a caller that parsed JSON without Decimal; str() keeps its short repr.
    if isinstance(value, float):
        return Decimal(str(value))
    return None


def uk_date(text: Any) -> date | None:
    """Calendar date in Europe/London of an OCDS date-time (or a bare ``YYYY-MM-DD``)."""
    if isinstance(text, str) and len(text.strip()) == 10:
        try:
            return date.fromisoformat(text.strip())
        except ValueError:
            return None
    instant = parse_instant(text)
    return instant.astimezone(UK_TZ).date() if instant else None


class _Mapper:
    def __init__(self, source: str, compiled: Mapping[str, Any]) -> None:
        self.source = source
        self.compiled = compiled
        self.ocid = _text(compiled.get("ocid")) or ""
        self.notes: list[Note] = []

    def note(self, level: str, message: str, path: str | None = None, value: Any = None) -> None:
        shown = None if value is None else _short(value if isinstance(value, str) else repr(value))
        self.notes.append(Note(level, message, ocid=self.ocid or None, path=path, value=shown))

    def party(self, raw: Mapping[str, Any], index: int) -> PartyRecord | None:
        party_id = _text(raw.get("id"))
        if party_id is None:
            self.note(WARNING, "party without id; skipped", f"parties[{index}]", _text(raw.get("name")))
            return None
        path = f"parties[{party_id}]"
        identifier = _as_dict(raw.get("identifier"))
        name = _text(raw.get("name")) or _text(identifier.get("legalName"))
        if name is None:
            self.note(WARNING, "party without name", path)
        identifiers: list[tuple[str, str]] = []
        for i, ident in enumerate([identifier, *_as_list(raw.get("additionalIdentifiers"))]):
            ident_map = _as_dict(ident)
            scheme = _text(ident_map.get("scheme"))
            value = _text(ident_map.get("id"))
            if scheme is None or value is None:
                continue
            normalised = _identifier(scheme, value)
            ident_path = f"{path}.identifier" if i == 0 else f"{path}.additionalIdentifiers[{i - 1}]"
            if normalised is None:
                self.note(WARNING, f"unusable {scheme} identifier ignored", ident_path, value)
            elif normalised not in identifiers:
                identifiers.append(normalised)
        address = _as_dict(raw.get("address"))
        street = _text(address.get("streetAddress"))
        locality = _text(address.get("locality"))
        postal_code = _text(address.get("postalCode"))
        postcode: str | None = None
        postcode_source: str | None = None
        if postal_code is not None:
            postcode = _postcode(postal_code)
            if postcode is None:
                self.note(INFO, "postalCode is not a valid UK postcode", f"{path}.address.postalCode", postal_code)
            else:
                postcode_source = "structured"
        if postcode is None:
            for text in (street, locality):
                found = _extracted_postcode(text) if text else None
                if found:
                    postcode, postcode_source = found, "extracted"
                    break
        details = _as_dict(raw.get("details"))
        scale = _text(details.get("scale"))
        vcse_raw = details.get("vcse")
        vcse = vcse_raw if isinstance(vcse_raw, bool) else None
        roles = tuple(r for r in (_text(x) for x in _as_list(raw.get("roles"))) if r)
        return PartyRecord(
            party_id=party_id,
            name=name,
            roles=roles,
            identifiers=tuple(identifiers),
            street_address=street,
            locality=locality,
            postal_code=postal_code,
            postcode=postcode,
            postcode_source=postcode_source,
            country=_text(address.get("countryName")) or _text(address.get("country")),
            declared_scale=scale,
            declared_vcse=vcse,
            name_key=_name_key(name) if name else "",
        )

    def reference_only_party(self, ref: Mapping[str, Any], role: str) -> PartyRecord | None:
        party_id = _text(ref.get("id"))
        if party_id is None:
            return None
        name = _text(ref.get("name"))
        return PartyRecord(
            party_id=party_id,
            name=name,
            roles=(role,),
            identifiers=(),
            street_address=None,
            locality=None,
            postal_code=None,
            postcode=None,
            postcode_source=None,
            country=None,
            declared_scale=None,
            declared_vcse=None,
            name_key=_name_key(name) if name else "",
        )

    def cpv_codes(self, tender: Mapping[str, Any], award: Mapping[str, Any]) -> tuple[str, ...]:
        classifications: list[Any] = [tender.get("classification"), *_as_list(tender.get("additionalClassifications"))]
        for item in [*_as_list(tender.get("items")), *_as_list(award.get("items"))]:
            item_map = _as_dict(item)
            classifications.append(item_map.get("classification"))
            classifications.extend(_as_list(item_map.get("additionalClassifications")))
        codes: list[str] = []
        for classification in classifications:
            c = _as_dict(classification)
            scheme = (_text(c.get("scheme")) or "").upper()
            code = _text(c.get("id"))
            if scheme != "CPV" or code is None:
                continue
            digits = code.split("-")[0].strip()
            if len(digits) == 8 and digits.isdigit() and digits not in codes:
                codes.append(digits)
        return tuple(codes)

    def award_value(
        self, raw: Mapping[str, Any], own_contracts: list[Mapping[str, Any]], path: str
    ) -> tuple[Decimal | None, str | None]:
        value = _as_dict(raw.get("value"))
        if not value:
            # FTS puts the value on the contract when the award has none.
            value = next((_as_dict(c.get("value")) for c in own_contracts if _as_dict(c.get("value"))), {})
        amount = _amount(value.get("amount"))
        if value.get("amount") is not None and amount is None:
            self.note(WARNING, "award amount is not a number", f"{path}.value.amount", value.get("amount"))
        currency = _text(value.get("currency"))
        if amount is not None and currency is None:
            self.note(WARNING, "award amount without currency", f"{path}.value.currency")
        return amount, currency

    def suppliers(self, raw: Mapping[str, Any], path: str, parties: dict[str, PartyRecord]) -> tuple[str, ...]:
        supplier_ids: list[str] = []
        for i, supplier in enumerate(_as_list(raw.get("suppliers"))):
            ref = _as_dict(supplier)
            supplier_id = _text(ref.get("id"))
            if supplier_id is None:
                self.note(WARNING, "supplier reference without id; skipped", f"{path}.suppliers[{i}]", ref.get("name"))
                continue
            if supplier_id not in parties:
                made = self.reference_only_party(ref, "supplier")
                if made is not None:
                    parties[supplier_id] = made
                    self.note(WARNING, "supplier not in parties; using the reference only", f"{path}.suppliers[{i}]")
            if supplier_id in supplier_ids:
                self.note(INFO, "supplier listed twice in one award; kept once", f"{path}.suppliers[{i}]", supplier_id)
                continue
            supplier_ids.append(supplier_id)
        return tuple(supplier_ids)

    def award(
        self,
        raw: Mapping[str, Any],
        index: int,
        tender: Mapping[str, Any],
        contracts: list[Mapping[str, Any]],
        parties: dict[str, PartyRecord],
    ) -> AwardRecord | None:
        award_id = _text(raw.get("id"))
        if award_id is None:
            self.note(ERROR, "award without id; skipped", f"awards[{index}]")
            return None
        path = f"awards[{award_id}]"
        raw_status = _text(raw.get("status"))
        tender_status = _text(tender.get("status"))
        if tender_status in _WITHDRAWN_TENDER or raw_status in _WITHDRAWN_AWARD:
            status = WITHDRAWN
        elif raw_status in (ACTIVE, PENDING):
            status = raw_status
        else:
            status = PENDING
            self.note(WARNING, "award status missing or unknown; treated as pending", f"{path}.status", raw_status)
        own_contracts = [c for c in contracts if _text(c.get("awardID")) == award_id]
        amount, currency = self.award_value(raw, own_contracts, path)
        award_date = uk_date(raw.get("date"))
        if raw.get("date") is not None and award_date is None:
            self.note(WARNING, "award date is not a date", f"{path}.date", raw.get("date"))
        period = _as_dict(raw.get("contractPeriod"))
        if not (period.get("startDate") or period.get("endDate")):
            # FTS gives the period on the contract (contracts[].period), CF on the award.
            period = next((_as_dict(c.get("period")) for c in own_contracts if _as_dict(c.get("period"))), {})
        start = uk_date(period.get("startDate"))
        end = uk_date(period.get("endDate"))
        supplier_ids = self.suppliers(raw, path, parties)
        if not supplier_ids and status != WITHDRAWN:
            self.note(WARNING, "award without suppliers", path)
        return AwardRecord(
            award_id=award_id,
            status=status,
            title=_text(raw.get("title")) or _text(tender.get("title")),
            description=_text(raw.get("description")) or _text(tender.get("description")),
            cpv_codes=self.cpv_codes(tender, raw),
            value_amount=amount,
            currency=currency,
            award_date=award_date,
            start_date=start,
            end_date=end,
            supplier_party_ids=supplier_ids,
        )

    def run(self) -> Procurement:
        if not self.ocid:
            self.note(ERROR, "compiled release without ocid")
        parties: dict[str, PartyRecord] = {}
        for index, raw in enumerate(_as_list(self.compiled.get("parties"))):
            record = self.party(_as_dict(raw), index)
            if record is None:
                continue
            if record.party_id in parties:
                self.note(WARNING, "duplicate party id; first kept", f"parties[{record.party_id}]")
                continue
            parties[record.party_id] = record

        buyer_ref = _as_dict(self.compiled.get("buyer"))
        buyer_id = _text(buyer_ref.get("id"))
        buyer: PartyRecord | None = None
        if buyer_id is not None:
            buyer = parties.get(buyer_id)
            if buyer is None:
                buyer = self.reference_only_party(buyer_ref, "buyer")
                self.note(WARNING, "buyer not in parties; using the reference only", "buyer", buyer_id)
                if buyer is not None:
                    parties[buyer.party_id] = buyer
        else:
            buyer = next((p for p in parties.values() if "buyer" in p.roles), None)
        if buyer is None:
            self.note(WARNING, "no buyer", "buyer")

        tender = _as_dict(self.compiled.get("tender"))
        contracts = [_as_dict(c) for c in _as_list(self.compiled.get("contracts"))]
        awards: list[AwardRecord] = []
        for index, raw in enumerate(_as_list(self.compiled.get("awards"))):
            award = self.award(_as_dict(raw), index, tender, contracts, parties)
            if award is not None:
                awards.append(award)
        return Procurement(
            source=self.source,
            ocid=self.ocid,
            buyer=buyer,
            awards=tuple(awards),
            parties=parties,
            tender_status=_text(tender.get("status")),
            notes=tuple(self.notes),
        )


def map_compiled(source: str, compiled: Mapping[str, Any]) -> Procurement:
    """Normalised records of one compiled release. Problems become notes; nothing raises on messy data."""
    return _Mapper(source, compiled).run()


def group_by_ocid(releases: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Releases grouped by ocid, first-seen order (a helper for tests and small batches)."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for release in releases:
        groups.setdefault(str(release.get("ocid")), []).append(release)
    return groups
