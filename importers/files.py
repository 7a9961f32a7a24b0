"""Stream OCDS releases out of files of any common shape, one release at a time (ijson; memory stays flat).

Shapes recognised (detected from the data, not the file name):
- a release package ``{"releases": [...]}``;
- a record package ``{"records": [{"releases": [...]} | {"compiledRelease": {...}}]}``;
- a JSON array of releases (or of packages);
- JSON lines: one release or package per line (also any stream of concatenated JSON values);
- a single release object.
"""

import codecs
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import ijson
import msgspec

from importers.decoding import ERROR_HANDLER, clean_strings, loads_decimal
from importers.ocds import ERROR, WARNING, Note, release_identity

_CHUNK = 64 * 1024
# A first line longer than this is not worth holding in memory to test for JSON lines.
_MAX_PROBE_LINE = 1024 * 1024
_ENCODER = msgspec.json.Encoder(decimal_format="number")


@dataclass(frozen=True)
class FileItem:
    """One release (``note`` None), or a note about something that could not become a release.

    ``position`` says where in the file: ``line 3``/``value 2`` (JSON lines / concatenated values) plus
    ``releases[17]``, ``records[4].releases[0]``, ``[12]`` or ``(top-level object)``.
    """

    release: dict[str, Any] | None
    note: Note | None
    position: str


class _CleanReader(io.RawIOBase):
    """A byte stream that is valid UTF-8 whatever the file holds.

    Bad bytes are read as cp1252/ISO-8859-1 (like ``decode_body``) and raw NUL bytes are dropped, so a few
    broken bytes do not stop the whole file.
    """

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self._raw = raw
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors=ERROR_HANDLER)
        self._pending = b""
        self._first = True

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        want = _CHUNK if size is None or size < 0 else size
        while len(self._pending) < want:
            chunk = self._raw.read(_CHUNK)
            final = not chunk
            text = self._decoder.decode(chunk, final=final)
            if self._first and text:
                text = text.removeprefix("\ufeff")
                self._first = False
            self._pending += text.replace("\x00", "").encode("utf-8")
            if final:
                break
        out, self._pending = self._pending[:want], self._pending[want:]
        return out

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _release_items(obj: Any, position: str) -> Iterator[FileItem]:
    """Releases inside one parsed item (a release, or a package inside an array/line)."""
    if isinstance(obj, dict) and isinstance(obj.get("releases"), list):
        for i, release in enumerate(obj["releases"]):
            yield _checked(release, f"{position}.releases[{i}]")
    elif isinstance(obj, dict) and isinstance(obj.get("records"), list):
        for i, record in enumerate(obj["records"]):
            yield from _record_items(record, f"{position}.records[{i}]")
    else:
        yield _checked(obj, position)


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


def _checked(release: Any, position: str) -> FileItem:
    identity, note = release_identity(release)
    if identity is None:
        assert note is not None
        located = Note(note.level, note.message, note.ocid, note.release_id, position, note.value)
        return FileItem(None, located, position)
    return FileItem(_cleaned(release), None, position)


def _cleaned(release: Any) -> Any:
    """``clean_strings(release)``, skipping its Python walk when it could change nothing.

    clean_strings only touches NULs and non-ASCII text; in msgspec's JSON a NUL is always written as the
    escape ``\\u0000`` and non-ASCII as raw UTF-8, so pure ASCII output without that escape means no string
    needs cleaning. The C encoder is many times faster than the walk, and most releases are plain ASCII.
    """
    try:
        encoded = _ENCODER.encode(release)
    except (TypeError, ValueError, msgspec.EncodeError):
        return clean_strings(release)
    if encoded.isascii() and b"\\u0000" not in encoded:
        return release
    return clean_strings(release)


