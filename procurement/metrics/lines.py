"""The contract-supplier lines behind a scope (one anchor, a group or all anchors), loaded for the metrics engine."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.db import get_or_not_found
from procurement.errors import DomainError, NotFound
from procurement.memo import Memo, content_digest
from socialvalue.metrics import INPUT_SCHEMA, Basis, MetricsResult, PeriodKind, compute_metrics

ALL_KEY = "all"
_results: Memo[MetricsResult] = Memo(32)


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
        org = await get_or_not_found(session, m.Organisation, anchor_id, "organisation")
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
    from procurement.suppliers.tiers import supplier_tiers

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


def metrics_for_lines(
    lines: pl.DataFrame, scope: Scope, *, basis: str, periods: str = "quarter", top_n: int = 20
) -> MetricsResult:
    """The engine's figures for these lines, remembered by their exact content: the engine is a pure function
    whose cost is mostly fixed (about 50 ms of polars steps even for a handful of lines), and every workspace
    page asks for the same figures as the last one until the data changes."""
    basis_value: Basis = "spread" if basis == "spread" else "paid" if basis == "paid" else "awarded"
    period_value: PeriodKind = "year" if periods == "year" else "quarter"
    # the engine needs at least one anchor per scope; an empty "all" scope simply has no lines
    anchors = scope.anchor_ids or (0,)
    inputs = lines.select(list(INPUT_SCHEMA))
    key = (content_digest(inputs), scope.key, anchors, basis_value, period_value, top_n)
    return _results.get_or_compute(
        key,
        lambda: compute_metrics(
            inputs, basis=basis_value, scopes={scope.key: anchors}, periods=period_value, top_n=top_n
        ),
    )
