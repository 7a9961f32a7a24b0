"""Hand-worked checks of socialvalue.metrics on a 13-line fixture.

Anchors: 1 (a Birmingham trust), 2 (Solihull council), 3 (Walsall council). Group "Birmingham and
Solihull" = anchors 1 and 2. Money in pence. Quarters are UK financial-year quarters (2023Q4 = Jan-Mar 2024).

Spread-basis allocation, worked by hand:
  L1  91000p, 1 Mar - 30 Apr 2024 = 31 + 30 = 61 days.
      2023Q4: 91000 x 31 / 61 = 2821000 / 61 = 46245 rem 55;  2024Q1: 91000 x 30 / 61 = 2730000 / 61 = 44754 rem 6.
      Floors sum to 90999, 1p left over goes to the larger remainder (55, 2023Q4): 46246 + 44754 = 91000.
  L2  6000p, 15 Feb - 14 Apr 2024: Feb 15-29 = 15 days (leap year), Mar 31, Apr 1-14 = 14; total 60 days.
      2023Q4 gets 46 days: 6000 x 46 / 60 = 4600;  2024Q1 gets 14: 6000 x 14 / 60 = 1400 (both exact).
      (Without 29 Feb the split would be 45/59 and not whole pence.)
  L3  30000p, end before start -> no usable period -> stays on award date 10 May 2024 (2024Q1), spread_fallback.
  L4  10000p, no start/end -> award date 10 May 2024 (2024Q1), spread_fallback.  Same contract as L3.
  L5  20000p, 1 Jul - 30 Sep 2024, all of 2024Q2 (92 days).
  L10 40000p, no start/end -> award date 1 May 2023 (2023Q1), spread_fallback.
  L11 9100p,  1 Apr - 30 Jun 2024 = all of 2024Q1 (91 days). No award date.
  L12 20000p, award 15 Apr 2024 (2024Q1), spread_fallback.
  L13 5000p,  one day, 20 May 2024 (2024Q1).
Excluded: L6 EUR (non_gbp, placed in 2024Q1 by award date), L7 withdrawn AND USD (withdrawn wins),
L8 value unknown (award 1 Aug 2024 -> 2024Q2), L9 start only, no end, no award date (no_date).
"""

from datetime import date
from typing import Any

import polars as pl
import pytest

from socialvalue.metrics import INPUT_SCHEMA, MetricsResult, compute_metrics

BS = "Birmingham and Solihull"
SCOPES = {"1": [1], "2": [2], "3": [3], BS: [1, 2], "all": [1, 2, 3]}

_COLUMNS = list(INPUT_SCHEMA)


def _line(
    line_id: int,
    contract_id: int,
    anchor_id: int,
    supplier_id: int,
    name: str,
    value: int | None,
    currency: str,
    award: date | None,
    start: date | None,
    end: date | None,
    cpv: str | None,
    tier: str,
    category: str,
    sme: bool | None,
    vcse: bool | None,
    se: bool | None,
    status: str = "active",
) -> tuple[Any, ...]:
    return (line_id, contract_id, anchor_id, supplier_id, name, value, currency, award, start, end, cpv, tier,
            category, sme, vcse, se, status)  # fmt: skip


