"""The values a field of a fixed list takes, as a problem names them: read from Literal and Enum annotations, and
never a reason for a 400 to become a 500."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Literal

import msgspec

from procurement.problems import _choices, _hints

if TYPE_CHECKING:
    from decimal import Decimal


class Colour(enum.StrEnum):
    RED = "red"
    BLUE = "blue"


class Body(msgspec.Struct):
    colour: Colour
    size: Literal["s", "m"] | None = None
    name: str = ""


class Unresolvable(msgspec.Struct):
    amount: Decimal  # only imported for type checkers: cannot be resolved at run time


def test_literal_enum_and_optional_values_are_listed_as_written() -> None:
    hints = _hints(Body)
    assert _choices(hints["colour"]) == ["red", "blue"]
    assert _choices(hints["size"]) == ["s", "m"]
    assert _choices(hints["name"]) == []


def test_a_body_whose_types_cannot_be_resolved_gives_no_values_rather_than_an_error() -> None:
    assert _hints(Unresolvable) == {}
