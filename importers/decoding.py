"""Byte-level repairs for feed bodies and files: lenient decoding, mojibake, invalid JSON numbers.

Everything here is pure. Numbers always parse as ``Decimal`` (or ``int``), never ``float``, because
amounts are money.
"""

import codecs
import json
import re
from decimal import Decimal
from typing import Any

# cp1252 leaves five bytes undefined; browsers and kingfisher-collect read them as ISO-8859-1.
_CP1252_UNDEFINED = frozenset({0x81, 0x8D, 0x8F, 0x90, 0x9D})


def _byte_to_char(byte: int) -> str:
    if byte < 0x80 or byte in _CP1252_UNDEFINED:
        return chr(byte)
    return bytes([byte]).decode("cp1252")


_BYTE_TO_CHAR: tuple[str, ...] = tuple(_byte_to_char(b) for b in range(256))
_CHAR_TO_BYTE: dict[str, int] = {c: b for b, c in enumerate(_BYTE_TO_CHAR)}


def _cp1252_fallback(error: UnicodeError) -> tuple[str, int]:
    """Codec error handler: read each undecodable byte as cp1252 (ISO-8859-1 where cp1252 has a hole)."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    bad = error.object[error.start : error.end]
    return "".join(_BYTE_TO_CHAR[b] for b in bad), error.end


ERROR_HANDLER = "localvalue-cp1252-fallback"
codecs.register_error(ERROR_HANDLER, _cp1252_fallback)

# Double-encoded UTF-8: the bytes of one UTF-8 character were read as cp1252 and written again as UTF-8,
# so a pound sign (C2 A3) shows as "Â£" and an en dash (E2 80 93) as "â€" plus a curly quote. A lead
# character followed by exactly the right number of continuation characters is converted back; anything
# that does not round-trip is left alone.
_CONT = "".join(re.escape(_BYTE_TO_CHAR[b]) for b in range(0x80, 0xC0))
_LEAD2 = "".join(re.escape(_BYTE_TO_CHAR[b]) for b in range(0xC2, 0xE0))
_LEAD3 = "".join(re.escape(_BYTE_TO_CHAR[b]) for b in range(0xE0, 0xF0))
_LEAD4 = "".join(re.escape(_BYTE_TO_CHAR[b]) for b in range(0xF0, 0xF5))
# Every sequence starts with a lead character. The regex engine scans for a single class far faster than it tries
# three alternatives at each position, so the text is searched for a lead first (most text has none), and the
# lookahead lets the full pattern skip to the next lead the same way.
_LEADS = re.compile(f"[{_LEAD2}{_LEAD3}{_LEAD4}]")
_MOJIBAKE = re.compile(
    f"(?=[{_LEAD2}{_LEAD3}{_LEAD4}])(?:[{_LEAD2}][{_CONT}]|[{_LEAD3}][{_CONT}]{{2}}|[{_LEAD4}][{_CONT}]{{3}})"
)
_MAX_REPAIR_PASSES = 3


def _undo_double_encoding(match: re.Match[str]) -> str:
    text = match.group(0)
    try:
        return bytes(_CHAR_TO_BYTE[c] for c in text).decode("utf-8")
    except UnicodeDecodeError:
        return text


def has_mojibake(text: str) -> bool:
    """True if ``repair_mojibake`` might change the text (a candidate sequence is present)."""
    lead = _LEADS.search(text)
    return lead is not None and _MOJIBAKE.search(text, lead.start()) is not None


def repair_mojibake(text: str) -> tuple[str, int]:
    """Undo double-encoded UTF-8 where detectable; returns the text and how many sequences were repaired.

    Repeats (at most three passes) because text that was double-encoded twice needs two passes.
    """
    repaired = 0
    for _ in range(_MAX_REPAIR_PASSES):
        lead = _LEADS.search(text)
        if lead is None:
            break
        # No sequence starts before the first lead: only the rest is rewritten.
        start = lead.start()
        tail, count = _MOJIBAKE.subn(_undo_double_encoding, text[start:])
        new = text[:start] + tail
        if new == text:
            break
        repaired += count
        text = new
    return text, repaired


def decode_body(raw: bytes) -> tuple[str, list[str]]:
    """Decode a feed body: UTF-8, with single bad bytes read as cp1252/ISO-8859-1, then undo mojibake.

    Decoding byte by byte (rather than falling back to cp1252 for the whole body) keeps every valid
    UTF-8 character intact when only a few bytes are broken, which is what Contracts Finder serves.
    """
    notes: list[str] = []
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = raw.decode("utf-8", errors=ERROR_HANDLER)
        notes.append(f"invalid UTF-8 (first bad byte at offset {exc.start}); bad bytes read as cp1252/ISO-8859-1")
    text, repaired = repair_mojibake(text)
    if repaired:
        notes.append(f"repaired {repaired} double-encoded UTF-8 sequence(s) (e.g. 'Â£' -> '£')")
    return text, notes


# A JSON string, or a number token. Strings are matched first so digits inside text are never touched.
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?', re.DOTALL)
_LEADING_ZEROS = re.compile(rb"^(-?)0+(?=\d)")
_HUGE_EXPONENT = re.compile(rb"[eE]\+?(\d{3,})$")
# kingfisher-collect's replacement value for FTS's out-of-range 1e9999 (issue #592).
HUGE_NUMBER_REPLACEMENT = b"9999999"


def fix_invalid_numbers(raw: bytes) -> tuple[bytes, list[str]]:
    """Make FTS number tokens valid: ``1e9999`` (and any exponent >= 100) -> ``9999999``, ``000`` -> ``0``.

    Only number tokens outside strings change; a description saying "open 0900-1700" is left alone.
    """
    huge = 0
    zeros = 0

    def fix(match: re.Match[bytes]) -> bytes:
        nonlocal huge, zeros
        token = match.group(0)
        if token.startswith(b'"'):
            return token
        if _HUGE_EXPONENT.search(token):
            huge += 1
            return HUGE_NUMBER_REPLACEMENT
        fixed = _LEADING_ZEROS.sub(rb"\1", token)
        if fixed != token:
            zeros += 1
        return fixed

    fixed = _TOKEN.sub(fix, raw)
    notes: list[str] = []
    if huge:
        notes.append(f"replaced {huge} out-of-range number(s) such as 1e9999 with 9999999")
    if zeros:
        notes.append(f"removed leading zeros from {zeros} number(s) such as 000")
    return fixed, notes


# JSON may escape half of a UTF-16 surrogate pair alone ("\udc00"); Python reads it into a string that cannot be
# written as UTF-8, so storing or hashing the release would fail. A pair escaped whole reads as one character.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_strings(value: Any) -> Any:
    """Return ``value`` with NUL characters removed (PostgreSQL JSONB rejects them), lone surrogates replaced by
    U+FFFD (the replacement character: they are no character at all) and mojibake undone."""
    if isinstance(value, str):
        if "\x00" in value:
            value = value.replace("\x00", "")
        if value.isascii():
            return value
        value = _LONE_SURROGATE.sub("\ufffd", value)
        return repair_mojibake(value)[0]
    if isinstance(value, dict):
        return {clean_strings(k): clean_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_strings(v) for v in value]
    return value


def loads_decimal(text: str | bytes) -> Any:
    """``json.loads`` with non-integers as ``Decimal``; constants like NaN/Infinity are refused."""
    return json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON constant {name}")


def load_json_lenient(raw: bytes, *, fix_numbers: bool = True) -> tuple[Any, list[str]]:
    """Decode leniently, fix invalid numbers, parse with Decimal, strip NULs. Raises ``ValueError`` if unparseable."""
    notes: list[str] = []
    if fix_numbers:
        raw, number_notes = fix_invalid_numbers(raw)
        notes.extend(number_notes)
    text, decode_notes = decode_body(raw)
    notes.extend(decode_notes)
    data = loads_decimal(text)
    return clean_strings(data), notes
