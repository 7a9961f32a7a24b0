"""API shapes of metrics, social-value measures, commitments, returns and LM3."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

import msgspec

from procurement.money import Money, MoneyOrNone, amount_schema, exact_units, to_pence
from procurement.schemas import QUARTER_PATTERN, YEAR_PATTERN, Id, Reason
from socialvalue.periods import parse_financial_year, parse_quarter

MeasureCode = Annotated[str, msgspec.Meta(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9-]*$")]


Unit = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


Quarter = Annotated[str, msgspec.Meta(pattern=QUARTER_PATTERN, description="UK financial-year quarter, 2025Q1")]


Note = Annotated[str, msgspec.Meta(max_length=10_000)]


Url = Annotated[str, msgspec.Meta(max_length=1000, pattern=r"^https?://\S+$")]


SourceText = Annotated[str, msgspec.Meta(min_length=3, max_length=1000)]


MAX_QUANTITY = Decimal("100000000000000")  # Numeric(18, 4)


Quantity = Annotated[Decimal, msgspec.Meta(extra_json_schema=amount_schema(4, int(MAX_QUANTITY) * 10**4, "12.5"))]


def check_quantity(value: Decimal, field: str = "quantity") -> Decimal:
    exact_units(value, places=4, below=int(MAX_QUANTITY) * 10**4, field=field, what="number")
    return value


def check_quarter(label: str) -> str:
    parse_quarter(label)
    return label


class LocalMeasureCreate(msgspec.Struct, forbid_unknown_fields=True):
    organisation_id: Id
    code: MeasureCode
    name: Annotated[str, msgspec.Meta(min_length=3, max_length=500)]
    kind: Literal["cash", "output"] = "output"
    unit: Unit | None = None
    theme: Annotated[str, msgspec.Meta(max_length=300)] | None = None

    def __post_init__(self) -> None:
        if self.kind == "output" and not self.unit:
            msg = "an output measure needs a unit (e.g. FTE, hours, starts)"
            raise ValueError(msg)


class ProxyUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """A monetised proxy in pounds per unit with its source, year and price base; all null clears it."""

    value: MoneyOrNone
    source: SourceText | None = None
    year: Annotated[int, msgspec.Meta(ge=1990, le=2100)] | None = None
    price_base: Annotated[str, msgspec.Meta(min_length=2, max_length=64)] | None = None

    def __post_init__(self) -> None:
        if self.value is None:
            if any(x is not None for x in (self.source, self.year, self.price_base)):
                msg = "to clear the proxy send value null with no source, year or price base"
                raise ValueError(msg)
            return
        to_pence(self.value, field="value")
        if self.source is None or self.year is None or self.price_base is None:
            msg = "a proxy value needs its source, year and price base"
            raise ValueError(msg)


class ProxyOut(msgspec.Struct):
    value_pence: int
    value: str
    source: str | None
    year: int | None
    price_base: str | None


class Measure(msgspec.Struct):
    id: int
    framework: str
    code: str
    theme: str | None
    outcome: str | None
    name: str
    unit: str
    kind: str
    source: str
    verification_status: str | None
    owner_organisation_id: int | None
    proxy: ProxyOut | None
    active: bool


class MeasureRef(msgspec.Struct):
    id: int
    framework: str
    code: str
    name: str
    kind: str


class TargetIn(msgspec.Struct, forbid_unknown_fields=True):
    period: Quarter
    quantity: Quantity

    def __post_init__(self) -> None:
        check_quarter(self.period)
        check_quantity(self.quantity)


def _check_targets(targets: list[TargetIn]) -> None:
    periods = [t.period for t in targets]
    if len(set(periods)) != len(periods):
        msg = "a period is listed twice in targets"
        raise ValueError(msg)


class CommitmentCreate(msgspec.Struct, forbid_unknown_fields=True):
    measure_id: Id
    targets: Annotated[list[TargetIn], msgspec.Meta(min_length=1, max_length=80)]
    supplier_id: Id | None = None
    unit: Unit | None = None
    note: Note | None = None

    def __post_init__(self) -> None:
        _check_targets(self.targets)


class CommitmentUpdate(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    targets: Annotated[list[TargetIn], msgspec.Meta(min_length=1, max_length=80)] | msgspec.UnsetType = msgspec.UNSET
    unit: Unit | msgspec.UnsetType = msgspec.UNSET
    note: Note | msgspec.UnsetType | None = msgspec.UNSET

    def __post_init__(self) -> None:
        if isinstance(self.targets, list):
            _check_targets(self.targets)


class ReturnCreate(msgspec.Struct, forbid_unknown_fields=True):
    period: Quarter
    quantity: Quantity
    evidence_note: Note | None = None
    evidence_url: Url | None = None

    def __post_init__(self) -> None:
        check_quarter(self.period)
        check_quantity(self.quantity)
        if not (self.evidence_note and self.evidence_note.strip()) and not self.evidence_url:
            msg = "a return needs an evidence note or a document link"
            raise ValueError(msg)


class ReturnReject(msgspec.Struct, forbid_unknown_fields=True):
    reason: Reason


class Target(msgspec.Struct):
    period: str
    quantity: str


class DeliveryReturn(msgspec.Struct):
    id: int
    commitment_id: int
    period: str
    quantity: str
    evidence_note: str | None
    evidence_url: str | None
    status: str
    entered_by: str
    entered_at: dt.datetime
    reviewed_by: str | None
    reviewed_at: dt.datetime | None
    review_reason: str | None


class Commitment(msgspec.Struct):
    id: int
    contract_id: int
    buyer_id: int
    supplier_id: int | None
    measure: MeasureRef
    unit: str
    note: str | None
    created_by: str
    targets: list[Target]
    returns: list[DeliveryReturn]
    created_at: dt.datetime
    updated_at: dt.datetime


class CommitmentFigure(msgspec.Struct):
    commitment_id: int
    contract_id: int
    contract_title: str
    anchor_id: int
    anchor_name: str
    supplier_id: int | None
    supplier_name: str | None
    measure: MeasureRef
    unit: str
    period: str
    committed: str
    delivered: str
    verified: str
    pending: str
    rejected: str
    verified_cash_pence: int | None
    verified_cash: str | None
    proxy_per_unit_pence: int | None
    verified_proxy_pence: int | None
    verified_proxy: str | None
    proxy_source: str | None
    proxy_year: int | None
    proxy_price_base: str | None


class CommitmentTotal(msgspec.Struct):
    """Sums over commitments with the same measure, unit and period (different units are never added)."""

    measure: MeasureRef
    unit: str
    period: str
    commitments: int
    committed: str
    delivered: str
    verified: str


class ScopeRef(msgspec.Struct):
    key: str
    kind: str
    name: str
    anchor_ids: list[int]


class CommitmentFigures(msgspec.Struct):
    scope: ScopeRef
    period: str | None
    figures: list[CommitmentFigure]
    totals: list[CommitmentTotal]
    verified_cash_pence: int
    verified_cash: str
    verified_proxy_pence: int
    verified_proxy: str
    note: str


class Lm3ResponseIn(msgspec.Struct, forbid_unknown_fields=True):
    """One supplier's survey answers, in pounds: what it received (round 1), what it spent locally on
    suppliers and on wages of staff living in the area (round 2), and how much of that was re-spent locally
    (round 3)."""

    anchor_id: Id
    supplier_id: Id
    financial_year: Annotated[str, msgspec.Meta(pattern=YEAR_PATTERN)]
    round1: Money
    local_suppliers: Money
    local_wages: Money
    local_respend: Money

    def __post_init__(self) -> None:
        parse_financial_year(self.financial_year)
        for name in ("round1", "local_suppliers", "local_wages", "local_respend"):
            to_pence(getattr(self, name), field=name)


class Lm3Response(msgspec.Struct):
    id: int
    anchor_id: int
    supplier_id: int
    supplier_name: str
    financial_year: str
    round1_pence: int
    round1: str
    local_suppliers_pence: int
    local_wages_pence: int
    round2_pence: int
    round2: str
    local_respend_pence: int
    local_respend: str
    entered_by: str
    entered_at: dt.datetime


class Lm3Result(msgspec.Struct):
    anchor_id: int
    anchor_name: str
    financial_year: str
    respondents: int
    round1_pence: int
    round1: str
    round2_pence: int
    round2: str
    round3_pence: int
    round3: str
    multiplier: str
    label: str
    method: str


class Share(msgspec.Struct):
    """share is null with status "not_known" when less of the value than the coverage threshold could be
    judged (coverage is that judged part, always given when anything was counted); never a misleading 0."""

    share: str | None
    share_known: str | None
    coverage: str | None
    status: Literal["known", "not_known"]


class Headline(msgspec.Struct):
    total_pence: int
    total: str
    lines: int
    contracts: int
    suppliers: int
    supplier_names: list[str]  # when there are five or fewer, so a figure resting on few is seen to
    local_pence: int
    local: str
    local_share: Share
    local_suppliers: int
    new_local_suppliers: int
    regional_pence: int
    regional: str
    regional_share: Share
    sme_pence: int
    sme: str
    sme_share: Share
    vcse_pence: int
    vcse: str
    vcse_share: Share
    social_enterprise_pence: int
    social_enterprise: str
    social_enterprise_share: Share


class TierRow(msgspec.Struct):
    tier: str
    value_pence: int
    value: str
    share: Share
    suppliers: int
    supplier_share: str | None


class CategoryRow(msgspec.Struct):
    category: str
    value_pence: int
    value: str
    share: Share
    suppliers: int
    supplier_share: str | None


class TopSupplier(msgspec.Struct):
    rank: int
    supplier_id: int
    supplier_name: str | None
    tier: str
    category: str
    value_pence: int
    value: str
    share: str | None


class CpvRow(msgspec.Struct):
    cpv_division: str | None
    lines: int
    value_pence: int
    value: str
    share: str | None
    local_pence: int
    local: str
    local_share: str | None


class Coverage(msgspec.Struct):
    tier_known_share: str | None
    category_known_share: str | None
    sme_known_share: str | None
    vcse_known_share: str | None
    social_enterprise_known_share: str | None
    excluded_withdrawn_lines: int
    excluded_non_gbp_lines: int
    excluded_no_value_lines: int
    spread_fallback_lines: int
    spread_fallback_pence: int
    award_fallback_lines: int
    award_fallback_pence: int


class Change(msgspec.Struct):
    compared_with: str | None
    total_change_pence: int | None
    total_change: str | None
    local_change_pence: int | None
    local_change: str | None
    local_share_change_pp: str | None


class PeriodMetrics(msgspec.Struct):
    period: str
    headline: Headline
    by_tier: list[TierRow]
    by_category: list[CategoryRow]
    top_suppliers: list[TopSupplier]
    by_cpv_division: list[CpvRow]
    coverage: Coverage
    previous_period: Change
    year_on_year: Change


class PaidPeriod(msgspec.Struct):
    """What the paid figures of one period rest on: payment lines, transactions, redacted value, and what the
    influenceable view left out (by rule, in pence)."""

    period: str
    lines: int
    transactions: int
    redacted_lines: int
    redacted_pence: int
    redacted: str
    influenceable_only: bool
    left_out_lines: int
    left_out_pence: int
    left_out: str
    left_out_by_rule: dict[str, int]
    months: list[str]


class BasisMetrics(msgspec.Struct):
    basis: str
    label: str
    periods: list[PeriodMetrics]
    # Only on the paid basis.
    paid: list[PaidPeriod] | None = None
    influenceable_only: bool = False


class Metrics(msgspec.Struct):
    scope: ScopeRef
    period_kind: str
    period: str | None
    bases: list[BasisMetrics]
    notes: list[str]
