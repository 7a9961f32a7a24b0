"""Streaming file readers: every supported shape, bad items as notes, flat memory on a big file."""

import hashlib
import json
import re
import tracemalloc
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from importers.files import FileItem, iter_releases_from_file
from importers.ocds import canonical_json
from tests.support.paths import FEEDS_DIR

CF_PAGE = FEEDS_DIR / "contracts-finder" / "ocds-search-page-2022-10-20.json"
CF_2025 = FEEDS_DIR / "contracts-finder" / "releases-2025-01-23_2025-03-11.json"
FTS_PACKAGE = FEEDS_DIR / "find-a-tender" / "release-package-032703-2026-tender.json"
LEGACY_DIR = FEEDS_DIR / "contracts-finder" / "legacy-2019-2020-bluetail"
_EXACT = msgspec.json.Encoder(decimal_format="number")


def _releases(items: list[FileItem]) -> list[dict[str, Any]]:
    return [i.release for i in items if i.release is not None]


def _real_releases() -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(CF_2025.read_bytes(), parse_float=Decimal)
    return data


def test_release_package_real_page() -> None:
    items = list(iter_releases_from_file(CF_PAGE))
    releases = _releases(items)
    assert len(releases) == 100
    assert all(i.note is None for i in items)
    assert items[0].position == "releases[0]"
    assert releases[0]["ocid"] == json.loads(CF_PAGE.read_bytes())["releases"][0]["ocid"]


def test_array_of_releases_equals_json_loads_with_decimal() -> None:
    items = list(iter_releases_from_file(CF_2025))
    releases = _releases(items)
    expected = _real_releases()
    assert len(releases) == 180
    # The reader also repairs mojibake, so compare the structured, ASCII fields.
    assert [(r["ocid"], r["id"], r["date"]) for r in releases] == [(r["ocid"], r["id"], r["date"]) for r in expected]
    amounts = [a["value"].get("amount") for r in releases for a in r.get("awards", []) if "value" in a]
    assert amounts == [a["value"].get("amount") for r in expected for a in r.get("awards", []) if "value" in a]
    assert not any(isinstance(x, float) for x in amounts)
    assert Decimal("3036.96") in amounts


def test_single_release_object(tmp_path: Path) -> None:
    release = _real_releases()[0]
    path = tmp_path / "one.json"
    path.write_text(json.dumps(release, default=str, indent=2), "utf-8")
    items = list(iter_releases_from_file(path))
    assert [i.release["id"] for i in items if i.release] == [release["id"]]
    assert items[0].position == "(top-level object)"


def test_record_package_uses_embedded_releases_or_compiled_release(tmp_path: Path) -> None:
    real = _real_releases()
    pair = [r for r in real if r["ocid"] == "ocds-b5fd17-56c3a2a3-e39f-494a-9c11-2eb477826ef3"]
    assert len(pair) == 2
    package = {
        "uri": "x",
        "records": [
            {"ocid": pair[0]["ocid"], "releases": pair},
            {
                "ocid": real[0]["ocid"],
                "releases": [{"url": "https://example/r.json", "date": real[0]["date"]}],
                "compiledRelease": real[0],
            },
            {"ocid": "ocds-b5fd17-nothing"},
        ],
    }
    path = tmp_path / "records.json"
    path.write_text(json.dumps(package), "utf-8")
    items = list(iter_releases_from_file(path))
    assert [i.release["id"] for i in items if i.release] == [pair[0]["id"], pair[1]["id"], real[0]["id"]]
    notes = [i.note for i in items if i.note]
    assert len(notes) == 2
    assert "compiledRelease is used" in notes[0].message
    assert notes[1].level == "error"
    assert notes[1].path == "records[2]"


