"""The review queue's page and its actions in place.

Every action is a plain form with its CSRF token: without JavaScript it posts, and the answer redirects back to the
queue at the next row with what was done (post/redirect/get). With htmx the form posts in the background and the
answer replaces its row (a "done" row, or the row's error), with the coverage figure swapped out of band, and
review.js moves the focus to the next row. The actions are the API's own services, so the role rules are the same.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import Parameter
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.auth import Principal, requires_editor, requires_reviewer, requires_token
from procurement.errors import DomainError, InvalidInput
from procurement.spend.schemas import PayeeDecision
from procurement.spend.service import decide as decide_payee
from procurement.suppliers.classification import classify, effective_ids
from procurement.suppliers.corrections import Correction, submit
from procurement.suppliers.registers import decide as decide_match
from procurement.suppliers.schemas import AttestationIn, MergeIn, RegisterMatchIn
from procurement.web.frame import NO_STORE, PAGE_EXCEPTION_HANDLERS, page_context
from procurement.workspace.parameters import BASIS, PERIOD, ScopeChoice
from procurement.workspace.review import ATTEST_CHOICES, build_queue
from procurement.workspace.service import (
    BASIS_NAMES,
    dashboard,
    dashboard_for,
    period_text,
    query_with,
    scope_choices,
    selection_for,
)

DONE = {
    "applied": "Postcode saved and the supplier classified again: the coverage above includes it.",
    "attested": "Status recorded with its evidence and the supplier classified again.",
    "merged": "Suppliers merged: the duplicate's lines now count under the supplier that stays.",
    "confirmed": "Register entry confirmed: the supplier's status now rests on it.",
    "rejected": "Register candidate rejected: it will not be offered for this supplier again.",
    "payee": "Payee decided: its payments count under that decision, now and in the anchor's next files.",
    "requested": (
        "This supplier also works for organisations you do not review, so your change is a change request waiting "
        "for a reviewer who covers them all. The figures change when it is approved."
    ),
}
_ROW_ID = re.compile(r"^[a-z]+-[0-9]{1,12}$")


def _form_text(form: Any, name: str, limit: int = 2000) -> str:
    return str(form.get(name, "")).strip()[:limit]


def _convert(data: dict[str, Any], schema: Any) -> Any:
    """The API's own request schema, so a form is held to exactly the API's limits; its message in words."""
    try:
        return msgspec.convert(data, schema)
    except msgspec.ValidationError as exc:
        text = str(exc)
        found = re.search(r"at `\$\.(\w+)`", text)
        name = found.group(1) if found else "the form"
        if "length >= " in text:
            raise InvalidInput(f"{name} is too short: {text.split(' - at', maxsplit=1)[0]}") from exc
        raise InvalidInput(f"{name}: {text.split(' - at', maxsplit=1)[0]}") from exc


def _back_query(form: Any) -> str:
    chosen = dict(parse_qsl(_form_text(form, "back", 300)))
    return query_with({k: chosen.get(k) for k in ("scope", "period", "basis")})


def _is_htmx(request: Request[Any, Any, Any]) -> bool:
    return request.headers.get("hx-request") == "true"


class ReviewController(Controller):
    """The review queue for one scope and period, and its actions in place."""

    path = "/workspace/review"
    include_in_schema = False
    guards = [requires_token]
    exception_handlers = PAGE_EXCEPTION_HANDLERS
    response_headers = NO_STORE

    @get("/", name="workspace-review")
    async def queue(
        self,
        request: Request[Principal, Any, Any],
        db_session: AsyncSession,
        scope_choice: ScopeChoice = None,
        period: str | None = PERIOD,
        basis: str | None = BASIS,
        done: str | None = Parameter(default=None, pattern="^(" + "|".join(DONE) + ")$"),
    ) -> Template:
        selection = selection_for(request.user, scope_choice, period, basis)
        board = await dashboard_for(db_session, selection, basis_given=bool(basis))
        back = query_with(
            {"scope": board.selection.scope_value, "period": board.selection.period, "basis": board.selection.basis}
        )
        return Template(
            template_name="workspace/review.html",
            context=page_context(
                request,
                "/workspace/review",
                sel=board.selection,
                board=board,
                h=board.metrics.headline,
                queue=await build_queue(db_session, board, request.user),
                period_name=period_text(board.selection.period or ""),
                choices=await scope_choices(db_session, request.user),
                bases=[(b, BASIS_NAMES[b]) for b in board.bases],
                back=back,
                done=done,
                done_text=DONE.get(done or ""),
                attest_choices=ATTEST_CHOICES,
                period_text=period_text,
            ),
        )

    @post("/suppliers/{supplier_id:int}/postcode", name="workspace-review-postcode")
    async def set_postcode(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, supplier_id: int
    ) -> Response[Any]:
        """A delivery postcode as an override with its reason; beyond the caller's reach it waits as a request."""
        form = await request.form()

        async def act() -> str:
            postcode = _form_text(form, "postcode", 16)
            payload = {"supplier_id": supplier_id, "flag": "delivery_postcode", "value": postcode}
            done = await submit(db_session, request.user, Correction("override", payload, _form_text(form, "reason")))
            return "requested" if isinstance(done, m.SupplierChangeRequest) else "applied"

        return await _act(request, db_session, form, f"location-{supplier_id}", act)

    @post("/suppliers/{supplier_id:int}/attest", name="workspace-review-attest")
    async def attest(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, supplier_id: int
    ) -> Response[Any]:
        """A status (SME, VCSE, social enterprise, or none of these) with its evidence: a reference or URL, and why."""
        form = await request.form()

        async def act() -> str:
            data = _convert(
                {"kind": _form_text(form, "kind", 64), "reference": _form_text(form, "reference", 600),
                 "reason": _form_text(form, "reason")},
                AttestationIn,
            )  # fmt: skip
            if data.kind not in dict(ATTEST_CHOICES):
                raise InvalidInput("Choose a status from the list.")
            payload = {"supplier_id": supplier_id, "kind": data.kind, "reference": data.reference}
            done = await submit(db_session, request.user, Correction("attest", payload, data.reason))
            return "requested" if isinstance(done, m.SupplierChangeRequest) else "attested"

        return await _act(request, db_session, form, f"status-{supplier_id}", act)

    @post("/suppliers/{supplier_id:int}/merge", name="workspace-review-merge")
    async def merge(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, supplier_id: int
    ) -> Response[Any]:
        """Merge a duplicate: the form says which supplier stays ("SOURCE:TARGET"); this row's is one of the two."""
        form = await request.form()
        row = _form_text(form, "row", 40)

        async def act() -> str:
            source, _, target = _form_text(form, "survivor", 40).partition(":")
            if not (source.isdigit() and target.isdigit()) or supplier_id not in (int(source), int(target)):
                raise InvalidInput("Choose which supplier stays.")
            data = _convert(
                {"source_id": int(source), "target_id": int(target), "reason": _form_text(form, "reason")}, MergeIn
            )
            payload = {"source_id": data.source_id, "target_id": data.target_id}
            done = await submit(db_session, request.user, Correction("merge", payload, data.reason))
            return "requested" if isinstance(done, m.SupplierChangeRequest) else "merged"

        return await _act(request, db_session, form, row if _ROW_ID.match(row) else f"status-{supplier_id}", act)

    @post(
        "/suppliers/{supplier_id:int}/register-match",
        name="workspace-review-register-match",
        guards=[requires_reviewer],
    )
    async def register_match(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, supplier_id: int
    ) -> Response[Any]:
        """Confirm or reject one register candidate, with a reason (reviewers in scope, cross reviewers, admins)."""
        form = await request.form()

        async def act() -> str:
            register, _, number = _form_text(form, "candidate", 80).partition(":")
            data = _convert(
                {"decision": _form_text(form, "decision", 16), "register": register, "number": number,
                 "reason": _form_text(form, "reason")},
                RegisterMatchIn,
            )  # fmt: skip
            decision = "confirmed" if data.decision == "confirm" else "rejected"
            await decide_match(
                db_session, supplier_id, request.user,
                decision=decision, register=data.register, number=data.number, reason=data.reason,
            )  # fmt: skip
            await classify(db_session, await effective_ids(db_session, [supplier_id]))
            return decision

        return await _act(request, db_session, form, f"match-{supplier_id}", act)

    @post("/payees/{match_id:int}/decision", name="workspace-review-payee", guards=[requires_editor])
    async def payee(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, match_id: int
    ) -> Response[Any]:
        """A payee of the anchor's payments: this supplier, a new supplier, or none (the anchor's editor, admins)."""
        form = await request.form()

        async def act() -> str:
            choice = _form_text(form, "decision", 40)
            decision, _, supplier = choice.partition(":")
            data = _convert(
                {"decision": decision, "reason": _form_text(form, "reason"),
                 "supplier_id": int(supplier) if supplier.isdigit() else None},
                PayeeDecision,
            )  # fmt: skip
            await decide_payee(
                db_session, match_id,
                decision=data.decision, reason=data.reason, actor=request.user, supplier_id=data.supplier_id,
            )  # fmt: skip
            return "payee"

        return await _act(request, db_session, form, f"payee-{match_id}", act)