D = date
FIXTURE_ROWS = [
    _line(1, 1, 1, 101, "Brum Build", 91000, "GBP", D(2024, 3, 15), D(2024, 3, 1), D(2024, 4, 30), "45210000",
          "local", "sme", True, False, False),
    _line(2, 2, 1, 102, "Solihull Care CIC", 6000, "GBP", D(2024, 2, 1), D(2024, 2, 15), D(2024, 4, 14), "85000000",
          "regional", "cic", True, True, True),
    _line(3, 3, 1, 103, "National Supplies", 30000, "GBP", D(2024, 5, 10), D(2024, 6, 1), D(2024, 5, 1), "33100000",
          "rest_of_uk", "large", False, False, False),
    _line(4, 3, 1, 101, "Brum Build", 10000, "GBP", D(2024, 5, 10), None, None, "33100000",
          "local", "sme", True, False, False),
    _line(5, 4, 1, 104, "Unknown Ltd", 20000, "GBP", D(2024, 6, 20), D(2024, 7, 1), D(2024, 9, 30), None,
          "unknown", "unknown", None, None, None),
    _line(6, 5, 1, 105, "Euro GmbH", 50000, "EUR", D(2024, 5, 1), None, None, "45000000",
          "outside_uk", "large", False, False, False),
    _line(7, 6, 1, 101, "Brum Build", 99900, "USD", D(2024, 6, 1), None, None, "45000000",
          "local", "sme", True, False, False, status="withdrawn"),
    _line(8, 7, 1, 106, "Mystery Value", None, "GBP", D(2024, 8, 1), None, None, None,
          "local", "sme", True, False, False),
    _line(9, 8, 1, 107, "Undated", 12345, "GBP", None, D(2024, 5, 1), None, None,
          "local", "sme", True, False, False),
    _line(10, 9, 1, 108, "Brum Food Bank", 40000, "GBP", D(2023, 5, 1), None, None, "55000000",
          "local", "charity", False, True, False),
    _line(11, 10, 2, 109, "Shirley Cleaning", 9100, "GBP", None, D(2024, 4, 1), D(2024, 6, 30), "90910000",
          "local", "sme", True, False, False),
    _line(12, 11, 2, 101, "Brum Build", 20000, "GBP", D(2024, 4, 15), None, None, "45210000",
          "regional", "sme", True, False, False),
    _line(13, 12, 3, 110, "Walsall Printers", 5000, "GBP", D(2024, 5, 20), D(2024, 5, 20), D(2024, 5, 20), "79800000",
          "local", "sme", True, False, False),
]  # fmt: skip


def fixture_frame(rows: list[tuple[Any, ...]] = FIXTURE_ROWS) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=INPUT_SCHEMA, orient="row")


@pytest.fixture(scope="module")
def spread() -> MetricsResult:
    return compute_metrics(fixture_frame(), basis="spread", scopes=SCOPES)


@pytest.fixture(scope="module")
def awarded() -> MetricsResult:
    return compute_metrics(fixture_frame(), basis="awarded", scopes=SCOPES)


def row(frame: pl.DataFrame, **keys: object) -> dict[str, Any]:
    hit = frame.filter(*[pl.col(k) == v for k, v in keys.items()])
    assert hit.height == 1, f"expected one row for {keys}, got {hit.height}"
    return hit.row(0, named=True)


def test_spread_allocation_of_each_line(spread: MetricsResult) -> None:
    got = {
        (r["line_id"], r["quarter"]): (r["allocated_pence"], r["days_in_period"], r["days_total"], r["spread_fallback"])
        for r in spread.lines.iter_rows(named=True)
    }
    assert got == {
        (1, "2023Q4"): (46246, 31, 61, False),
        (1, "2024Q1"): (44754, 30, 61, False),
        (2, "2023Q4"): (4600, 46, 60, False),  # leap day counted
        (2, "2024Q1"): (1400, 14, 60, False),
        (3, "2024Q1"): (30000, None, None, True),  # end before start
        (4, "2024Q1"): (10000, None, None, True),  # no period
        (5, "2024Q2"): (20000, 92, 92, False),
        (10, "2023Q1"): (40000, None, None, True),
        (11, "2024Q1"): (9100, 91, 91, False),
        (12, "2024Q1"): (20000, None, None, True),
        (13, "2024Q1"): (5000, 1, 1, False),
    }
    assert set(spread.lines["basis"]) == {"spread"}
    assert not spread.lines["award_fallback"].any()


