"""msgspec types shared by every capability's API: bounded strings, ids, identifiers, pages."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

import msgspec

from procurement.models import Role

T = TypeVar("T")


Name = Annotated[str, msgspec.Meta(min_length=1, max_length=300)]


LongName = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


Text = Annotated[str, msgspec.Meta(max_length=10_000)]


Reason = Annotated[str, msgspec.Meta(min_length=3, max_length=1000)]


Code = Annotated[str, msgspec.Meta(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9]+$")]


Scheme = Annotated[str, msgspec.Meta(min_length=2, max_length=32, pattern=r"^[A-Za-z]{2}-[A-Za-z0-9]+$")]


IdValue = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


Id = Annotated[int, msgspec.Meta(ge=1)]


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