async def _act(
    request: Request[Principal, Any, Any], db_session: AsyncSession, form: Any, row: str, act: Any
) -> Response[Any]:
    """Run the action; answer htmx with the row's replacement (and the coverage), anything else with a redirect."""
    htmx = _is_htmx(request)
    try:
        outcome = await act()
    except DomainError as exc:
        await db_session.rollback()
        if not htmx:
            raise
        # htmx leaves a 4xx answer unswapped, so the refusal comes as a 200 aimed at the row's message slot.
        return Template(
            template_name="workspace/review_error.html",
            context={"message": exc.detail},
            headers={"HX-Retarget": f"#error-{row}", "HX-Reswap": "innerHTML"},
        )
    await db_session.commit()
    back = _back_query(form)
    following = _form_text(form, "next", 40)
    if not htmx:
        anchor = following if _ROW_ID.match(following) else "queue"
        query = f"{back}&done={outcome}" if back else f"done={outcome}"
        return Redirect(f"/workspace/review?{query}#{anchor}", status_code=HTTP_303_SEE_OTHER)
    chosen = dict(parse_qsl(back))
    selection = selection_for(request.user, chosen.get("scope"), chosen.get("period"), chosen.get("basis"))
    board = await dashboard(db_session, selection)
    return Template(
        template_name="workspace/review_done.html",
        context={"row": row, "message": DONE[outcome], "h": board.metrics.headline, "outcome": outcome},
    )