def test_spread_anchor_1_quarter_by_quarter(spread: MetricsResult) -> None:
    s = spread.summary.filter(pl.col("scope") == "1")
    # Grid runs from the first period of any line (2023Q1, L10) to the last (2024Q2, L5 and excluded L8).
    assert s["period"].to_list() == ["2023Q1", "2023Q2", "2023Q3", "2023Q4", "2024Q1", "2024Q2"]
    assert s["total_pence"].to_list() == [40000, 0, 0, 50846, 86154, 20000]
    assert s["local_pence"].to_list() == [40000, 0, 0, 46246, 54754, 0]
    assert s["lines"].to_list() == [1, 0, 0, 2, 4, 1]

    q1_23 = row(s, period="2023Q1")
    assert q1_23["local_share"] == 1.0
    assert q1_23["prev_period"] is None  # 2022Q4 is before the data
    assert q1_23["local_share_change_pp_prev"] is None
    assert q1_23["new_local_suppliers"] == 1  # supplier 108
    assert q1_23["category_charity_pence"] == 40000
    assert q1_23["vcse_suppliers"] == 1
    assert (q1_23["spread_fallback_lines"], q1_23["spread_fallback_pence"]) == (1, 40000)

    empty = row(s, period="2023Q2")
    assert empty["local_share"] is None  # 0 / 0
    assert empty["suppliers"] == 0

    q4 = row(s, period="2023Q4")
    # L1 46246 local + L2 4600 regional = 50846
    assert q4["local_share"] == pytest.approx(46246 / 50846)
    assert q4["regional_pence"] == 4600
    assert q4["regional_share"] == pytest.approx(4600 / 50846)
    assert q4["suppliers"] == 2
    assert q4["local_suppliers"] == 1
    assert q4["new_local_suppliers"] == 1  # 101 first local here
    assert q4["sme_pence"] == 50846  # both SME
    assert q4["sme_share"] == 1.0
    assert q4["vcse_pence"] == q4["social_enterprise_pence"] == 4600
    # prior quarter 2023Q3 is in the data but empty: value change is known, share change is not
    assert q4["prev_period"] == "2023Q3"
    assert q4["total_change_pence_prev"] == 50846
    assert q4["local_change_pence_prev"] == 46246
    assert q4["local_share_change_pp_prev"] is None
    assert q4["yoy_period"] is None  # 2022Q4 is before the data


def test_spread_anchor_1_2024q1(spread: MetricsResult) -> None:
    q = row(spread.summary, scope="1", period="2024Q1")
    # L1 44754 local + L2 1400 regional + L3 30000 rest_of_uk + L4 10000 local = 86154
    assert q["total_pence"] == 86154
    assert (q["local_pence"], q["regional_pence"], q["rest_of_uk_pence"]) == (54754, 1400, 30000)
    assert (q["outside_uk_pence"], q["tier_unknown_pence"]) == (0, 0)
    assert q["local_share"] == pytest.approx(54754 / 86154)
    assert q["local_share_known"] == pytest.approx(54754 / 86154)  # nothing unknown
    assert q["tier_unknown_share"] == 0.0
    assert q["rest_of_uk_share"] == pytest.approx(30000 / 86154)
    # suppliers 101, 102, 103; local only 101, and it was already local in 2023Q4
    assert (q["suppliers"], q["local_suppliers"], q["new_local_suppliers"]) == (3, 1, 0)
    assert q["local_supplier_share"] == pytest.approx(1 / 3)
    # SME lines: L1 44754 + L2 1400 + L4 10000 = 56154; SME suppliers 101, 102
    assert q["sme_pence"] == 56154
    assert q["sme_share"] == pytest.approx(56154 / 86154)
    assert (q["sme_unknown_pence"], q["sme_unknown_share"]) == (0, 0.0)
    assert q["sme_suppliers"] == 2
    assert q["sme_supplier_share"] == pytest.approx(2 / 3)
    assert q["vcse_pence"] == 1400
    assert q["vcse_suppliers"] == 1
    # categories: sme 44754 + 10000 = 54754, cic 1400, large 30000
    assert (q["category_sme_pence"], q["category_cic_pence"], q["category_large_pence"]) == (54754, 1400, 30000)
    assert q["category_large_suppliers"] == 1
    assert (q["spread_fallback_lines"], q["spread_fallback_pence"]) == (2, 40000)  # L3 + L4
    # L6 (EUR, award 1 May 2024) and L7 (withdrawn, award 1 Jun 2024) would have fallen here
    assert (q["excluded_non_gbp_lines"], q["excluded_withdrawn_lines"], q["excluded_no_value_lines"]) == (1, 1, 0)
    # against 2023Q4 (50846, local 46246)
    assert q["prev_period"] == "2023Q4"
    assert q["total_change_pence_prev"] == 86154 - 50846 == 35308
    assert q["local_change_pence_prev"] == 54754 - 46246 == 8508
    assert q["local_share_change_pp_prev"] == pytest.approx((54754 / 86154 - 46246 / 50846) * 100)  # -26.40 pp
    # against 2023Q1 (40000, all local)
    assert q["yoy_period"] == "2023Q1"
    assert q["total_change_pence_yoy"] == 86154 - 40000 == 46154
    assert q["local_change_pence_yoy"] == 54754 - 40000 == 14754
    assert q["local_share_change_pp_yoy"] == pytest.approx((54754 / 86154 - 1) * 100)  # -36.45 pp


