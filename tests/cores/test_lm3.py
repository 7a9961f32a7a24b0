from decimal import Decimal

import pytest

from socialvalue.lm3 import LM3_LABEL, SurveyResponse, lm3


def test_worked_example_from_social_value_notes_section_3_2() -> None:
    # R1 = £1,000,000. The supplier pays £240,000 wages to local staff and £160,000 to local suppliers,
    # so R2 = £400,000. Local staff re-spend 40 % locally (£96,000), local suppliers 30 % (£48,000),
    # so R3 = £144,000 and LM3 = (1,000,000 + 400,000 + 144,000) / 1,000,000 = 1.544.
    response = SurveyResponse(
        supplier="Contractor",
        local_supplier_payments_pence=160_000_00,
        local_wages_pence=240_000_00,
        supplier_local_respend_share=Decimal("0.30"),
        employee_local_respend_share=Decimal("0.40"),
    )
    result = lm3(1_000_000_00, [response])
    assert result.round2_pence == 400_000_00
    assert result.round3_pence == Decimal(144_000_00)
    assert result.multiplier == Decimal("1.544")
    assert result.label == LM3_LABEL == "survey-based estimate"
    assert result.respondents == 1


def test_several_suppliers_add_their_rounds() -> None:
    # R1 = 1000p. A: R2 = 100 + 200 = 300, R3 = 100 x 0.5 + 200 x 0.25 = 100.
    # B: R2 = 0 + 50 = 50, R3 = 50 x 0.1 = 5. LM3 = (1000 + 350 + 105) / 1000 = 1.455.
    responses = [
        SurveyResponse("A", 100, 200, Decimal("0.5"), Decimal("0.25")),
        SurveyResponse("B", 0, 50, Decimal("0.9"), Decimal("0.1")),
    ]
    result = lm3(1000, responses)
    assert (result.round2_pence, result.round3_pence, result.multiplier) == (350, Decimal(105), Decimal("1.455"))


def test_no_responses_gives_one() -> None:
    assert lm3(500, []).multiplier == Decimal(1)


def test_repeating_fraction_keeps_28_digits() -> None:
    # (3 + 1 + 0) / 3 = 1.333...
    result = lm3(3, [SurveyResponse("A", 1, 0, Decimal(0), Decimal(0))])
    assert result.multiplier == Decimal("1.333333333333333333333333333")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"local_wages_pence": -1}, "local_wages_pence"),
        ({"local_supplier_payments_pence": 1.5}, "local_supplier_payments_pence"),
        ({"employee_local_respend_share": Decimal("1.2")}, "employee_local_respend_share"),
        ({"supplier_local_respend_share": 0.3}, "supplier_local_respend_share"),
    ],
)
def test_bad_answers_are_rejected(kwargs: dict[str, object], message: str) -> None:
    answers: dict[str, object] = {
        "supplier": "A",
        "local_supplier_payments_pence": 1,
        "local_wages_pence": 1,
        "supplier_local_respend_share": Decimal("0.1"),
        "employee_local_respend_share": Decimal("0.1"),
    }
    answers.update(kwargs)
    with pytest.raises(ValueError, match=message):
        SurveyResponse(**answers)  # type: ignore[arg-type]


@pytest.mark.parametrize("round1", [0, -5])
def test_round1_must_be_positive(round1: int) -> None:
    with pytest.raises(ValueError, match="round1_pence"):
        lm3(round1, [])
