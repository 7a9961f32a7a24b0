"""The review queue: what needs a person's judgement for the chosen scope and period, ranked by the value at stake,
each row with its evidence.

* suppliers whose location is not known (set a delivery postcode) and whose status is not known (attest one);
  either can also be merged into a likely duplicate (another supplier with the same normalised name);
* register candidates waiting for a reviewer (confirm or reject, with the name similarity, postcode and number);
* payees of the anchor's payment files waiting for a person (confirm a supplier, make a new one, or reject).

Supplier actions go through the suppliers' corrections service, so one beyond the caller's organisations becomes a
pending change request there. The rows are built from the dashboard's own lines, so the page computes them once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.auth import Principal
from procurement.bulk import among
from procurement.metrics.service import rows_behind
from procurement.spend.service import review_queue as payee_queue
from procurement.suppliers.registers import CLI_NAME, review_candidates
from procurement.workspace.service import Dashboard

MATCH_LIMIT = 50
# What a reviewer may attest, as the queue offers it: (attestation kind, words). "None" answers are kinds too.
ATTEST_CHOICES = (
    ("sme", "SME (small or medium-sized enterprise)"),
    ("large", "None: a large enterprise, not an SME"),
    ("vcse", "VCSE (voluntary, community or social enterprise)"),
    ("not_vcse", "None: not a VCSE"),
    ("social_enterprise_mark", "Social enterprise (Social Enterprise Mark)"),
    ("buy_social", "Social enterprise (Buy Social directory)"),
    ("charity_register", "Charity (on a charity register)"),
    ("cic_register", "Community interest company (CIC register)"),
    ("cio_register", "Charitable incorporated organisation"),
    ("mutuals_register", "Registered society (FCA Mutuals Register)"),
)


@dataclass(frozen=True)
class QueueRow:
    supplier_id: int
    name: str
    value_pence: int
    lines: int
    evidence: str
    pending: list[int]  # ids of change requests already waiting for this supplier
    duplicates: list[tuple[int, str]] = field(default_factory=list)  # (id, name) sharing its normalised name


@dataclass(frozen=True)
class Candidate:
    register: str
    number: str
    name: str
    postcode: str | None
    score: float
    via: str


@dataclass(frozen=True)
class MatchRow:
    supplier_id: int
    name: str
    value_pence: int
    reason: str
    candidates: list[Candidate]


@dataclass(frozen=True)
class PayeeRow:
    id: int
    anchor_id: int
    payee_name: str
    lines: int
    paid_pence: int
    candidates: list[tuple[int, str, float]]  # (supplier id, name, score)


@dataclass(frozen=True)
class Queue:
    locations: list[QueueRow]
    statuses: list[QueueRow]
    matches: list[MatchRow] | None  # None: this caller does not decide register matches
    payees: list[PayeeRow] | None  # None: no payee of an anchor this caller keeps waits


def may_decide_matches(viewer: Principal) -> bool:
    return viewer.role in (m.Role.REVIEWER, m.Role.CROSS_REVIEWER, m.Role.ADMIN)


async def build_queue(session: AsyncSession, board: Dashboard, viewer: Principal) -> Queue:
    rows = await _counted_rows(session, board)
    locations = await _supplier_rows(session, rows.filter(pl.col("tier") == "unknown"), viewer)
    statuses = await _supplier_rows(session, rows.filter(pl.col("category") == "unknown"), viewer)
    matches = await _matches(session, board) if may_decide_matches(viewer) else None
    payees = await _payees(session, board, viewer)
    return Queue(locations, statuses, matches, payees)


async def _counted_rows(session: AsyncSession, board: Dashboard) -> pl.DataFrame:
    period = board.selection.period
    rows = await rows_behind(session, board.details, board.result, board.scope.key, period)
    # Payment stand-ins (redacted, or payees not yet matched) have ids of 0 or below: they are no supplier.
    return rows.filter(pl.col("excluded_reason").is_null(), pl.col("supplier_id") > 0)


async def _supplier_rows(session: AsyncSession, found: pl.DataFrame, viewer: Principal) -> list[QueueRow]:
    if found.is_empty():
        return []
    grouped = (
        found.group_by("supplier_id")
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
            among(session.get_bind().dialect.name, m.SupplierChangeRequest.supplier_id, ids),
            m.SupplierChangeRequest.status == m.ChangeRequestStatus.PENDING.value,
        )
    )
    for request in waiting:
        # Another organisation's request is its own business until this viewer is one who could decide it.
        if request.requested_by_organisation_id == viewer.organisation_id or viewer.may_act_for_all(
            request.affected_organisation_ids
        ):
            pending.setdefault(request.supplier_id, []).append(request.id)
    duplicates = await _duplicates(session, ids)
    return [
        QueueRow(
            supplier_id=r["supplier_id"],
            name=r["supplier_name"] or "name not known",
            value_pence=int(r["value_pence"] or 0),
            lines=r["lines"],
            evidence=(r["evidence_summary"] or "").strip(" |") or "no evidence recorded",
            pending=pending.get(r["supplier_id"], []),
            duplicates=duplicates.get(r["supplier_id"], []),
        )
        for r in grouped.to_dicts()
    ]


async def _duplicates(session: AsyncSession, ids: list[int]) -> dict[int, list[tuple[int, str]]]:
    """Other unmerged suppliers with the same normalised name (one indexed query for the whole queue)."""
    s = m.Supplier
    dialect = session.get_bind().dialect.name
    named = select(s.id, s.name_key).where(among(dialect, s.id, ids), s.name_key != "")
    keys = dict((await session.execute(named)).tuples().all())
    if not keys:
        return {}
    same = (
        await session.execute(
            select(s.id, s.name, s.name_key)
            .where(among(dialect, s.name_key, sorted(set(keys.values()))), s.merged_into_id.is_(None))
            .order_by(s.id)
        )
    ).all()
    out: dict[int, list[tuple[int, str]]] = {}
    for supplier_id, key in keys.items():
        out[supplier_id] = [(i, n) for i, n, k in same if k == key and i != supplier_id]
    return out


async def _matches(session: AsyncSession, board: Dashboard) -> list[MatchRow]:
    anchor_id = board.scope.organisation_id
    rows, _ = await review_candidates(session, anchor_id, MATCH_LIMIT, 0)
    wanted = set(board.scope.anchor_ids)
    if anchor_id is None and board.scope.kind == "group":
        # A group ranks by all contract value; keep the suppliers its members buy from.
        used = set(
            (
                await session.scalars(
                    select(m.ContractSupplier.supplier_id)
                    .join(m.Contract, m.Contract.id == m.ContractSupplier.contract_id)
                    .where(m.Contract.buyer_id.in_(wanted))
                )
            ).all()
        )
        rows = [r for r in rows if r[0].supplier_id in used]
    return [
        MatchRow(
            supplier_id=match.supplier_id,
            name=name,
            value_pence=pence,
            reason=match.reason,
            candidates=[
                Candidate(
                    register=CLI_NAME.get(c["register"], c["register"]),
                    number=c["number"],
                    name=c["name"],
                    postcode=c.get("postcode"),
                    score=float(c["score"]),
                    via=c["via"],
                )
                for c in match.candidates
            ],
        )
        for match, name, pence in rows
    ]


async def _payees(session: AsyncSession, board: Dashboard, viewer: Principal) -> list[PayeeRow] | None:
    anchors = [a for a in board.scope.anchor_ids if viewer.can_write_for(a)]
    if not anchors:
        return None
    found: list[tuple[m.PayeeMatch, int, int]] = []
    for anchor in anchors if len(anchors) <= 1 else [None]:
        found += await payee_queue(session, anchor)
    keep = set(anchors)
    rows = [
        PayeeRow(
            id=r.id,
            anchor_id=r.anchor_id,
            payee_name=r.payee_name,
            lines=lines,
            paid_pence=paid,
            candidates=[(int(c["supplier_id"]), str(c["name"]), float(c["score"])) for c in r.candidates],
        )
        for r, lines, paid in found
        if r.anchor_id in keep
    ]
    return rows or None