class _Walker:
    """Turns the ijson events of one or more top-level JSON values into items, one at a time.

    Only one release (or record) is ever held in memory, plus the package metadata.
    """

    def __init__(self) -> None:
        self.value_index = 0
        self.item: Any = None  # ObjectBuilder of the release/record being read
        self.item_prefix = ""
        self.top: Any = None  # ObjectBuilder of the top-level value minus its streamed items
        self.top_kind = ""
        self.counts: dict[str, int] = {}

    def where(self, prefix: str) -> str:
        index = self.counts[prefix] - 1
        part = f"[{index}]" if prefix == "item" else f"{prefix.split('.', maxsplit=1)[0]}[{index}]"
        return f"value {self.value_index} {part}" if self.value_index else part

    def feed_item(self, prefix: str, event: str, value: Any) -> Iterator[FileItem]:
        self.item.event(event, value)
        if prefix == self.item_prefix and event in ("end_map", "end_array"):
            position = self.where(self.item_prefix)
            if self.item_prefix == "records.item":
                yield from _record_items(self.item.value, position)
            else:
                yield from _release_items(self.item.value, position)
            self.item = None

    def start_item(self, prefix: str, event: str, value: Any) -> Iterator[FileItem]:
        self.counts[prefix] = self.counts.get(prefix, 0) + 1
        if event in ("start_map", "start_array"):
            self.item = ijson.ObjectBuilder()
            self.item.event(event, value)
            self.item_prefix = prefix
        else:
            yield _checked(value, self.where(prefix))

    def feed_top(self, prefix: str, event: str, value: Any) -> Iterator[FileItem]:
        if prefix == "" and self.top is None:
            if event not in ("start_map", "start_array"):
                note = Note(ERROR, "top-level JSON value is not an object or array; skipped", value=repr(value))
                yield FileItem(None, note, f"value {self.value_index}")
                self.value_index += 1
                return
            self.top_kind = "object" if event == "start_map" else "array"
            self.top = ijson.ObjectBuilder()
            self.counts = {}
        self.top.event(event, value)
        if prefix == "" and event in ("end_map", "end_array"):
            obj = self.top.value
            if self.top_kind == "object" and isinstance(obj, dict) and "releases" not in obj and "records" not in obj:
                yield _checked(obj, f"value {self.value_index}" if self.value_index else "(top-level object)")
            self.top = None
            self.top_kind = ""
            self.value_index += 1

    def walk(self, stream: Any) -> Iterator[FileItem]:
        try:
            for prefix, event, value in ijson.parse(stream, multiple_values=True, use_float=False):
                if self.item is not None:
                    yield from self.feed_item(prefix, event, value)
                elif (prefix == "item" and self.top_kind == "array") or (
                    prefix in ("releases.item", "records.item") and self.top_kind == "object"
                ):
                    yield from self.start_item(prefix, event, value)
                else:
                    yield from self.feed_top(prefix, event, value)
        except (ijson.JSONError, ijson.IncompleteJSONError) as exc:
            position = f"value {self.value_index}"
            yield FileItem(None, Note(ERROR, f"unparseable JSON, reading stopped: {exc}", path=position), position)


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


def _detect_item_prefix(path: Path) -> str | None:
    """ijson prefix of the items to stream: ``releases.item``, ``records.item``, ``item`` or ``""`` (one release).

    Reads only until the first item starts (or, for a single release, to the end of that object).
    None when the file does not start with an object or array.
    """
    found: str | None = None
    with path.open("rb") as raw:
        events = ijson.parse(_CleanReader(raw), multiple_values=True, use_float=False)
        try:
            prefix, event, _ = next(events)
            if prefix == "" and event == "start_array":
                found = "item"
            elif prefix == "" and event == "start_map":
                for prefix, event, _ in events:
                    if prefix in ("releases.item", "records.item") or (prefix == "" and event == "end_map"):
                        found = prefix
                        break
        except (StopIteration, ijson.JSONError, ijson.IncompleteJSONError):
            found = None
    return found


def _stream_items(path: Path, item_prefix: str) -> Iterator[FileItem]:
    """Items at ``item_prefix``, built by ijson's C backend (the Python event loop is ~5x slower)."""
    index = -1
    with path.open("rb") as raw:
        try:
            for index, obj in enumerate(
                ijson.items(_CleanReader(raw), item_prefix, multiple_values=True, use_float=False)
            ):
                if item_prefix == "":
                    position = "(top-level object)" if index == 0 else f"value {index}"
                    yield from _release_items(obj, position)
                elif item_prefix == "records.item":
                    yield from _record_items(obj, f"records[{index}]")
                elif item_prefix == "releases.item":
                    yield _checked(obj, f"releases[{index}]")
                else:
                    yield from _release_items(obj, f"[{index}]")
        except (ijson.JSONError, ijson.IncompleteJSONError) as exc:
            position = f"after item {index}" if index >= 0 else "(file)"
            yield FileItem(None, Note(ERROR, f"unparseable JSON, reading stopped: {exc}", path=position), position)


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
    item_prefix = _detect_item_prefix(path)
    if item_prefix is None:
        # Not a single package/array/release: fall back to the event walker (concatenated values, junk).
        with path.open("rb") as raw:
            yield from _Walker().walk(_CleanReader(raw))
        return
    yield from _stream_items(path, item_prefix)


def _located(item: FileItem, position: str) -> FileItem:
    note = item.note
    if note is not None:
        note = Note(note.level, note.message, note.ocid, note.release_id, position, note.value)
    return FileItem(item.release, note, position)
