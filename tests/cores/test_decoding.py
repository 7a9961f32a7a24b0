"""Byte repairs: lenient UTF-8, mojibake, invalid FTS numbers, Decimal parsing."""

from decimal import Decimal

import pytest

from importers.decoding import decode_body, fix_invalid_numbers, load_json_lenient, repair_mojibake
from tests.support.paths import FEEDS_DIR

CF_2025 = FEEDS_DIR / "contracts-finder" / "releases-2025-01-23_2025-03-11.json"


def test_valid_utf8_is_left_alone() -> None:
    text, notes = decode_body("Café £5 \u2013 Kłodzko".encode())
    assert text == "Café £5 \u2013 Kłodzko"
    assert notes == []


def test_kingfisher_1004_bytes_become_an_en_dash() -> None:
    # The exact bytes kingfisher-collect issue #1004 reported from Contracts Finder.
    text, notes = decode_body(b"Lot 1 \xc3\xa2\x80\x93 Cleaning")
    assert text == "Lot 1 \u2013 Cleaning"
    assert any("invalid UTF-8" in n for n in notes)
    assert any("double-encoded" in n for n in notes)


def test_stray_latin1_byte_keeps_the_valid_utf8_around_it() -> None:
    text, _ = decode_body("Kø".encode() + b" \xa3100 " + "Kł".encode())
    assert text == "Kø £100 Kł"


def test_double_encoded_pound_and_bullet_in_the_real_sample_are_repaired() -> None:
    raw = CF_2025.read_bytes()
    original = raw.decode("utf-8")
    mojibake_pounds = original.count("Â£")
    mojibake_bullets = original.count("â€¢")
    assert mojibake_pounds > 0
    assert mojibake_bullets > 0
    text, notes = decode_body(raw)
    print(f"repaired {mojibake_pounds} 'Â£' and {mojibake_bullets} 'â€¢' in the 2025 CF sample")
    assert "Â£" not in text
    assert "â€" not in text
    assert text.count("£") == original.count("£")
    assert text.count("•") == original.count("•") + mojibake_bullets
    assert notes


def test_text_double_encoded_twice_needs_two_passes() -> None:
    once = "£".encode().decode("cp1252")
    twice = once.encode().decode("cp1252")
    assert twice == "\u00c3\u201a\u00c2\u00a3"
    assert repair_mojibake(twice)[0] == "£"


def test_plain_accented_text_is_not_mistaken_for_mojibake() -> None:
    for text in ("Ã  la carte", "Château", "naïve café"):
        assert repair_mojibake(text)[0] == text


def test_fix_invalid_numbers_only_touches_number_tokens() -> None:
    raw = b'{"amount": 000, "b": 1e9999, "c": "open 0900 till 1e9999", "d": [00, 0.5, -007, 1e5], "e": 100}'
    fixed, notes = fix_invalid_numbers(raw)
    assert fixed == b'{"amount": 0, "b": 9999999, "c": "open 0900 till 1e9999", "d": [0, 0.5, -7, 1e5], "e": 100}'
    assert len(notes) == 2


def test_fix_invalid_numbers_respects_escaped_quotes_in_strings() -> None:
    raw = b'{"t": "say \\"000\\" now", "a": 000}'
    fixed, _ = fix_invalid_numbers(raw)
    assert fixed == b'{"t": "say \\"000\\" now", "a": 0}'


def test_load_json_lenient_parses_decimal_never_float() -> None:
    data, notes = load_json_lenient(b'{"v": {"amount": 3036.96}, "n": 000, "s": "a\\u0000b"}')
    assert data == {"v": {"amount": Decimal("3036.96")}, "n": 0, "s": "ab"}
    assert isinstance(data["v"]["amount"], Decimal)
    assert notes


def test_load_json_lenient_rejects_garbage() -> None:
    with pytest.raises(ValueError, match=r"Expecting|Unterminated|Extra"):
        load_json_lenient(b'{"releases": [{"ocid": "x"')
    with pytest.raises(ValueError, match="NaN"):
        load_json_lenient(b'{"amount": NaN}')
