"""msgspec types shared by every capability's API: bounded strings, ids, identifiers, pages."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

import msgspec
from litestar.params import Parameter

from procurement.models import Role

T = TypeVar("T")


# Ids are 64-bit database keys: a bigger number can name no record, and would overflow the database driver.
MAX_ID = 2**63 - 1

# A value of only spaces would be stored as "" once stripped: every required text must have a visible character.
NOT_BLANK = r"\S"

# Period labels as the API takes them (UK financial years, 1900 to 2099): a quarter, a year, or either.
# A year label's second half is the next year ("2025/26"), which a pattern can only say by listing them.
_YEARS = "|".join(f"{y}/{(y + 1) % 100:02d}" for y in range(1900, 2100))
QUARTER_PATTERN = r"^(19|20)[0-9]{2}Q[1-4]$"
YEAR_PATTERN = rf"^({_YEARS})$"
PERIOD_PATTERN = rf"^((19|20)[0-9]{{2}}Q[1-4]|{_YEARS})$"

# Items of a list of ids, as the OpenAPI document shows them (Litestar drops the bounds of list items).
ID_ITEMS = {"extra": {"items": {"type": "integer", "minimum": 1, "maximum": MAX_ID}}}


Name = Annotated[str, msgspec.Meta(min_length=1, max_length=300, pattern=NOT_BLANK)]


LongName = Annotated[str, msgspec.Meta(min_length=1, max_length=500, pattern=NOT_BLANK)]


Text = Annotated[str, msgspec.Meta(max_length=10_000)]


Reason = Annotated[str, msgspec.Meta(min_length=3, max_length=1000, pattern=NOT_BLANK)]


Code = Annotated[str, msgspec.Meta(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9]+$")]


Scheme = Annotated[str, msgspec.Meta(min_length=2, max_length=32, pattern=r"^[A-Za-z]{2}-[A-Za-z0-9]+$")]


IdValue = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=NOT_BLANK)]


Id = Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]


# The same bound for ids in paths and query strings (Litestar parameters), so an id too big for the database is a
# 400 problem naming the parameter instead of a driver overflow.
IdParam = Annotated[int, Parameter(ge=1, le=MAX_ID, description="A record id (a positive 64-bit integer).")]


def id_query(description: str = "A record id (a positive 64-bit integer).") -> Any:
    """An optional id in the query string, bounded like every other id."""
    return Parameter(default=None, ge=1, le=MAX_ID, description=description)


def required_id_query(description: str = "A record id (a positive 64-bit integer).") -> Any:
    return Parameter(ge=1, le=MAX_ID, description=description)


def normalise_uk_postcode(text: str) -> str:
    from socialvalue.postcodes import normalise_postcode

    value = normalise_postcode(text)
    if value is None:
        msg = f"postcode {text!r} is not a UK postcode; send one like B15 2GW"
        raise ValueError(msg)
    return value


class Page(msgspec.Struct, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class IdentifierIn(msgspec.Struct, forbid_unknown_fields=True):
    scheme: Scheme
    id: IdValue

    def __post_init__(self) -> None:
        self.scheme = self.scheme.upper()
        self.id = self.id.strip()
        if self.scheme == "GB-COH":
            from socialvalue.identifiers import normalise_company_number

            number = normalise_company_number(self.id)
            if number is None:
                msg = f"id {self.id!r} is not a Companies House number; send one like 04482788 or SC123456"
                raise ValueError(msg)
            self.id = number


class Identifier(msgspec.Struct):
    scheme: str
    id: str


class Me(msgspec.Struct):
    user_id: int
    name: str
    role: Role
    organisation_id: int | None