def test_json_lines_bad_line_costs_only_that_line(tmp_path: Path) -> None:
    real = _real_releases()[:5]
    package = json.loads(CF_PAGE.read_bytes())
    package["releases"] = package["releases"][:3]
    lines = [
        json.dumps(real[0]),
        json.dumps(real[1]),
        '{"ocid": "broken", "id": ',
        json.dumps(package),
        "",
        json.dumps(real[2]),
    ]
    path = tmp_path / "releases.jsonl"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    items = list(iter_releases_from_file(path))
    ids = [i.release["id"] for i in items if i.release]
    assert ids == [real[0]["id"], real[1]["id"]] + [r["id"] for r in package["releases"]] + [real[2]["id"]]
    notes = [i.note for i in items if i.note]
    assert len(notes) == 1
    assert notes[0].path is not None
    assert notes[0].path.startswith("line 3")
    assert [i.position for i in items if i.release][2] == "line 4 releases[0]"


def test_release_without_ocid_is_a_note_and_reading_goes_on(tmp_path: Path) -> None:
    real = _real_releases()[:4]
    del real[1]["ocid"]
    real[2] = "not a release"  # type: ignore[call-overload]
    path = tmp_path / "array.json"
    path.write_text(json.dumps(real), "utf-8")
    items = list(iter_releases_from_file(path))
    assert len(_releases(items)) == 2
    notes = [i.note for i in items if i.note]
    assert [n.path for n in notes] == ["[1]", "[2]"]
    assert "without ocid" in notes[0].message


def test_nul_characters_and_invalid_utf8_are_cleaned(tmp_path: Path) -> None:
    release = _real_releases()[0]
    release["tender"]["title"] = "Road\u0000 works"
    raw = json.dumps(release, ensure_ascii=True).encode()
    # A raw cp1252 pound sign inside the description: invalid UTF-8.
    raw = raw.replace(b'"title": "Road', b'"title": "\xa3 Road')
    path = tmp_path / "dirty.json"
    path.write_bytes(raw)
    items = list(iter_releases_from_file(path))
    assert items[0].release is not None
    assert items[0].release["tender"]["title"] == "£ Road works"


def test_lone_surrogate_escapes_become_the_replacement_character(tmp_path: Path) -> None:
    # "\udc00" escapes half of a UTF-16 pair: Python reads it into a string that cannot be written as UTF-8, so
    # the release could be neither hashed nor stored. A whole pair ("\ud83d\ude00") is one character, kept.
    first, second = _real_releases()[:2]
    first["tender"]["title"] = "Road works"
    first["tender"]["description"] = "Café"
    array = json.dumps([first, second], default=str)
    array = array.replace('"Road works"', r'"Road \udc00works \ud83d\ude00"', 1)
    array = array.replace('"tender": {', r'"tender": {"x\ud800": 1, ', 1)
    lines = "\n".join(json.dumps(release, default=str) for release in json.loads(array))  # escapes them again
    for name, body in (("array.json", array), ("lines.jsonl", lines)):
        path = tmp_path / name
        path.write_text(body, "utf-8")
        releases = _releases(list(iter_releases_from_file(path)))
        assert len(releases) == 2, name
        tender = releases[0]["tender"]
        assert tender["title"] == "Road \ufffdworks \U0001f600", name
        assert tender["x\ufffd"] == 1, name
        assert tender["description"] == "Café", name
        assert canonical_json(releases[0]).decode("utf-8")  # was UnicodeEncodeError: surrogates not allowed