def test_spread_anchor_1_2024q2_unknown_tier_and_status(spread: MetricsResult) -> None:
    q = row(spread.summary, scope="1", period="2024Q2")
    # only L5: 20000, tier unknown, SME/VCSE unknown
    assert (q["total_pence"], q["tier_unknown_pence"]) == (20000, 20000)
    assert q["tier_unknown_share"] == 1.0
    assert q["local_share"] == 0.0
    assert q["local_share_known"] is None  # 0 / (20000 - 20000)
    assert (q["sme_share"], q["sme_unknown_share"], q["sme_share_known"]) == (0.0, 1.0, None)
    assert (q["sme_suppliers"], q["sme_unknown_suppliers"]) == (0, 1)
    assert q["sme_supplier_share_known"] is None
    assert q["excluded_no_value_lines"] == 1  # L8, award 1 Aug 2024
    assert q["local_share_change_pp_prev"] == pytest.approx(-54754 / 86154 * 100)
    assert q["total_change_pence_prev"] == 20000 - 86154
    # a year earlier, 2023Q2, is in the data but empty
    assert (q["yoy_period"], q["total_change_pence_yoy"], q["local_share_change_pp_yoy"]) == ("2023Q2", 20000, None)


def test_group_is_sum_of_members_and_counts_suppliers_once(spread: MetricsResult) -> None:
    g = row(spread.summary, scope=BS, period="2024Q1")
    # anchor 2 adds L11 9100 local (supplier 109) and L12 20000, supplier 101 but regional FOR ANCHOR 2
    assert g["total_pence"] == 86154 + 9100 + 20000 == 115254
    assert g["local_pence"] == 54754 + 9100 == 63854
    assert g["regional_pence"] == 1400 + 20000 == 21400
    assert g["local_share"] == pytest.approx(63854 / 115254)
    # suppliers 101, 102, 103, 109 (101 once); local 101 (for anchor 1) and 109; regional 102 and 101 (for 2)
    assert (g["suppliers"], g["local_suppliers"], g["regional_suppliers"]) == (4, 2, 2)
    assert g["new_local_suppliers"] == 1  # 109; 101 was local to the group already in 2023Q4
    money = [c for c, t in spread.summary.schema.items() if c.endswith("_pence") and t == pl.Int64]
    for period in spread.summary.filter(pl.col("scope") == BS)["period"]:
        group = row(spread.summary, scope=BS, period=period)
        one, two = row(spread.summary, scope="1", period=period), row(spread.summary, scope="2", period=period)
        for column in money:
            if group[column] is not None and "change" not in column:
                assert group[column] == one[column] + two[column], (period, column)
    everyone = row(spread.summary, scope="all", period="2024Q1")
    assert everyone["total_pence"] == 115254 + 5000  # + L13 at anchor 3


