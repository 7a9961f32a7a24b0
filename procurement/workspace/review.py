"""The review queue: the suppliers whose location is not known, ranked by the value at stake for the chosen
anchor, each with its evidence and any change request already waiting. Actions go through the suppliers'
corrections service, so one beyond the reviewer's organisations becomes a pending change request there."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.auth import Principal
from procurement.workspace.service import LineFilters, Selection, select_lines


@dataclass(frozen=True)
class QueueRow:
    supplier_id: int
    name: str
    value_pence: int
    lines: int
    evidence: str
    pending: list[int]  # ids of change requests already waiting for this supplier


async def unknown_locations(session: AsyncSession, selection: Selection, viewer: Principal) -> list[QueueRow]:
    found = await select_lines(session, selection, LineFilters(tier="unknown"))
    if found.rows.is_empty():
        return []
    grouped = (
        found.rows.filter(pl.col("supplier_id").is_not_null())
        .group_by("supplier_id")
        .agg(
            pl.col("supplier_name").first(),
            pl.col("allocated_pence").sum().alias("value_pence"),
            pl.len().alias("lines"),
            pl.col("evidence_summary").drop_nulls().first(),
        )
        .sort(["value_pence", "supplier_id"], descending=[True, False])
    )
    ids = grouped["supplier_id"].to_list()
    pending: dict[int, list[int]] = {}
    waiting = await session.scalars(
        select(m.SupplierChangeRequest).where(
            m.SupplierChangeRequest.supplier_id.in_(ids),
            m.SupplierChangeRequest.status == m.ChangeRequestStatus.PENDING.value,
        )
    )
    for request in waiting:
        # Another organisation's request is its own business until this viewer is one who could decide it.
        if request.requested_by_organisation_id == viewer.organisation_id or viewer.may_act_for_all(
            request.affected_organisation_ids
        ):
            pending.setdefault(request.supplier_id, []).append(request.id)
    return [
        QueueRow(
            supplier_id=r["supplier_id"],
            name=r["supplier_name"] or "name not known",
            value_pence=int(r["value_pence"] or 0),
            lines=r["lines"],
            evidence=(r["evidence_summary"] or "").strip(" |") or "no location evidence",
            pending=pending.get(r["supplier_id"], []),
        )
        for r in grouped.to_dicts()
    ]
