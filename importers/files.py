"""Stream OCDS releases out of files of any common shape, one release at a time (memory stays flat).

Shapes recognised (detected from the data, not the file name):
- a release package ``{"releases": [...]}``;
- a record package ``{"records": [{"releases": [...]} | {"compiledRelease": {...}}]}``;
- a JSON array of releases (or of packages);
- JSON lines: one release or package per line (also any stream of concatenated JSON values);
- a single release object.

The file is decoded in chunks and the containers around the releases are walked here, but each release
itself is parsed by the standard library's C scanner straight out of the buffer (``raw_decode``): several
times faster than an event-based streaming parser, and only one release plus a chunk is ever in memory.
"""

import codecs
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

from importers.decoding import ERROR_HANDLER, clean_strings, has_mojibake, loads_decimal, repair_mojibake
from importers.ocds import ERROR, WARNING, Note, release_identity

_CHUNK = 256 * 1024
# A single JSON value (one release, record or package metadata) larger than this is refused.
_MAX_VALUE = 256 * 1024 * 1024
# A first line longer than this is not worth holding in memory to test for JSON lines.
_MAX_PROBE_LINE = 1024 * 1024
_ENCODER = msgspec.json.Encoder(decimal_format="number")
_REPARSE = msgspec.json.Decoder(float_hook=Decimal)
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_STOPPED = "unparseable JSON, reading stopped"


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON constant {name}")


# strict=False: control characters inside strings (raw tabs and line breaks in descriptions) are tolerated.
_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_refuse_constant, strict=False)


@dataclass(frozen=True)
class FileItem:
    """One release (``note`` None), or a note about something that could not become a release.

    ``position`` says where in the file: ``line 3``/``value 2`` (JSON lines / concatenated values) plus
    ``releases[17]``, ``records[4].releases[0]``, ``[12]`` or ``(top-level object)``.
    """

    release: dict[str, Any] | None
    note: Note | None
    position: str


class _JSONText:
    """The decoded text of a file, a chunk at a time, with a cursor.

    Bad bytes are read as cp1252/ISO-8859-1 (like ``decode_body``) and raw NUL characters are dropped, so a
    few broken bytes do not stop the whole file.
    """

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors=ERROR_HANDLER)
        self._first = True
        self.eof = False
        self.buf = ""
        self.pos = 0

    def _read(self, at_least: int) -> bool:
        """Append at least ``at_least`` more characters (fewer at the end of the file); False at EOF."""
        if self.eof:
            return False
        self.buf = self.buf[self.pos :]
        self.pos = 0
        parts = [self.buf]
        added = 0
        while added < at_least and not self.eof:
            chunk = self._raw.read(max(_CHUNK, at_least - added))
            self.eof = not chunk
            text = self._decoder.decode(chunk, final=self.eof)
            if self._first and text:
                text = text.removeprefix("\ufeff")
                self._first = False
            if "\x00" in text:
                text = text.replace("\x00", "")
            parts.append(text)
            added += len(text)
        self.buf = "".join(parts)
        return added > 0

    def peek(self) -> str:
        """The next character that is not whitespace, without taking it; "" at the end of the file."""
        while True:
            self.pos = _WHITESPACE.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._read(_CHUNK):
                return ""

    def take(self, expected: str) -> None:
        found = self.peek()
        if found != expected:
            raise ValueError(f"expected {expected!r} at character {self.pos}, found {found[:1] or 'end of file'!r}")
        self.pos += 1

    def value(self) -> tuple[Any, str]:
        """The next JSON value and its text, read whole (growing the buffer until it fits)."""
        self.peek()
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError:
                if self.eof:
                    raise
                end = -1
            # A number that ends where the buffer does may go on in the next chunk.
            if end != -1 and (end < len(self.buf) or self.eof):
                text = self.buf[self.pos : end]
                self.pos = end
                return value, text
            pending = len(self.buf) - self.pos
            if pending > _MAX_VALUE:
                raise ValueError(f"a JSON value is larger than {_MAX_VALUE // (1024 * 1024)} MiB or unparseable")
            self._read(max(pending, _CHUNK))

    def separator(self, close: str) -> bool:
        """After an item: True if another follows (a comma was taken), False if ``close`` ended the container."""
        found = self.peek()
        self.pos += 1
        if found == ",":
            return True
        if found == close:
            return False
        raise ValueError(f"expected ',' or {close!r} at character {self.pos - 1}, found {found[:1] or 'end of file'!r}")