def test_top_suppliers(spread: MetricsResult) -> None:
    top = spread.top_suppliers.filter(pl.col("scope") == BS, pl.col("period") == "2024Q1")
    got = top.select("rank", "supplier_id", "supplier_name", "tier", "category", "value_pence").rows()
    assert got == [
        (1, 101, "Brum Build", "mixed", "sme", 44754 + 10000 + 20000),  # local to 1, regional to 2
        (2, 103, "National Supplies", "rest_of_uk", "large", 30000),
        (3, 109, "Shirley Cleaning", "local", "sme", 9100),
        (4, 102, "Solihull Care CIC", "regional", "cic", 1400),
    ]
    assert top["share"].to_list() == pytest.approx([74754 / 115254, 30000 / 115254, 9100 / 115254, 1400 / 115254])


def test_cpv_divisions(spread: MetricsResult) -> None:
    cpv = spread.by_cpv_division.filter(pl.col("scope") == "1", pl.col("period") == "2024Q1")
    got = cpv.select("cpv_division", "lines", "value_pence", "local_pence").rows()
    # 33: L3 30000 + L4 10000 (local); 45: L1 44754 (local); 85: L2 1400
    assert got == [("33", 2, 40000, 10000), ("45", 1, 44754, 44754), ("85", 1, 1400, 0)]
    assert cpv["share"].to_list() == pytest.approx([40000 / 86154, 44754 / 86154, 1400 / 86154])
    unknown = row(spread.by_cpv_division, scope="1", period="2024Q2")
    assert (unknown["cpv_division"], unknown["value_pence"]) == (None, 20000)


def test_by_tier_and_by_category_frames(spread: MetricsResult) -> None:
    tiers = spread.by_tier.filter(pl.col("scope") == "1", pl.col("period") == "2024Q1")
    assert tiers.select("tier", "value_pence", "suppliers").rows() == [
        ("local", 54754, 1),
        ("regional", 1400, 1),
        ("rest_of_uk", 30000, 1),
        ("outside_uk", 0, 0),
        ("unknown", 0, 0),
    ]
    assert tiers["share"].sum() == pytest.approx(1.0)
    cats = spread.by_category.filter(pl.col("scope") == "1", pl.col("period") == "2024Q2")
    unknown = row(cats, category="unknown")
    assert (unknown["value_pence"], unknown["share"], unknown["share_known"]) == (20000, 1.0, None)


def test_excluded_lines_are_counted_not_summed(spread: MetricsResult) -> None:
    got = spread.excluded.filter(pl.col("scope") == "1").select("line_id", "reason", "period", "currency").rows()
    assert got == [
        (6, "non_gbp", "2024Q1", "EUR"),
        (7, "withdrawn", "2024Q1", "USD"),  # withdrawn is checked before currency
        (8, "no_value", "2024Q2", "GBP"),
        (9, "no_date", None, "GBP"),
    ]
    # none of their money is anywhere: anchor 1 included lines sum to 91000 + 6000 + 30000 + 10000 + 20000 + 40000
    assert spread.summary.filter(pl.col("scope") == "1")["total_pence"].sum() == 197000
    assert set(spread.lines["line_id"]) == {1, 2, 3, 4, 5, 10, 11, 12, 13}


