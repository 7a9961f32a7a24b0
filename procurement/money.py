"""Exact money: Decimal in, integer pence stored, strings out. Never a binary float."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Literal

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


def to_pence(amount: Decimal | int | str, *, field: str = "value") -> int:
    """Exact conversion; refuses negatives, more than two decimal places and absurd sizes."""
    try:
        value = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    except InvalidOperation as exc:
        msg = f"{field} must be pounds with at most two decimals, like 80000.00"
        raise ValueError(msg) from exc
    if not value.is_finite():
        msg = f"{field} must be pounds with at most two decimals, like 80000.00"
        raise ValueError(msg)
    if value < 0:
        msg = f"{field} must not be negative; send pounds with at most two decimals, like 80000.00"
        raise ValueError(msg)
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        msg = f"{field} must be pounds with at most two decimals, like 80000.00"
        raise ValueError(msg)
    pence = int(value * 100)
    if pence > MAX_PENCE:
        msg = f"{field} is implausibly large"
        raise ValueError(msg)
    return pence


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
