"""NEF Local Multiplier 3 (LM3) from supplier survey answers.

LM3 = (R1 + R2 + R3) / R1, where
  R1 = the money traced (a contract value or an anchor's spend), in pence;
  R2 = what the round-1 suppliers spend in the area: payments to area-based suppliers plus wages to
       employees resident in the area (from each supplier's survey);
  R3 = how much of that R2 money its recipients re-spend in the area (from the round-3 surveys):
       local supplier payments x their local re-spend share + local wages x staff local re-spend share.

Round 2 and 3 come from surveys, so the result is always labelled a survey-based estimate. Amounts are
integer pence; shares and R3 are Decimal and R3 is kept exact (no rounding to pence).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext

LM3_LABEL = "survey-based estimate"
_ZERO = Decimal(0)
_ONE = Decimal(1)


@dataclass(frozen=True)
class SurveyResponse:
    """One round-1 supplier's answers about the money it received."""

    supplier: str
    local_supplier_payments_pence: int
    local_wages_pence: int
    supplier_local_respend_share: Decimal
    employee_local_respend_share: Decimal

    def __post_init__(self) -> None:
        for name in ("local_supplier_payments_pence", "local_wages_pence"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{self.supplier}: {name} must be a non-negative int of pence, got {value!r}")
        for name in ("supplier_local_respend_share", "employee_local_respend_share"):
            share = getattr(self, name)
            if not isinstance(share, Decimal) or not _ZERO <= share <= _ONE:
                raise ValueError(f"{self.supplier}: {name} must be a Decimal between 0 and 1, got {share!r}")

    @property
    def round2_pence(self) -> int:
        return self.local_supplier_payments_pence + self.local_wages_pence

    @property
    def round3_pence(self) -> Decimal:
        return (
            self.local_supplier_payments_pence * self.supplier_local_respend_share
            + self.local_wages_pence * self.employee_local_respend_share
        )


@dataclass(frozen=True)
class Lm3Result:
    round1_pence: int
    round2_pence: int
    round3_pence: Decimal
    multiplier: Decimal
    respondents: int
    label: str = LM3_LABEL


def lm3(round1_pence: int, responses: Sequence[SurveyResponse]) -> Lm3Result:
    """The LM3 multiplier, computed with 28 significant digits (Decimal default precision)."""
    if not isinstance(round1_pence, int) or isinstance(round1_pence, bool) or round1_pence <= 0:
        raise ValueError(f"round1_pence must be a positive int, got {round1_pence!r}")
    round2 = sum(r.round2_pence for r in responses)
    with localcontext() as ctx:
        ctx.prec = 28
        round3 = sum((r.round3_pence for r in responses), _ZERO)
        multiplier = (Decimal(round1_pence) + Decimal(round2) + round3) / Decimal(round1_pence)
    return Lm3Result(
        round1_pence=round1_pence,
        round2_pence=round2,
        round3_pence=round3,
        multiplier=multiplier,
        respondents=len(responses),
    )