def test_awarded_basis(awarded: MetricsResult) -> None:
    s = awarded.summary.filter(pl.col("scope") == "1")
    # 2023Q1 L10; 2023Q4 L1 91000 + L2 6000 (awarded Mar and Feb 2024); 2024Q1 L3 + L4 + L5 (awarded 20 Jun)
    # 2024Q2 only holds excluded L8, which still extends the grid
    assert s["period"].to_list() == ["2023Q1", "2023Q2", "2023Q3", "2023Q4", "2024Q1", "2024Q2"]
    assert s["total_pence"].to_list() == [40000, 0, 0, 97000, 60000, 0]
    q = row(s, period="2024Q1")
    # 30000 rest_of_uk + 10000 local + 20000 unknown
    assert q["local_share"] == pytest.approx(10000 / 60000)
    assert q["local_share_known"] == pytest.approx(10000 / (60000 - 20000))  # 0.25
    assert q["tier_unknown_share"] == pytest.approx(20000 / 60000)
    assert (q["sme_pence"], q["sme_unknown_pence"]) == (10000, 20000)
    assert q["sme_share_known"] == pytest.approx(0.25)
    # SME suppliers: 101 yes, 103 no, 104 unknown -> 1 of 2 known
    assert (q["sme_suppliers"], q["sme_unknown_suppliers"]) == (1, 1)
    assert q["sme_supplier_share_known"] == pytest.approx(0.5)
    assert q["local_share_change_pp_prev"] == pytest.approx((10000 / 60000 - 91000 / 97000) * 100)
    assert (q["excluded_non_gbp_lines"], q["excluded_withdrawn_lines"]) == (1, 1)
    assert row(s, period="2024Q2")["excluded_no_value_lines"] == 1
    # L11 has no award date, so it falls on its start date (1 Apr 2024) and is flagged
    a2 = row(awarded.summary, scope="2", period="2024Q1")
    assert (a2["total_pence"], a2["award_fallback_lines"], a2["award_fallback_pence"]) == (29100, 1, 9100)
    assert row(awarded.lines, line_id=11)["award_fallback"] is True


def test_both_bases_cover_the_same_money(spread: MetricsResult, awarded: MetricsResult) -> None:
    totals = [r.summary.filter(pl.col("scope") == "all")["total_pence"].sum() for r in (spread, awarded)]
    assert totals == [197000 + 9100 + 20000 + 5000] * 2


def test_financial_years_are_sums_of_quarters() -> None:
    result = compute_metrics(fixture_frame(), basis="spread", scopes=SCOPES, periods="year")
    s = result.summary.filter(pl.col("scope") == "1")
    assert s["period"].to_list() == ["2023/24", "2024/25"]
    # 2023/24 = 2023Q1..Q4 = 40000 + 50846; 2024/25 = 86154 + 20000
    assert s["total_pence"].to_list() == [90846, 106154]
    assert s["lines"].to_list() == [3, 5]  # L10, L1, L2 | L1, L2, L3, L4, L5
    later = row(s, period="2024/25")
    assert (later["prev_period"], later["total_change_pence_prev"]) == ("2023/24", 106154 - 90846)
    assert later["yoy_period"] == "2023/24"


def test_default_scopes_are_each_anchor_and_all() -> None:
    result = compute_metrics(fixture_frame(), basis="spread")
    assert set(result.summary["scope"]) == {"1", "2", "3", "all"}
    assert result.lines_for_scope("2")["line_id"].to_list() == [11, 12]


