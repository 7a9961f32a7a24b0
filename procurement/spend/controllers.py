"""HTTP for spend files and the payee review queue (confirm, new supplier or reject; audited, remembered)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.auth import Principal, requires_editor, requires_token
from procurement.metrics.service import pounds
from procurement.paging import DEFAULT_LIMIT, Limit, Offset
from procurement.schemas import Page
from procurement.spend.schemas import Candidate, PayeeDecision, PayeeMatch, PayeeReview, SpendFileOut
from procurement.spend.service import decide, list_files, review_queue

_ANCHOR = Parameter(default=None, ge=1, description="One anchor (organisation id).")


def _file_schema(f: m.SpendFile) -> SpendFileOut:
    return SpendFileOut(
        id=f.id,
        anchor_id=f.anchor_id,
        run_id=f.run_id,
        source_name=f.source_name,
        sha256=f.sha256,
        status=f.status,
        replaced_by_id=f.replaced_by_id,
        months=list(f.months),
        layout=f.layout,
        amount_basis=f.amount_basis,
        currency=f.currency,
        line_count=f.line_count,
        transaction_count=f.transaction_count,
        total_pence=f.total_pence,
        redacted_lines=f.redacted_lines,
        redacted_pence=f.redacted_pence,
        payees_matched=f.payees_matched,
        payees_review=f.payees_review,
        payees_new=f.payees_new,
        notes=f.notes,
        imported_at=f.imported_at,
        imported_by=f.imported_by,
    )


class SpendController(Controller):
    path = "/spend"
    tags = ["spend"]

    @get("/files", summary="Imported spend files (one import run each), with their counts", guards=[requires_token])
    async def files(
        self,
        db_session: AsyncSession,
        anchor_id: int | None = _ANCHOR,
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> Page[SpendFileOut]:
        """Imported spend files (one import run each), with their counts."""
        rows = await list_files(db_session, anchor_id)
        return Page(
            items=[_file_schema(f) for f in rows[offset : offset + limit]], total=len(rows), limit=limit, offset=offset
        )

    @get(
        "/payees/review",
        summary="Payees waiting for a person to match them, largest value first",
        guards=[requires_token],
    )
    async def review(
        self,
        db_session: AsyncSession,
        anchor_id: int | None = _ANCHOR,
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> Page[PayeeReview]:
        """Payees waiting for a person to match them, largest value first."""
        rows = await review_queue(db_session, anchor_id)
        items = [
            PayeeReview(
                id=r.id,
                anchor_id=r.anchor_id,
                payee_name=r.payee_name,
                status=r.status,
                method=r.method,
                score=r.score,
                candidates=[Candidate(str(c["supplier_id"]), str(c["name"]), float(c["score"])) for c in r.candidates],
                lines=lines,
                paid_pence=paid,
                paid=pounds(paid),
            )
            for r, lines, paid in rows[offset : offset + limit]
        ]
        return Page(items=items, total=len(rows), limit=limit, offset=offset)

    @post(
        "/payees/{match_id:int}/decision",
        summary="Confirm a supplier, make a new one, or reject (the anchor's editor, or an admin); remembered",
        guards=[requires_editor],
        status_code=HTTP_200_OK,
    )
    async def decision(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, match_id: int, data: PayeeDecision
    ) -> PayeeMatch:
        """Confirm a supplier, make a new one, or reject (the anchor's editor, or an admin); remembered."""
        row = await decide(
            db_session,
            match_id,
            decision=data.decision,
            reason=data.reason,
            actor=request.user,
            supplier_id=data.supplier_id,
        )
        return PayeeMatch(
            id=row.id,
            anchor_id=row.anchor_id,
            payee_name=row.payee_name,
            status=row.status,
            supplier_id=row.supplier_id,
            method=row.method,
            decided_by=row.decided_by,
            decided_at=row.decided_at,
            reason=row.reason,
        )