def test_truncated_file_keeps_what_was_read_and_ends_with_a_note(tmp_path: Path) -> None:
    raw = CF_PAGE.read_bytes()
    path = tmp_path / "cut.json"
    path.write_bytes(raw[: len(raw) // 2])
    items = list(iter_releases_from_file(path))
    assert 30 < len(_releases(items)) < 100
    assert items[-1].note is not None
    assert "unparseable JSON" in items[-1].note.message


def test_legacy_package_reads() -> None:
    files = sorted(LEGACY_DIR.glob("*.json"))
    assert len(files) == 100
    count = sum(len(_releases(list(iter_releases_from_file(f)))) for f in files)
    assert count == 100


def test_big_file_streams_with_flat_memory(tmp_path: Path) -> None:
    real = CF_2025.read_text("utf-8")
    releases = json.loads(real)
    path = tmp_path / "big.json"
    target = 10_000
    with path.open("w", encoding="utf-8") as out:
        out.write('{"uri": "synthetic", "releases": [\n')
        for n in range(target):
            release = dict(releases[n % len(releases)])
            release["id"] = f"{release['id']}-copy{n}"
            out.write(("," if n else "") + json.dumps(release) + "\n")
        out.write("]}\n")
    size = path.stat().st_size
    tracemalloc.start()
    count = 0
    for item in iter_releases_from_file(path):
        assert item.release is not None
        count += 1
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"streamed {count} releases from {size / 1e6:.0f} MB with a peak of {peak / 1e6:.1f} MB")
    assert count == target
    assert peak < size / 20


def test_double_encoded_text_is_repaired_with_or_without_escapes(tmp_path: Path) -> None:
    release = _real_releases()[0]
    release["tender"]["title"] = "Â£5k for cafÃ© works"  # "£5k for café works" double-encoded
    for ensure_ascii in (False, True):  # raw characters, or \\u escapes (two different cleaning paths)
        path = tmp_path / f"mojibake-{ensure_ascii}.json"
        path.write_text(json.dumps([release], ensure_ascii=ensure_ascii), "utf-8")
        items = list(iter_releases_from_file(path))
        assert items[0].release is not None
        assert items[0].release["tender"]["title"] == "£5k for café works"


def _double_encoded(value: Any) -> Any:
    """Every non-ASCII string as a publisher that decoded UTF-8 as cp1252 would have written it."""
    if isinstance(value, str) and not value.isascii():
        try:
            return value.encode("utf-8").decode("cp1252")
        except UnicodeDecodeError:
            return value
    if isinstance(value, dict):
        return {k: _double_encoded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_double_encoded(v) for v in value]
    return value


def test_stored_bytes_and_hashes_are_those_of_the_stdlib_reading(tmp_path: Path) -> None:
    """The archive's canonical JSON and content hashes must never change for the same input (a re-import would count
    every release as changed): the streamed, cleaned and prepared release gives exactly the bytes of json.loads, then
    clean_strings, then canonical_json - on every fixture release, as published, with every character escaped
    (``\\u``: re-encoded before cleaning) and double-encoded (repaired, then parsed again)."""
    from importers.decoding import clean_strings
    from importers.ocds import canonical_json
    from importers.prepare import prepare_release

    checked = repaired = 0
    for fixture in sorted(FEEDS_DIR.rglob("*.json")):
        data = json.loads(fixture.read_bytes(), parse_float=Decimal)
        releases = data["releases"] if isinstance(data, dict) and "releases" in data else data
        releases = releases if isinstance(releases, list) else [releases]
        for variant, (content, ensure_ascii) in enumerate(
            [(releases, False), (releases, True), (_double_encoded(releases), False), (_double_encoded(releases), True)]
        ):
            path = tmp_path / f"{fixture.stem}-{variant}.json"
            text = _EXACT.encode(content).decode("utf-8")  # numbers exactly as read
            if ensure_ascii:  # non-ASCII characters occur only inside strings
                text = re.sub(r"[^\x00-\x7f]", lambda m: json.dumps(m.group(0))[1:-1], text)
            path.write_text(text, "utf-8")
            prepared = [prepare_release(item.release) for item in iter_releases_from_file(path)]
            expected = [canonical_json(clean_strings(r)) for r in releases]
            assert [p.data for p in prepared] == expected, (fixture.name, variant)  # type: ignore[union-attr]
            assert [p.content_hash for p in prepared] == [  # type: ignore[union-attr]
                hashlib.sha256(e).hexdigest() for e in expected
            ]
            checked += len(prepared)
            repaired += variant >= 2 and content != releases
    assert checked >= 4 * 280
    assert repaired  # the double-encoded variants did need repairing