@pytest.mark.parametrize(
    ("value", "start", "end", "expected"),
    [
        # 1p over 30 Jun + 1 Jul 2024: 0.5p each, tie -> the earlier quarter
        (1, D(2024, 6, 30), D(2024, 7, 1), {"2024Q1": 1, "2024Q2": 0}),
        # 100p over 31 Mar + 1-2 Apr 2024: 33.33 / 66.67 -> floors 33 / 66, remainders 1/3 and 2/3 -> 33 / 67
        (100, D(2024, 3, 31), D(2024, 4, 2), {"2023Q4": 33, "2024Q1": 67}),
        # 10p over 3 whole quarters of 91 + 92 + 92 days (Apr-Dec 2024):
        # 910/275 = 3 r85, 920/275 = 3 r95, 920/275 = 3 r95 -> 1p left, tie 95/95 -> earlier -> 3, 4, 3
        (10, D(2024, 4, 1), D(2024, 12, 31), {"2024Q1": 3, "2024Q2": 4, "2024Q3": 3}),
        # 7p over 2024 (366 days: 91 + 91 + 92 + 92): 637/366 = 1 r271 twice, 644/366 = 1 r278 twice -> 3p
        # left: both 278s, then the earlier 271 (the first quarter, tied with a whole quarter of 91 days)
        (7, D(2024, 1, 1), D(2024, 12, 31), {"2023Q4": 2, "2024Q1": 1, "2024Q2": 2, "2024Q3": 2}),
        # 183p over 1 Jan 2023 - 1 Jan 2024 (366 days: 90 + 91 + 92 + 92 + 1): 183 is half of 366, so the 90-
        # and 92-day quarters split exactly (remainder 0) and the 91-day quarter and the last day both have
        # remainder 183; the 1p left goes to the earlier of those two
        (
            183,
            D(2023, 1, 1),
            D(2024, 1, 1),
            {"2022Q4": 45, "2023Q1": 46, "2023Q2": 46, "2023Q3": 46, "2023Q4": 0},
        ),
    ],
)
def test_largest_remainder_rule(value: int, start: date, end: date, expected: dict[str, int]) -> None:
    rows = [_line(1, 1, 1, 1, "S", value, "GBP", start, start, end, None, "local", "sme", True, False, False)]
    result = compute_metrics(fixture_frame(rows), basis="spread")
    assert dict(result.lines.select("quarter", "allocated_pence").iter_rows()) == expected


def test_lines_are_built_on_first_use_and_kept() -> None:
    result = compute_metrics(fixture_frame(), basis="spread")
    assert "lines" not in vars(result)  # the metrics themselves never need the per-quarter rows
    assert result.lines is result.lines
    assert result.lines_for_scope("1")["line_id"].unique().sort().to_list() == [1, 2, 3, 4, 5, 10]


def test_rejects_bad_input() -> None:
    frame = fixture_frame()
    with pytest.raises(ValueError, match="value_pence"):
        compute_metrics(frame.with_columns(pl.col("value_pence").cast(pl.Float64)), basis="spread")
    with pytest.raises(ValueError, match="unknown tier"):
        compute_metrics(frame.with_columns(tier=pl.lit("nearby")), basis="spread")
    with pytest.raises(ValueError, match="line_id must be unique"):
        compute_metrics(pl.concat([frame, frame]), basis="spread")
    with pytest.raises(ValueError, match="basis"):
        compute_metrics(frame, basis="invoiced")  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        compute_metrics(frame, basis="spread").lines_for_scope("nowhere")


def test_no_included_lines_gives_empty_frames() -> None:
    only_excluded = [r for r in FIXTURE_ROWS if r[0] == 9]
    result = compute_metrics(fixture_frame(only_excluded), basis="spread")
    assert result.summary.height == 0
    assert result.lines.height == 0
    assert result.excluded["reason"].to_list() == ["no_date", "no_date"]  # scopes "1" and "all"


def test_excluded_line_without_any_date_keeps_its_reason() -> None:
    rows = [
        _line(1, 1, 1, 1, "S", 100, "GBP", D(2024, 5, 1), None, None, None, "local", "sme", True, False, False),
        _line(2, 2, 1, 1, "S", 100, "GBP", None, None, None, None, "local", "sme", True, False, False, "withdrawn"),
    ]
    result = compute_metrics(fixture_frame(rows), basis="awarded", scopes={"1": [1]})
    assert result.excluded.select("line_id", "reason", "period").rows() == [(2, "withdrawn", None)]
    assert row(result.summary, period="2024Q1")["excluded_withdrawn_lines"] == 0