def _release_items(obj: Any, position: str, text: str | None = None) -> Iterator[FileItem]:
    """Releases inside one parsed item (a release, or a package inside an array/line)."""
    if isinstance(obj, dict) and isinstance(obj.get("releases"), list):
        for i, release in enumerate(obj["releases"]):
            yield _checked(release, f"{position}.releases[{i}]")
    elif isinstance(obj, dict) and isinstance(obj.get("records"), list):
        for i, record in enumerate(obj["records"]):
            yield from _record_items(record, f"{position}.records[{i}]")
    else:
        yield _checked(obj, position, text)


def _record_items(record: Any, position: str) -> Iterator[FileItem]:
    if not isinstance(record, dict):
        yield FileItem(None, Note(ERROR, "record is not a JSON object; skipped", path=position), position)
        return
    releases = record.get("releases")
    # Linked releases ({url, date, tag} only) carry no data; then only the compiled release is usable.
    full = [r for r in releases if isinstance(r, dict) and "ocid" in r] if isinstance(releases, list) else []
    if full:
        for i, release in enumerate(releases or []):
            yield _checked(release, f"{position}.releases[{i}]")
    elif isinstance(record.get("compiledRelease"), dict):
        ocid = record.get("ocid")
        yield FileItem(
            None,
            Note(WARNING, "record has no embedded releases; its compiledRelease is used", ocid=ocid, path=position),
            position,
        )
        yield _checked(record["compiledRelease"], f"{position}.compiledRelease")
    else:
        note = Note(ERROR, "record has neither embedded releases nor a compiledRelease; skipped", path=position)
        yield FileItem(None, note, position)


def _checked(release: Any, position: str, text: str | None = None) -> FileItem:
    identity, note = release_identity(release)
    if identity is None:
        assert note is not None
        located = Note(note.level, note.message, note.ocid, note.release_id, position, note.value)
        return FileItem(None, located, position)
    return FileItem(_cleaned(release, text), None, position)


def _cleaned(release: Any, text: str | None) -> Any:
    """``clean_strings(release)`` without its Python walk.

    clean_strings drops NULs and repairs double-encoded UTF-8 in every string. Raw NULs were dropped on
    reading, so unless the JSON text has ``\\u`` escapes its characters are exactly the strings' characters;
    otherwise the release is re-encoded (msgspec writes non-ASCII as raw UTF-8, NUL as ``\\u0000``). Text
    without a mojibake sequence needs nothing (most releases; the regex runs in C). Mojibake never contains
    a quote, so repairing the text repairs exactly the strings, and parsing it again is cheap.
    """
    if text is None or "\\u" in text:
        try:
            encoded = _ENCODER.encode(release)
        except (TypeError, ValueError, msgspec.EncodeError):
            return clean_strings(release)
        if b"\\u0000" in encoded:
            return clean_strings(release)
        text = encoded.decode("utf-8")
    if text.isascii() or not has_mojibake(text):
        return release
    repaired = repair_mojibake(text)[0]
    try:
        # msgspec parses the same values as _DECODER (numbers via Decimal, last duplicate key wins) about twice as
        # fast; what it refuses (raw control characters, lone surrogates, constants) goes to _DECODER as before.
        return _REPARSE.decode(repaired)
    except msgspec.DecodeError:
        return _DECODER.decode(repaired)


def _members(stream: _JSONText, opening: str, closing: str) -> Iterator[int]:
    """Steps through the members of an array or object; the caller reads each member (index given)."""
    stream.take(opening)
    if stream.peek() == closing:
        stream.take(closing)
        return
    index = 0
    while True:
        yield index
        index += 1
        if not stream.separator(closing):
            return


def _object_items(stream: _JSONText, prefix: str, whole: str) -> Iterator[FileItem]:
    """A top-level object: a package whose releases or records are streamed one by one, or a single release."""
    top: dict[str, Any] = {}
    streamed = False
    for _ in _members(stream, "{", "}"):
        key, _text = stream.value()
        if not isinstance(key, str):
            raise ValueError(f"object key is not a string at character {stream.pos}")
        stream.take(":")
        if key in ("releases", "records") and stream.peek() == "[":
            streamed = True
            for index in _members(stream, "[", "]"):
                item, text = stream.value()
                position = f"{prefix}{key}[{index}]"
                if key == "releases":
                    yield _checked(item, position, text)
                else:
                    yield from _record_items(item, position)
        else:
            top[key], _text = stream.value()
    if not streamed:
        yield _checked(top, whole)


def _array_items(stream: _JSONText, prefix: str) -> Iterator[FileItem]:
    for index in _members(stream, "[", "]"):
        item, text = stream.value()
        yield from _release_items(item, f"{prefix}[{index}]", text)


