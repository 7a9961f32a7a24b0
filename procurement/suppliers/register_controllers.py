"""HTTP for supplier-register matches: candidates waiting for a reviewer, and a reviewer's confirm or reject."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.auth import Principal, requires_reviewer
from procurement.money import format_pence
from procurement.paging import DEFAULT_LIMIT, Limit, Offset
from procurement.schemas import Page
from procurement.suppliers.classification import classify, effective_ids
from procurement.suppliers.registers import CLI_NAME, current_match, decide, decisions_for, review_candidates
from procurement.suppliers.schemas import (
    RegisterCandidateOut,
    RegisterDecisionOut,
    RegisterMatchIn,
    RegisterMatchOut,
    RegisterReviewOut,
)


def _candidates(rows: list[dict[str, Any]]) -> list[RegisterCandidateOut]:
    return [
        RegisterCandidateOut(
            register=CLI_NAME.get(c["register"], c["register"]),
            number=c["number"],
            name=c["name"],
            postcode=c.get("postcode"),
            current=bool(c.get("current")),
            score=float(c["score"]),
            via=c["via"],
        )
        for c in rows
    ]


def _decision(d: m.RegisterMatchDecision) -> RegisterDecisionOut:
    return RegisterDecisionOut(
        id=d.id,
        decision=d.decision,
        register=CLI_NAME.get(d.register, d.register),
        number=d.number,
        reason=d.reason,
        decided_by=d.decided_by,
        decided_at=d.decided_at,
        superseded_at=d.superseded_at,
    )


class RegisterMatchController(Controller):
    path = "/suppliers"
    tags = ["supplier registers"]

    @get(
        "/register-candidates",
        summary="Suppliers whose register candidates wait for a reviewer, largest value at stake first",
        guards=[requires_reviewer],
    )
    async def candidates(
        self,
        db_session: AsyncSession,
        anchor_id: int | None = Parameter(default=None, ge=1, description="Rank by this anchor's contract value."),
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> Page[RegisterReviewOut]:
        """Suppliers whose register candidates wait for a reviewer, largest value at stake first."""
        rows, total = await review_candidates(db_session, anchor_id, limit, offset)
        items = [
            RegisterReviewOut(
                supplier_id=match.supplier_id,
                supplier_name=name,
                value_at_stake=format_pence(pence) or "0.00",
                value_at_stake_pence=pence,
                method=match.method,
                reason=match.reason,
                candidates=_candidates(match.candidates),
            )
            for match, name, pence in rows
        ]
        return Page(items=items, total=total, limit=limit, offset=offset)

    @post(
        "/{supplier_id:int}/register-match",
        summary="Confirm a register candidate for a supplier, or reject one (reason required, audited)",
        guards=[requires_reviewer],
        status_code=HTTP_200_OK,
    )
    async def register_match(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, supplier_id: int, data: RegisterMatchIn
    ) -> RegisterMatchOut:
        """Confirm a register candidate for a supplier, or reject one (reason required, audited)."""
        decision = "confirmed" if data.decision == "confirm" else "rejected"
        await decide(
            db_session,
            supplier_id,
            request.user,
            decision=decision,
            register=data.register,
            number=data.number,
            reason=data.reason,
        )
        await classify(db_session, await effective_ids(db_session, [supplier_id]))
        match = await current_match(db_session, supplier_id)
        return RegisterMatchOut(
            supplier_id=supplier_id,
            status=match.status if match else "none",
            method=match.method if match else None,
            score=match.score if match else None,
            register=CLI_NAME.get(match.register or "", match.register) if match else None,
            number=match.number if match else None,
            version=match.version if match else None,
            reason=match.reason if match else "no register is loaded",
            candidates=_candidates(match.candidates) if match else [],
            decisions=[_decision(d) for d in await decisions_for(db_session, supplier_id)],
        )
