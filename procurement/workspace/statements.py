"""The statements page of the workspace: a scope's quarter as it stands (never published, published, superseded,
withdrawn, with who, when and why), a draft preview from live figures, publishing through a confirmation that
shows what the figure rests on, corrections and withdrawals with their reasons, and the differences when the live
figures have moved since publication.

Every write goes through ``procurement.statements.service`` (its rules, refusals and audit); this module only
reads forms, shows pages and redirects after a POST. It lives in the workspace package because it composes the
workspace's scope choices and page frame with the statements service, which knows nothing of pages.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from litestar import Controller, Request, Response, get, post
from litestar.params import Parameter, QueryParameter
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER, HTTP_400_BAD_REQUEST
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import clock
from procurement import models as m
from procurement.auth import Principal, requires_reviewer
from procurement.errors import DomainError, InvalidInput, NotFound
from procurement.metrics.lines import Scope, resolve_scope
from procurement.problems import domain_status
from procurement.schemas import QUARTER_PATTERN
from procurement.statements.pages import draft_context
from procurement.statements.service import Difference, preview_pdf, publish, snapshot_basis, staleness, withdraw
from procurement.statements.snapshot import build_snapshot
from procurement.web.frame import NO_STORE, PAGE_EXCEPTION_HANDLERS, page_context
from procurement.workspace.service import ScopeChoice, Selection, parse_scope_choice, period_text, scope_choices
from socialvalue.periods import quarter_of
from socialvalue.snapshot import canonical_json, format_judged, format_pence, format_share
from socialvalue.statement_pdf import EXCLUSION_LABELS

PATH = "/workspace/statements"
BASES = {"awarded": "Contract awards (with the spread basis beside it)", "paid": "Payments the anchor published"}
MIN_REASON, MAX_REASON = 3, 2000
PERIODS_SHOWN = 16
# Parts of a snapshot that describe the document, not the figures (as in the service's comparison).
_NOT_FIGURES = frozenset({"schema", "statement", "figures_sha256", "sources"})

ScopeQuery = Annotated[str | None, QueryParameter(name="scope", max_length=80, description="anchor:ID or group:SLUG.")]
_PERIOD = Parameter(default=None, pattern=QUARTER_PATTERN, description="A quarter, like 2025Q1.")
_BASIS = Parameter(default="awarded", pattern="^(awarded|paid)$")


def figures_digest(snapshot: Mapping[str, Any]) -> str:
    """A hash of the figures alone (not the statement's number, version or time), so the figures a reviewer
    confirmed can be checked against the ones about to be frozen."""
    body = {k: v for k, v in snapshot.items() if k not in _NOT_FIGURES}
    return hashlib.sha256(canonical_json(body)).hexdigest()


@dataclass(frozen=True)
class Chosen:
    """The scope, quarter and basis of the page; ``scope`` is None until an anchor or group is chosen."""

    selection: Selection
    scope: Scope | None
    period: str | None
    basis: str

    def query(self, **extra: Any) -> str:
        params = {"scope": self.selection.scope_value, "period": self.period, "basis": self.basis, **extra}
        return urlencode({k: v for k, v in params.items() if v})

    @property
    def hidden(self) -> dict[str, str]:
        return {"scope": self.selection.scope_value, "period": self.period or "", "basis": self.basis}


async def _chosen(
    session: AsyncSession, principal: Principal, scope: str | None, period: str | None, basis: str
) -> Chosen:
    anchor_id, group = parse_scope_choice(scope)
    # A reviewer of named organisations starts on the first of them; everyone else chooses.
    if anchor_id is None and group is None and principal.role is m.Role.REVIEWER and principal.scope:
        anchor_id = min(principal.scope)
    selection = Selection(anchor_id=anchor_id, group=group, period=period, basis="awarded")
    found = await resolve_scope(session, anchor_id=anchor_id, group=group) if anchor_id or group else None
    return Chosen(selection=selection, scope=found, period=period, basis=basis)


def _may_publish(principal: Principal, scope: Scope) -> bool:
    return all(principal.can_review_for(i) for i in scope.anchor_ids)


async def _versions(session: AsyncSession, scope: Scope, period: str) -> list[m.Statement]:
    rows = await session.scalars(
        select(m.Statement)
        .where(m.Statement.scope_key == scope.key, m.Statement.period == period)
        .order_by(m.Statement.version.desc())
    )
    return list(rows.all())


async def _quarters(session: AsyncSession, scope: Scope) -> list[str]:
    """Quarters that are over and have awards for the scope, or a statement; newest first.

    Award dates stand for every basis here: a quarter chosen outside this list can still be typed in the address.
    """
    dates = await session.scalars(
        select(m.Contract.award_date)
        .where(
            m.Contract.buyer_id.in_(list(scope.anchor_ids)),
            m.Contract.award_date.is_not(None),
            m.Contract.status != m.ContractStatus.WITHDRAWN.value,
        )
        .distinct()
    )
    published = await session.scalars(select(m.Statement.period).where(m.Statement.scope_key == scope.key).distinct())
    quarters = {quarter_of(d) for d in dates.all() if d is not None} | set(published.all())
    this_quarter = quarter_of(clock.uk_today())
    return sorted((q for q in quarters if q < this_quarter), reverse=True)[:PERIODS_SHOWN]


def _figure_name(path: str) -> str:
    return path.replace("_", " ").replace(".", ": ")


def _shown(value: Any) -> str:
    if value is None:
        return "not known"
    if isinstance(value, list):
        return "; ".join(str(v) for v in value) or "none"
    return str(value)


@dataclass(frozen=True)
class Confirmation:
    """What the reviewer confirms: the headline figure, what it was judged on, and what was left out."""

    headline: str
    total: str
    coverage: str
    status_coverage: str
    unknown_location: str
    unknown_status: str
    excluded: list[tuple[str, str]]  # (what, how many lines)
    paid: list[tuple[str, str]]  # (what, amount) for a paid statement
    digest: str


def confirmation(snapshot: Mapping[str, Any]) -> Confirmation:
    head = snapshot["headline"]
    cover = head["coverage"]
    paid = snapshot.get("paid")
    paid_rows: list[tuple[str, str]] = []
    if paid:
        paid_rows = [
            ("Payment lines counted", f"{paid['lines']:,}"),
            ("Redacted payments (counted, never named)", format_pence(paid["redacted_value_pence"])),
            ("Payments left out by the influenceable rules", format_pence(paid["left_out_value_pence"])),
            ("Months of the quarter with no payment file", ", ".join(paid["months_missing"]) or "none"),
        ]
    return Confirmation(
        headline=format_judged(head["local_share"], cover["locality"]),
        total=format_pence(head["total_value_pence"]),
        coverage=format_share(cover["locality"]),
        status_coverage=format_share(cover["status"]),
        unknown_location=format_share(head["unknown_locality_share"]),
        unknown_status=format_share(head["unknown_status_share"]),
        excluded=[(f"{title}: {why}", f"{head['excluded'][key]:,}") for key, title, why in EXCLUSION_LABELS],
        paid=paid_rows,
        digest=figures_digest(snapshot),
    )


async def _page(
    request: Request[Principal, Any, Any],
    session: AsyncSession,
    chosen: Chosen,
    *,
    done: str | None = None,
    errors: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
    status: int = 200,
) -> Template:
    principal = request.user
    choices = [c for c in await scope_choices(session, principal) if c.value]
    versions: list[m.Statement] = []
    quarters: list[str] = []
    differences: list[Difference] = []
    checked_staleness = False
    scope = chosen.scope
    if scope is not None:
        quarters = await _quarters(session, scope)
        period = chosen.period or (quarters[0] if quarters else None)
        chosen = Chosen(chosen.selection, scope, period, chosen.basis)
        if period:
            versions = await _versions(session, scope, period)
    latest = versions[0] if versions else None
    if latest is not None and latest.status == m.StatementStatus.PUBLISHED:
        differences = list((await staleness(session, latest)).differences)
        checked_staleness = True
    periods = [(q, period_text(q)) for q in quarters]
    if chosen.period and chosen.period not in quarters:
        periods.insert(0, (chosen.period, period_text(chosen.period)))
    return Template(
        template_name="workspace/statements.html",
        context=page_context(
            request,
            PATH,
            chosen=chosen,
            choices=_with_choice(choices, chosen),
            periods=periods,
            bases=BASES,
            versions=versions,
            latest=latest,
            latest_basis=snapshot_basis(json.loads(latest.snapshot_json))[0] if latest else None,
            may_publish=chosen.scope is not None and _may_publish(principal, chosen.scope),
            differences=[(_figure_name(d.figure), _shown(d.published), _shown(d.live)) for d in differences],
            checked_staleness=checked_staleness,
            period_name=period_text(chosen.period) if chosen.period else "",
            done=done,
            errors=errors or {},
            typed=typed or {},
        ),
        status_code=status,
    )


def _with_choice(choices: list[ScopeChoice], chosen: Chosen) -> list[ScopeChoice]:
    """The select starts on a prompt until a scope is chosen (a select cannot be left empty otherwise)."""
    return choices if chosen.scope is not None else [ScopeChoice("", "Choose an anchor or group"), *choices]


def _text(form: Mapping[str, Any], name: str, limit: int = MAX_REASON + 1) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def _reason_error(reason: str, doing: str, example: str) -> str | None:
    if len(reason) < MIN_REASON:
        return f"Enter why you are {doing} this statement, for example {example}"
    if len(reason) > MAX_REASON:
        return f"The reason must be {MAX_REASON:,} characters or fewer"
    return None


class StatementPagesController(Controller):
    path = PATH
    include_in_schema = False
    # Editors see no statements page: they may not publish, correct or withdraw.
    guards = [requires_reviewer]
    exception_handlers = PAGE_EXCEPTION_HANDLERS
    response_headers = NO_STORE

    @get("/", name="workspace-statements")
    async def statements_page(
        self,
        request: Request[Principal, Any, Any],
        db_session: AsyncSession,
        scope_choice: ScopeQuery = None,
        period: str | None = _PERIOD,
        basis: str = _BASIS,
        done: str | None = Parameter(default=None, pattern="^(published|corrected|withdrawn)$"),
    ) -> Template:
        chosen = await _chosen(db_session, request.user, scope_choice, period, basis)
        return await _page(request, db_session, chosen, done=done)

    @get("/preview.pdf", name="workspace-statement-preview-pdf")
    async def preview_as_pdf(
        self,
        request: Request[Principal, Any, Any],
        db_session: AsyncSession,
        scope_choice: ScopeQuery = None,
        period: str = Parameter(pattern=QUARTER_PATTERN),
        basis: str = _BASIS,
    ) -> Response[bytes]:
        scope = await _required_scope(db_session, request.user, scope_choice, period, basis)
        pdf, _ = await preview_pdf(db_session, scope, period, basis=basis)
        name = f"draft-statement-{scope.key.replace(':', '-')}-{period}.pdf"
        return Response(
            pdf, media_type="application/pdf", headers={"Content-Disposition": f'inline; filename="{name}"'}
        )

    @get("/preview.html", name="workspace-statement-preview-html")
    async def preview_as_html(
        self,
        request: Request[Principal, Any, Any],
        db_session: AsyncSession,
        scope_choice: ScopeQuery = None,
        period: str = Parameter(pattern=QUARTER_PATTERN),
        basis: str = _BASIS,
    ) -> Template:
        chosen = await _chosen(db_session, request.user, scope_choice, period, basis)
        scope = await _required_scope(db_session, request.user, scope_choice, period, basis)
        snapshot = await build_snapshot(db_session, scope, period, statement_id="draft", status="draft", basis=basis)
        return Template(
            template_name="pages/statement.html",
            context=draft_context(
                snapshot,
                pdf_url=f"{PATH}/preview.pdf?{chosen.query()}",
                back=(f"{PATH}?{chosen.query()}", "Back to the statement"),
            ),
        )

    @get("/confirm", name="workspace-statement-confirm")
    async def confirm_page(
        self,
        request: Request[Principal, Any, Any],
        db_session: AsyncSession,
        scope_choice: ScopeQuery = None,
        period: str = Parameter(pattern=QUARTER_PATTERN),
        basis: str = _BASIS,
    ) -> Template:
        chosen = await _chosen(db_session, request.user, scope_choice, period, basis)
        return await _confirm(request, db_session, chosen)

    @post("/publish", name="workspace-statement-publish")
    async def publish_submit(self, request: Request[Principal, Any, Any], db_session: AsyncSession) -> Response[Any]:
        """Publish (or correct) exactly what was confirmed: if the live figures moved in between, nothing is stored
        and the confirmation is shown again with today's figures."""
        form = await request.form()
        typed = {name: _text(form, name) for name in ("scope", "period", "basis", "digest", "reason")}
        if typed["basis"] not in BASES:
            raise InvalidInput("basis must be awarded or paid")
        chosen = await _chosen(db_session, request.user, typed["scope"], typed["period"] or None, typed["basis"])
        scope = await _required_scope(db_session, request.user, typed["scope"], typed["period"], typed["basis"])
        versions = await _versions(db_session, scope, typed["period"])
        correcting = bool(versions) and versions[0].status == m.StatementStatus.PUBLISHED
        if correcting:
            problem = _reason_error(typed["reason"], "correcting", "Two contracts were recorded twice")
            if problem:
                return await _confirm(
                    request, db_session, chosen, errors={"reason": problem}, typed=typed, status=HTTP_400_BAD_REQUEST
                )
        try:
            statement = await publish(
                db_session,
                scope,
                typed["period"],
                actor=request.user,
                reason=typed["reason"] if correcting else None,
                basis=typed["basis"],
            )
        except DomainError as exc:
            await db_session.rollback()
            return await _confirm(
                request, db_session, chosen, errors={"publish": exc.detail}, typed=typed, status=domain_status(exc)
            )
        if figures_digest(json.loads(statement.snapshot_json)) != typed["digest"]:
            await db_session.rollback()
            moved = (
                "The figures changed after you opened this confirmation (someone corrected data meanwhile), so "
                "nothing was published. Check today's figures below and confirm again."
            )
            return await _confirm(request, db_session, chosen, errors={"publish": moved}, typed=typed, status=409)
        await db_session.commit()  # "autocommit" commits 2xx answers only, never a redirect
        done = "corrected" if correcting else "published"
        return Redirect(f"{PATH}?{chosen.query(done=done)}", status_code=HTTP_303_SEE_OTHER)

    @post("/{statement_id:int}/withdraw", name="workspace-statement-withdraw")
    async def withdraw_submit(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, statement_id: int
    ) -> Response[Any]:
        form = await request.form()
        reason = _text(form, "reason")
        statement = await db_session.get(m.Statement, statement_id)
        if statement is None:
            raise NotFound(f"No statement {statement_id}.")
        back = dict(parse_qsl(_text(form, "back", 300)))
        chosen = await _chosen(
            db_session,
            request.user,
            back.get("scope") or _scope_value(statement),
            statement.period,
            back["basis"] if back.get("basis") in BASES else "awarded",
        )
        problem = _reason_error(reason, "withdrawing", "Figures included another trust's contracts")
        if problem:
            return await _page(
                request,
                db_session,
                chosen,
                errors={"withdraw-reason": problem},
                typed={"withdraw-reason": reason},
                status=HTTP_400_BAD_REQUEST,
            )
        await withdraw(db_session, statement_id, actor=request.user, reason=reason)
        await db_session.commit()
        return Redirect(f"{PATH}?{chosen.query(done='withdrawn')}", status_code=HTTP_303_SEE_OTHER)


def _scope_value(statement: m.Statement) -> str | None:
    if statement.organisation_id is not None:
        return f"anchor:{statement.organisation_id}"
    return None


async def _required_scope(
    session: AsyncSession, principal: Principal, scope: str | None, period: str | None, basis: str
) -> Scope:
    chosen = await _chosen(session, principal, scope, period, basis)
    if chosen.scope is None:
        raise InvalidInput("Choose an anchor or group: scope must look like anchor:12 or group:birmingham-and-solihull")
    return chosen.scope


async def _confirm(
    request: Request[Principal, Any, Any],
    session: AsyncSession,
    chosen: Chosen,
    *,
    errors: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
    status: int = 200,
) -> Template:
    if chosen.scope is None or chosen.period is None:
        raise InvalidInput("Choose an anchor or group and a quarter before publishing.")
    scope, period = chosen.scope, chosen.period
    versions = await _versions(session, scope, period)
    latest = versions[0] if versions else None
    snapshot = await build_snapshot(session, scope, period, statement_id="draft", status="draft", basis=chosen.basis)
    return Template(
        template_name="workspace/statement_confirm.html",
        context=page_context(
            request,
            PATH,
            chosen=chosen,
            scope=scope,
            period_name=period_text(period),
            latest=latest,
            correcting=latest is not None and latest.status == m.StatementStatus.PUBLISHED,
            may_publish=_may_publish(request.user, scope),
            quarter_over=clock.quarter_not_over(period, None),
            c=confirmation(snapshot),
            basis_text=BASES[chosen.basis],
            errors=errors or {},
            typed=typed or {},
        ),
        status_code=status,
    )