def _stream_items(raw: BinaryIO) -> Iterator[FileItem]:
    """Every top-level value in turn (usually one); reading stops at the first syntax error, with a note."""
    stream = _JSONText(raw)
    value_index = 0
    position = "(file)"
    try:
        while (first := stream.peek()) != "":
            prefix = f"value {value_index} " if value_index else ""
            whole = f"value {value_index}" if value_index else "(top-level object)"
            position = whole if value_index else "(file)"
            items = (
                _object_items(stream, prefix, whole)
                if first == "{"
                else _array_items(stream, prefix)
                if first == "["
                else None
            )
            if items is None:
                value, _ = stream.value()
                note = Note(ERROR, "top-level JSON value is not an object or array; skipped", value=repr(value)[:200])
                yield FileItem(None, note, f"value {value_index}")
            else:
                for item in items:
                    position = f"after {item.position}"
                    yield item
            value_index += 1
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        yield FileItem(None, Note(ERROR, f"{_STOPPED}: {exc}", path=position), position)


def _probe_json_lines(path: Path) -> bool:
    """True when the first line is a complete JSON value on its own and more data follows."""
    with path.open("rb") as raw:
        first = raw.readline(_MAX_PROBE_LINE + 1)
        if len(first) > _MAX_PROBE_LINE or not first.strip():
            return False
        try:
            loads_decimal(first.decode("utf-8", errors=ERROR_HANDLER))
        except ValueError:
            return False
        rest = raw.read(_CHUNK)
        return bool(rest.strip())


def iter_releases_from_file(path: Path) -> Iterator[FileItem]:
    """Every release in the file, in file order; bad items become notes and reading goes on.

    NUL characters are removed from all strings (PostgreSQL JSONB rejects them), invalid UTF-8 bytes
    are read as cp1252 and double-encoded UTF-8 is repaired. Numbers are ``int``/``Decimal``.
    In JSON lines files each line is parsed on its own, so a broken line costs only that line.
    """
    if _probe_json_lines(path):
        with path.open("rb") as raw:
            for line_no, line in enumerate(raw, start=1):
                if not line.strip():
                    continue
                position = f"line {line_no}"
                try:
                    obj = loads_decimal(line.decode("utf-8", errors=ERROR_HANDLER).replace("\x00", ""))
                except ValueError as exc:
                    note = Note(ERROR, f"unparseable JSON line skipped: {exc}", path=position)
                    yield FileItem(None, note, position)
                    continue
                for item in _release_items(obj, position):
                    yield _located(item, item.position.replace(f"{position}.", f"{position} "))
        return
    with path.open("rb") as raw:
        yield from _stream_items(raw)


def _located(item: FileItem, position: str) -> FileItem:
    note = item.note
    if note is not None:
        note = Note(note.level, note.message, note.ocid, note.release_id, position, note.value)
    return FileItem(item.release, note, position)


CONTRACTS_FINDER = "contracts_finder"
FIND_A_TENDER = "find_a_tender"
SOURCES = (CONTRACTS_FINDER, FIND_A_TENDER)
SOURCE_LABEL = {CONTRACTS_FINDER: "Contracts Finder", FIND_A_TENDER: "Find a Tender"}
# The OCDS prefix each platform registered (docs/feeds.md); legacy Contracts Finder copies use ocds-b5fd17raw-.
OCID_PREFIXES = {"ocds-b5fd17": CONTRACTS_FINDER, "ocds-h6vhtk": FIND_A_TENDER}
# Both packages name the Cabinet Office as publisher; the package's own address says which platform published it.
PACKAGE_HOSTS = {"contractsfinder.service.gov.uk": CONTRACTS_FINDER, "find-tender.service.gov.uk": FIND_A_TENDER}
_PACKAGE_URI = re.compile(rb'"(?:uri|publishedDate|publisher)"\s*:\s*"https?://(?:www\.)?([a-z.-]+)')
_HEAD = 64 * 1024


def package_source(path: Path) -> str | None:
    """The platform that published the file's package, from the package ``uri`` near its start; None if not said."""
    try:
        with path.open("rb") as raw:
            head = raw.read(_HEAD)
    except OSError:
        return None
    # Only the package's own fields come before its "releases" or "records" array.
    cut_at = min((i for i in (head.find(b'"releases"'), head.find(b'"records"')) if i >= 0), default=len(head))
    for match in _PACKAGE_URI.finditer(head[:cut_at]):
        host = match.group(1).decode("ascii")
        if host in PACKAGE_HOSTS:
            return PACKAGE_HOSTS[host]
    return None


def release_source(ocid: str, package: str | None) -> str | None:
    """Contracts Finder or Find a Tender for one release: its ocid prefix first, else its package's publisher."""
    for prefix, source in OCID_PREFIXES.items():
        if ocid.startswith(prefix):
            return source
    return package
