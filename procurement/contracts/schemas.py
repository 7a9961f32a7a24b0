"""API shapes of contracts and their suppliers' shares."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated

import msgspec

from procurement.models import ContractStatus
from procurement.money import ISO_4217, MoneyOrNone, parse_currency, to_pence
from procurement.schemas import Id, LongName, Reason, Text

CPV_RE = re.compile(r"^(\d{8})(-\d)?$")

# What the OpenAPI document shows; the checks themselves (and their messages) are normalise_cpv and parse_currency.
CpvCodes = Annotated[
    list[str],
    msgspec.Meta(
        max_length=20,
        extra_json_schema={"extra": {"items": {"type": "string", "pattern": r"^\s*[0-9]{8}(-[0-9])?\s*$"}}},
    ),
]
Currency = Annotated[
    str,
    msgspec.Meta(
        extra_json_schema={
            "examples": ["GBP"],
            "extra": {"enum": sorted(ISO_4217 | {c.lower() for c in ISO_4217})},
        }
    ),
]


def normalise_cpv(code: str, field: str = "cpv_codes") -> str:
    match = CPV_RE.match(code.strip())
    if match is None:
        msg = f"{field} must be an 8-digit CPV code like 15894210 (a check digit, 15894210-7, may follow); not {code!r}"
        raise ValueError(msg)
    return match.group(1)


def normalise_cpvs(codes: list[str]) -> list[str]:
    """Each code checked and named as the caller sent it (cpv_codes[2]); duplicates dropped."""
    return list(dict.fromkeys(normalise_cpv(c, f"cpv_codes[{i}]") for i, c in enumerate(codes)))


def _no_repeats(suppliers: list[ContractSupplierIn]) -> None:
    ids = [s.supplier_id for s in suppliers]
    repeated = next((i for i in ids if ids.count(i) > 1), None)
    if repeated is not None:
        msg = f"suppliers lists supplier {repeated} twice; list each supplier once, with its share"
        raise ValueError(msg)


class ContractSupplierIn(msgspec.Struct, forbid_unknown_fields=True):
    supplier_id: Id
    share: MoneyOrNone = None

    def __post_init__(self) -> None:
        if self.share is not None:
            to_pence(self.share, field="share")


class ContractCreate(msgspec.Struct, forbid_unknown_fields=True):
    buyer_id: Id
    title: LongName
    suppliers: Annotated[list[ContractSupplierIn], msgspec.Meta(min_length=1, max_length=100)]
    description: Text | None = None
    reference: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    cpv_codes: CpvCodes = []
    value: MoneyOrNone = None
    currency: Currency = "GBP"
    award_date: dt.date | None = None
    start_date: dt.date | None = None
    end_date: dt.date | None = None

    def __post_init__(self) -> None:
        self.cpv_codes = normalise_cpvs(self.cpv_codes)
        self.currency = parse_currency(self.currency)
        if self.value is not None:
            to_pence(self.value)
        check_dates(self.start_date, self.end_date)
        _no_repeats(self.suppliers)


class ContractUpdate(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    title: LongName | msgspec.UnsetType = msgspec.UNSET
    description: Text | msgspec.UnsetType | None = msgspec.UNSET
    reference: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | msgspec.UnsetType | None = msgspec.UNSET
    cpv_codes: CpvCodes | msgspec.UnsetType = msgspec.UNSET
    value: MoneyOrNone | msgspec.UnsetType = msgspec.UNSET
    currency: Currency | msgspec.UnsetType = msgspec.UNSET
    award_date: dt.date | msgspec.UnsetType | None = msgspec.UNSET
    start_date: dt.date | msgspec.UnsetType | None = msgspec.UNSET
    end_date: dt.date | msgspec.UnsetType | None = msgspec.UNSET
    suppliers: Annotated[list[ContractSupplierIn], msgspec.Meta(min_length=1, max_length=100)] | msgspec.UnsetType = (
        msgspec.UNSET
    )

    def __post_init__(self) -> None:
        if isinstance(self.cpv_codes, list):
            self.cpv_codes = normalise_cpvs(self.cpv_codes)
        if isinstance(self.currency, str):
            self.currency = parse_currency(self.currency)
        if isinstance(self.value, Decimal):
            to_pence(self.value)
        if isinstance(self.suppliers, list):
            _no_repeats(self.suppliers)


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
