"""The database side of the metrics: scopes (an anchor, a group, all anchors), the lines frame the pure engine
(socialvalue.metrics) takes, and committed vs delivered vs verified figures for social-value commitments.

Lines are contract-supplier shares of contracts bought by the scope's anchors. Each supplier is the effective one
after merges and is judged against the buying anchor's own local area (procurement.classification). Pending
contracts are not awarded spend and are left out; withdrawn ones go in so the engine can count them as excluded.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

import polars as pl
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.errors import DomainError, NotFound
from socialvalue.metrics import INPUT_SCHEMA, Basis, MetricsResult, PeriodKind, compute_metrics
from socialvalue.periods import financial_year_bounds, quarter_of, quarters_between

ALL_KEY = "all"


@dataclass(frozen=True)
class Scope:
    key: str  # "org:12" | "group:birmingham-and-solihull" | "all"
    kind: str  # "anchor" | "group" | "all"
    name: str
    anchor_ids: tuple[int, ...]
    organisation_id: int | None
    group_id: int | None


async def resolve_scope(session: AsyncSession, *, anchor_id: int | None = None, group: str | None = None) -> Scope:
    if anchor_id is not None and group is not None:
        raise DomainError("Give anchor_id or group, not both.")
    if anchor_id is not None:
        org = await session.get(m.Organisation, anchor_id)
        if org is None:
            raise NotFound(f"No organisation with id {anchor_id}.")
        return Scope(f"org:{org.id}", "anchor", org.name, (org.id,), org.id, None)
    if group is not None:
        found = (await session.scalars(select(m.AnchorGroup).where(m.AnchorGroup.slug == group))).first()
        if found is None:
            raise NotFound(f"No anchor group {group!r}.")
        ids = tuple(sorted(x.organisation_id for x in found.members))
        if not ids:
            raise DomainError(f"Anchor group {group!r} has no members.")
        return Scope(f"group:{found.slug}", "group", found.name, ids, None, found.id)
    ids = tuple((await session.scalars(select(m.Organisation.id).where(m.Organisation.is_anchor.is_(True)))).all())
    return Scope(ALL_KEY, "all", "All anchors", tuple(sorted(ids)), None, None)


EXTRA_SCHEMA: dict[str, pl.DataType] = {
    "contract_title": pl.String(),
    "buyer_name": pl.String(),
    "contracted_supplier_id": pl.Int64(),
    "share_basis": pl.String(),
    "tier_method": pl.String(),
    "tier_confidence": pl.Float64(),
    "tier_reason": pl.String(),
}


async def _line_rows(session: AsyncSession, anchor_ids: Sequence[int]) -> pl.DataFrame:
    c, cs = m.Contract, m.ContractSupplier
    first_cpv = (
        select(m.ContractCpv.code)
        .where(m.ContractCpv.contract_id == c.id)
        .order_by(m.ContractCpv.position, m.ContractCpv.id)
        .limit(1)
        .correlate(c)
        .scalar_subquery()
    )
    query = (
        select(
            cs.id,
            c.id,
            c.buyer_id,
            cs.supplier_id,
            cs.share_pence,
            cs.share_basis,
            c.currency,
            c.award_date,
            c.start_date,
            c.end_date,
            first_cpv,
            c.status,
            c.title,
            m.Organisation.name,
        )
        .join(c, c.id == cs.contract_id)
        .join(m.Organisation, m.Organisation.id == c.buyer_id)
        .where(c.buyer_id.in_(list(anchor_ids)), c.status != m.ContractStatus.PENDING.value)
        .order_by(cs.id)
    )
    rows = (await session.execute(query)).all()
    schema = {
        "line_id": pl.Int64,
        "contract_id": pl.Int64,
        "anchor_id": pl.Int64,
        "contracted_supplier_id": pl.Int64,
        "value_pence": pl.Int64,
        "share_basis": pl.String,
        "currency": pl.String,
        "award_date": pl.Date,
        "start_date": pl.Date,
        "end_date": pl.Date,
        "cpv_code": pl.String,
        "status": pl.String,
        "contract_title": pl.String,
        "buyer_name": pl.String,
    }
    return pl.DataFrame([tuple(r) for r in rows], schema=schema, orient="row")


async def lines_with_details(session: AsyncSession, anchor_ids: Sequence[int]) -> pl.DataFrame:
    """``lines_frame`` plus what a reviewer needs beside each line (contract title, buyer, tier evidence)."""
    from procurement.classification import supplier_tiers

    raw = await _line_rows(session, anchor_ids)
    if raw.height == 0:
        return pl.DataFrame(schema={**INPUT_SCHEMA, **EXTRA_SCHEMA})
    contracted = raw["contracted_supplier_id"].unique().to_list()
    tiers = await supplier_tiers(session, sorted(set(raw["anchor_id"].to_list())), supplier_ids=contracted)
    tiers = tiers.select(
        pl.col("anchor_id").cast(pl.Int64),
        pl.col("supplier_id").cast(pl.Int64).alias("contracted_supplier_id"),
        pl.col("effective_supplier_id").cast(pl.Int64),
        "tier",
        pl.col("tier_confidence").cast(pl.Float64),
        "tier_method",
        "tier_reason",
        "category",
        pl.col("sme").cast(pl.Boolean),
        pl.col("vcse").cast(pl.Boolean),
        pl.col("social_enterprise").cast(pl.Boolean),
    )
    joined = raw.join(tiers, on=["anchor_id", "contracted_supplier_id"], how="left", maintain_order="left")
    joined = joined.with_columns(
        supplier_id=pl.coalesce("effective_supplier_id", "contracted_supplier_id"),
        tier=pl.col("tier").fill_null("unknown"),
        category=pl.col("category").fill_null("unknown"),
    )
    ids = joined["supplier_id"].unique().to_list()
    names = (await session.execute(select(m.Supplier.id, m.Supplier.name).where(m.Supplier.id.in_(ids)))).all()
    name_frame = pl.DataFrame(
        [tuple(r) for r in names], schema={"supplier_id": pl.Int64, "supplier_name": pl.String}, orient="row"
    )
    joined = joined.join(name_frame, on="supplier_id", how="left", maintain_order="left")
    return joined.select([pl.col(k).cast(v) for k, v in {**INPUT_SCHEMA, **EXTRA_SCHEMA}.items()])


async def lines_frame(session: AsyncSession, anchor_ids: Sequence[int]) -> pl.DataFrame:
    """Exactly ``socialvalue.metrics.INPUT_SCHEMA``: one row per contract-supplier line bought by these anchors."""
    frame = await lines_with_details(session, anchor_ids)
    return frame.select(list(INPUT_SCHEMA))


async def scope_metrics(
    session: AsyncSession, scope: Scope, *, basis: str, periods: str = "quarter", top_n: int = 20
) -> MetricsResult:
    if basis not in ("awarded", "spread"):
        raise DomainError("basis must be awarded or spread.")
    if periods not in ("quarter", "year"):
        raise DomainError("periods must be quarter or year.")
    lines = await lines_frame(session, scope.anchor_ids) if scope.anchor_ids else pl.DataFrame(schema=INPUT_SCHEMA)
    return metrics_for_lines(lines, scope, basis=basis, periods=periods, top_n=top_n)


def metrics_for_lines(
    lines: pl.DataFrame, scope: Scope, *, basis: str, periods: str = "quarter", top_n: int = 20
) -> MetricsResult:
    basis_value: Basis = "spread" if basis == "spread" else "awarded"
    period_value: PeriodKind = "year" if periods == "year" else "quarter"
    # the engine needs at least one anchor per scope; an empty "all" scope simply has no lines
    anchors = scope.anchor_ids or (0,)
    return compute_metrics(
        lines.select(list(INPUT_SCHEMA)),
        basis=basis_value,
        scopes={scope.key: anchors},
        periods=period_value,
        top_n=top_n,
    )


# Commitments -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CommitmentFigure:
    """One commitment in one quarter: committed (target), delivered (returns not rejected), verified."""

    commitment_id: int
    contract_id: int
    contract_title: str
    anchor_id: int
    anchor_name: str
    supplier_id: int | None
    supplier_name: str | None
    measure_id: int
    measure_framework: str
    measure_code: str
    measure_name: str
    kind: str  # cash | output
    unit: str
    period: str
    committed: Decimal
    delivered: Decimal
    verified: Decimal
    pending: Decimal
    rejected: Decimal
    proxy_value_pence: int | None
    proxy_source: str | None
    proxy_year: int | None
    proxy_price_base: str | None

    @property
    def verified_cash_pence(self) -> int | None:
        return int(self.verified) if self.kind == "cash" else None

    @property
    def verified_proxy_pence(self) -> int | None:
        """Verified quantity x proxy per unit, to the penny; monetised, so never added to cash."""
        if self.kind == "cash" or self.proxy_value_pence is None:
            return None
        return int((self.verified * self.proxy_value_pence).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def periods_of(period: str | None) -> set[str] | None:
    """A quarter label stands for itself; a financial year for its four quarters."""
    if period is None:
        return None
    if "/" in period:
        start, end = financial_year_bounds(period)
        return set(quarters_between(quarter_of(start), quarter_of(end)))
    quarters_between(period, period)  # validates the label
    return {period}


async def commitment_figures(session: AsyncSession, scope: Scope, period: str | None = None) -> list[CommitmentFigure]:
    wanted = periods_of(period)
    c = m.Contract
    query = (
        select(m.Commitment, c.title, c.buyer_id, m.Organisation.name, m.Measure)
        .join(c, c.id == m.Commitment.contract_id)
        .join(m.Organisation, m.Organisation.id == c.buyer_id)
        .join(m.Measure, m.Measure.id == m.Commitment.measure_id)
        .where(c.buyer_id.in_(list(scope.anchor_ids)))
        .order_by(m.Commitment.id)
    )
    rows = (await session.execute(query)).all()
    supplier_ids = {r[0].supplier_id for r in rows if r[0].supplier_id is not None}
    names: dict[int, str] = {}
    if supplier_ids:
        found = await session.execute(select(m.Supplier.id, m.Supplier.name).where(m.Supplier.id.in_(supplier_ids)))
        names = {r.id: r.name for r in found.all()}
    out: list[CommitmentFigure] = []
    zero = Decimal(0)
    for commitment, title, buyer_id, buyer_name, measure in rows:
        committed: dict[str, Decimal] = {t.period: Decimal(t.quantity) for t in commitment.targets}
        sums: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        for r in commitment.returns:
            sums[r.period][r.status] += Decimal(r.quantity)
        for p in sorted(set(committed) | set(sums)):
            if wanted is not None and p not in wanted:
                continue
            by_status = sums.get(p, {})
            verified = by_status.get("verified", zero)
            pending = by_status.get("submitted", zero)
            out.append(
                CommitmentFigure(
                    commitment_id=commitment.id,
                    contract_id=commitment.contract_id,
                    contract_title=title,
                    anchor_id=buyer_id,
                    anchor_name=buyer_name,
                    supplier_id=commitment.supplier_id,
                    supplier_name=names.get(commitment.supplier_id) if commitment.supplier_id else None,
                    measure_id=measure.id,
                    measure_framework=measure.framework,
                    measure_code=measure.code,
                    measure_name=measure.name,
                    kind=measure.kind,
                    unit=commitment.unit,
                    period=p,
                    committed=committed.get(p, zero),
                    delivered=verified + pending,
                    verified=verified,
                    pending=pending,
                    rejected=by_status.get("rejected", zero),
                    proxy_value_pence=measure.proxy_value_pence,
                    proxy_source=measure.proxy_source,
                    proxy_year=measure.proxy_year,
                    proxy_price_base=measure.proxy_price_base,
                )
            )
    return out
