"""msgspec structs at the API edge. ORM objects never leave the service layer.

Inputs validate themselves in __post_init__, so a bad request is refused before anything is written.
Money travels as decimal strings ("1234.50") in responses; requests may send a JSON number or a string,
both decoded exactly as Decimal.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Generic, TypeVar

import msgspec

from procurement.models import ContractStatus, OrganisationKind, Role
from procurement.money import parse_currency, to_pence

T = TypeVar("T")

CPV_RE = re.compile(r"^(\d{8})(-\d)?$")
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
LongName = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
Text = Annotated[str, msgspec.Meta(max_length=10_000)]
Reason = Annotated[str, msgspec.Meta(min_length=3, max_length=1000)]
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9]+$")]
Scheme = Annotated[str, msgspec.Meta(min_length=2, max_length=32, pattern=r"^[A-Za-z]{2}-[A-Za-z0-9]+$")]
IdValue = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Id = Annotated[int, msgspec.Meta(ge=1)]


def normalise_cpv(code: str) -> str:
    match = CPV_RE.match(code.strip())
    if match is None:
        msg = f"CPV code {code!r} must be 8 digits, optionally with a check digit (45000000-7)"
        raise ValueError(msg)
    return match.group(1)


def normalise_uk_postcode(text: str) -> str:
    from socialvalue.postcodes import normalise_postcode

    value = normalise_postcode(text)
    if value is None:
        msg = f"postcode {text!r} is not a valid UK postcode"
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
                msg = f"{self.id!r} is not a Companies House number"
                raise ValueError(msg)
            self.id = number


class Identifier(msgspec.Struct):
    scheme: str
    id: str


# Organisations ---------------------------------------------------------------------------------------------


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


# Suppliers -------------------------------------------------------------------------------------------------


class SupplierCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: LongName
    street_address: Annotated[str, msgspec.Meta(max_length=1000)] | None = None
    locality: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    postcode: str | None = None
    country: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    identifiers: Annotated[list[IdentifierIn], msgspec.Meta(max_length=20)] = []

    def __post_init__(self) -> None:
        if self.postcode is not None:
            self.postcode = normalise_uk_postcode(self.postcode)


class SupplierUpdate(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    name: LongName | msgspec.UnsetType = msgspec.UNSET
    street_address: Annotated[str, msgspec.Meta(max_length=1000)] | msgspec.UnsetType | None = msgspec.UNSET
    locality: Annotated[str, msgspec.Meta(max_length=200)] | msgspec.UnsetType | None = msgspec.UNSET
    postcode: str | msgspec.UnsetType | None = msgspec.UNSET
    country: Annotated[str, msgspec.Meta(max_length=100)] | msgspec.UnsetType | None = msgspec.UNSET
    identifiers: Annotated[list[IdentifierIn], msgspec.Meta(max_length=20)] | msgspec.UnsetType = msgspec.UNSET

    def __post_init__(self) -> None:
        if isinstance(self.postcode, str):
            self.postcode = normalise_uk_postcode(self.postcode)


class Supplier(msgspec.Struct):
    id: int
    name: str
    street_address: str | None
    locality: str | None
    postcode: str | None
    postcode_source: str | None
    country: str | None
    declared_scale: str | None
    declared_vcse: bool | None
    identifiers: list[Identifier]


# Contracts -------------------------------------------------------------------------------------------------


class ContractSupplierIn(msgspec.Struct, forbid_unknown_fields=True):
    supplier_id: Id
    share: Decimal | None = None

    def __post_init__(self) -> None:
        if self.share is not None:
            to_pence(self.share, field="share")


class ContractCreate(msgspec.Struct, forbid_unknown_fields=True):
    buyer_id: Id
    title: LongName
    suppliers: Annotated[list[ContractSupplierIn], msgspec.Meta(min_length=1, max_length=100)]
    description: Text | None = None
    reference: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    cpv_codes: Annotated[list[str], msgspec.Meta(max_length=20)] = []
    value: Decimal | None = None
    currency: str = "GBP"
    award_date: dt.date | None = None
    start_date: dt.date | None = None
    end_date: dt.date | None = None

    def __post_init__(self) -> None:
        self.cpv_codes = list(dict.fromkeys(normalise_cpv(c) for c in self.cpv_codes))
        self.currency = parse_currency(self.currency)
        if self.value is not None:
            to_pence(self.value)
        check_dates(self.start_date, self.end_date)
        ids = [s.supplier_id for s in self.suppliers]
        if len(set(ids)) != len(ids):
            msg = "a supplier is listed twice; give it one share"
            raise ValueError(msg)


class ContractUpdate(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    title: LongName | msgspec.UnsetType = msgspec.UNSET
    description: Text | msgspec.UnsetType | None = msgspec.UNSET
    reference: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | msgspec.UnsetType | None = msgspec.UNSET
    cpv_codes: Annotated[list[str], msgspec.Meta(max_length=20)] | msgspec.UnsetType = msgspec.UNSET
    value: Decimal | msgspec.UnsetType | None = msgspec.UNSET
    currency: str | msgspec.UnsetType = msgspec.UNSET
    award_date: dt.date | msgspec.UnsetType | None = msgspec.UNSET
    start_date: dt.date | msgspec.UnsetType | None = msgspec.UNSET
    end_date: dt.date | msgspec.UnsetType | None = msgspec.UNSET
    suppliers: Annotated[list[ContractSupplierIn], msgspec.Meta(min_length=1, max_length=100)] | msgspec.UnsetType = (
        msgspec.UNSET
    )

    def __post_init__(self) -> None:
        if isinstance(self.cpv_codes, list):
            self.cpv_codes = list(dict.fromkeys(normalise_cpv(c) for c in self.cpv_codes))
        if isinstance(self.currency, str):
            self.currency = parse_currency(self.currency)
        if isinstance(self.value, Decimal):
            to_pence(self.value)
        if isinstance(self.suppliers, list):
            ids = [s.supplier_id for s in self.suppliers]
            if len(set(ids)) != len(ids):
                msg = "a supplier is listed twice; give it one share"
                raise ValueError(msg)


class ContractWithdraw(msgspec.Struct, forbid_unknown_fields=True):
    reason: Reason


class ContractSupplierOut(msgspec.Struct):
    supplier_id: int
    name: str
    share: str | None
    share_pence: int | None
    share_basis: str


class BuyerRef(msgspec.Struct):
    id: int
    name: str


class Contract(msgspec.Struct):
    id: int
    source: str
    source_id: str | None
    award_id: str | None
    buyer: BuyerRef
    title: str
    description: str | None
    cpv_codes: list[str]
    value: str | None
    value_pence: int | None
    currency: str
    non_gbp: bool
    award_date: dt.date | None
    start_date: dt.date | None
    end_date: dt.date | None
    status: ContractStatus
    withdrawn_reason: str | None
    suppliers: list[ContractSupplierOut]
    created_at: dt.datetime
    updated_at: dt.datetime


def check_dates(start: dt.date | None, end: dt.date | None) -> None:
    if start is not None and end is not None and end < start:
        msg = f"end_date {end.isoformat()} is before start_date {start.isoformat()}"
        raise ValueError(msg)


# Users, health -----------------------------------------------------------------------------------------------


class Me(msgspec.Struct):
    user_id: int
    name: str
    role: Role
    organisation_id: int | None


class DatabaseHealth(msgspec.Struct):
    status: str
    dialect: str
    revision: str | None
    detail: str | None = None


class Health(msgspec.Struct):
    status: str
    app: str
    version: str
    database: DatabaseHealth
