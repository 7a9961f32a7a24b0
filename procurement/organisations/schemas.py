"""API shapes of organisations, their local areas and anchor groups."""

from __future__ import annotations

from typing import Annotated

import msgspec

from procurement.models import OrganisationKind
from procurement.schemas import ID_ITEMS, Code, Id, Identifier, IdentifierIn, LongName, Name, normalise_uk_postcode


class OrganisationCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    kind: OrganisationKind = OrganisationKind.OTHER
    ods_code: Code | None = None
    gss_code: Code | None = None
    icb_ods_code: Code | None = None
    address: LongName | None = None
    postcode: str | None = None
    is_anchor: bool = False
    identifiers: Annotated[list[IdentifierIn], msgspec.Meta(max_length=20)] = []

    def __post_init__(self) -> None:
        if self.postcode is not None:
            self.postcode = normalise_uk_postcode(self.postcode)
        self.ods_code = self.ods_code.upper() if self.ods_code else None
        self.gss_code = self.gss_code.upper() if self.gss_code else None


class OrganisationUpdate(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    name: Name | msgspec.UnsetType = msgspec.UNSET
    kind: OrganisationKind | msgspec.UnsetType = msgspec.UNSET
    ods_code: Code | msgspec.UnsetType | None = msgspec.UNSET
    gss_code: Code | msgspec.UnsetType | None = msgspec.UNSET
    icb_ods_code: Code | msgspec.UnsetType | None = msgspec.UNSET
    address: LongName | msgspec.UnsetType | None = msgspec.UNSET
    postcode: str | msgspec.UnsetType | None = msgspec.UNSET
    is_anchor: bool | msgspec.UnsetType = msgspec.UNSET

    def __post_init__(self) -> None:
        if isinstance(self.postcode, str):
            self.postcode = normalise_uk_postcode(self.postcode)


class Organisation(msgspec.Struct):
    id: int
    name: str
    kind: str
    ods_code: str | None
    gss_code: str | None
    icb_ods_code: str | None
    address: str | None
    postcode: str | None
    lad_code: str | None
    is_anchor: bool
    identifiers: list[Identifier]


LadCode = Annotated[str, msgspec.Meta(min_length=9, max_length=9, pattern=r"^[A-Za-z][0-9]{8}$")]


# As the OpenAPI document shows the items (Litestar drops the bounds of list items).
_LAD_ITEMS = {"extra": {"items": {"type": "string", "minLength": 9, "maxLength": 9, "pattern": r"^[A-Za-z][0-9]{8}$"}}}


class LocalAreaIn(msgspec.Struct, forbid_unknown_fields=True):
    preset: str | None = None
    lad_codes: (
        Annotated[list[LadCode], msgspec.Meta(min_length=1, max_length=400, extra_json_schema=_LAD_ITEMS)] | None
    ) = None
    label: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class Lad(msgspec.Struct):
    code: str
    name: str | None


class LocalAreaOut(msgspec.Struct):
    organisation_id: int
    organisation_name: str
    preset: str | None
    is_default: bool
    label: str
    region_code: str
    lad_codes: list[str]
    lads: list[Lad]


Slug = Annotated[str, msgspec.Meta(min_length=2, max_length=64, pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")]


class AnchorGroupCreate(msgspec.Struct, forbid_unknown_fields=True):
    slug: Slug
    name: Annotated[str, msgspec.Meta(min_length=2, max_length=300)]
    organisation_ids: Annotated[list[Id], msgspec.Meta(min_length=1, max_length=200, extra_json_schema=ID_ITEMS)]


class AnchorGroupUpdate(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    name: Annotated[str, msgspec.Meta(min_length=2, max_length=300)] | msgspec.UnsetType = msgspec.UNSET
    organisation_ids: (
        Annotated[list[Id], msgspec.Meta(min_length=1, max_length=200, extra_json_schema=ID_ITEMS)] | msgspec.UnsetType
    ) = msgspec.UNSET


class GroupMember(msgspec.Struct):
    id: int
    name: str


class AnchorGroup(msgspec.Struct):
    id: int
    slug: str
    name: str
    members: list[GroupMember]
