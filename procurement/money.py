"""Exact money: Decimal in, integer pence stored, strings out. Never a binary float."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated, Any, Literal

import msgspec

# Active ISO 4217 codes (list of 2024), so a typo like "GPB" is refused rather than stored.
ISO_4217 = frozenset(
    (  # noqa: SIM905 - one readable block beats 180 lines of quoted codes
        "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD CAD "
        "CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ "
        "GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR "
        "LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN "
        "PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB "
        "TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG"
    ).split()
)

MAX_PENCE = 10**15  # £10 trillion: far above any contract, small enough to catch unit mistakes


def parse_currency(code: str) -> str:
    value = code.strip().upper()
    if value not in ISO_4217:
        msg = f"currency must be a three-letter ISO 4217 currency code like GBP, not {code!r}"
        raise ValueError(msg)
    return value


class TooFine(ValueError):
    """More decimal places than the unit allows."""


def exact_units(value: Decimal, *, places: int, below: int, field: str, what: str = "amount") -> int:
    """``value`` scaled by 10**places as an exact integer below ``below``; refuses non-finite, negative, finer or
    too-large values.

    Works on the digits and exponent alone: ``1E+999999999`` and ``1E-999999999`` are refused rather than
    overflowing or rounding to 0 in the decimal context (``normalize()`` and ``*`` both go through it).
    """
    if not value.is_finite():
        msg = f"{field} must be a finite {what}"
        raise ValueError(msg)
    if value.is_signed() and value != 0:
        msg = f"{field} must not be negative"
        raise ValueError(msg)
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite, checked above
    significant = "".join(map(str, digits)).rstrip("0")
    if not significant:
        return 0
    exponent += len(digits) - len(significant)
    if exponent < -places:
        msg = f"{field} has more than {_PLACES_WORDS.get(places, places)} decimal places"
        raise TooFine(msg)
    # 10**exponent for a huge exponent would be a huge integer: refuse by magnitude before building it.
    if value.adjusted() + places > len(str(below)):
        msg = f"{field} is implausibly large"
        raise ValueError(msg)
    units: int = int(significant) * 10 ** (exponent + places)
    if units >= below:
        msg = f"{field} is implausibly large"
        raise ValueError(msg)
    return units


_PLACES_WORDS = {2: "two", 4: "four"}


def to_pence(amount: Decimal | int | str, *, field: str = "value") -> int:
    """Exact conversion; refuses negatives, more than two decimal places and absurd sizes."""
    try:
        value = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    except InvalidOperation as exc:
        msg = f"{field} must be pounds with at most two decimals, like 80000.00"
        raise ValueError(msg) from exc
    plain = f"{field} must be pounds with at most two decimals, like 80000.00"
    if not value.is_finite():
        raise ValueError(plain)
    if value.is_signed() and value != 0:
        msg = f"{field} must not be negative; send pounds with at most two decimals, like 80000.00"
        raise ValueError(msg)
    try:
        return exact_units(value, places=2, below=MAX_PENCE, field=field)
    except TooFine:
        raise ValueError(plain) from None


def format_pence(pence: int | None) -> str | None:
    if pence is None:
        return None
    sign = "-" if pence < 0 else ""
    pounds, rem = divmod(abs(pence), 100)
    return f"{sign}{pounds}.{rem:02d}"


def split_evenly(total_pence: int, parts: int) -> list[int]:
    """Equal shares that add up exactly; the first shares take the leftover pence."""
    base, rem = divmod(total_pence, parts)
    return [base + (1 if i < rem else 0) for i in range(parts)]


_SHARE_PLACES = Decimal("0.0001")


def ratio_text(numerator: int, denominator: int) -> str | None:
    """An exact ratio of integers (pence, counts) as a 4-decimal string, half up; None when dividing by 0.

    Every share and change in points that the API, the CSV files and the statements show is written by this
    one function, so the same figure reads the same everywhere.
    """
    if denominator == 0:
        return None
    return str((Decimal(numerator) / Decimal(denominator)).quantize(_SHARE_PLACES, rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class JudgedShare:
    """A share beside the share of value it could be judged on (its coverage).

    ``share`` is None ("not known") when nothing was counted or the coverage is below the threshold: a share
    judged on too little of the value would read as a fact about all of it, and unknown is never zero.
    """

    share: str | None
    share_known: str | None
    coverage: str | None
    status: Literal["known", "not_known"]


def judged_share(part: int, total: int, unknown: int, threshold: Decimal) -> JudgedShare:
    """``part`` of ``total`` pence, where ``unknown`` pence could not be judged either way."""
    known = total - unknown
    coverage = ratio_text(known, total)
    # Compared exactly in pence: 0.4999 of the value is below a 0.50 threshold even if it rounds to 0.5000.
    if total <= 0 or Decimal(known) < threshold * total:
        return JudgedShare(share=None, share_known=None, coverage=coverage, status="not_known")
    return JudgedShare(
        share=ratio_text(part, total), share_known=ratio_text(part, known), coverage=coverage, status="known"
    )


def amount_schema(places: int, below: int, example: str, *, nullable: bool = False) -> dict[str, Any]:
    """How the OpenAPI document describes an exact amount: a decimal string or a whole JSON number, not negative.

    (A JSON number with decimals is accepted too when it is exact; the document shows the forms to send.)
    """
    from litestar.openapi.spec import Schema
    from litestar.openapi.spec.enums import OpenAPIType

    whole = len(str(below // 10**places)) - 1
    null = [Schema(type=OpenAPIType.NULL)] if nullable else []
    return {
        "description": f"An exact amount, at most {places} decimal places, not negative: a string or a JSON number.",
        "examples": [example],
        "extra": {
            "type": None,
            "one_of": [
                Schema(type=OpenAPIType.STRING, pattern=rf"^[0-9]{{1,{whole}}}(\.[0-9]{{1,{places}}})?$"),
                Schema(type=OpenAPIType.INTEGER, minimum=0, maximum=10**whole - 1),
                *null,
            ],
        },
    }


# Money in a request: Decimal from a string ("1234.50") or a JSON number, checked by to_pence.
Money = Annotated[Decimal, msgspec.Meta(extra_json_schema=amount_schema(2, MAX_PENCE, "1234.50"))]
MoneyOrNone = Annotated[
    Decimal | None, msgspec.Meta(extra_json_schema=amount_schema(2, MAX_PENCE, "1234.50", nullable=True))
]
