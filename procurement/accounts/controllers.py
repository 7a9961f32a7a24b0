"""HTTP for accounts: API tokens (admins: list, create (shown once), revoke) and pages for people (sign in,
sign out, set a password from an invitation, and (admins) invite people).

Forms post back to their own page; a refused form is shown again with an error summary (NHS.UK pattern).
Handlers that answer with a redirect or an error commit themselves: the autocommit hook commits 2xx only,
and a failed sign-in must stay in the audit trail.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import ResponseHeader
from litestar.params import Parameter
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER, HTTP_400_BAD_REQUEST, HTTP_429_TOO_MANY_REQUESTS
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.accounts.people import (
    INVITE_TTL,
    LinkNotValid,
    SignInFailed,
    SignInRateLimited,
    end_session,
    invite_user,
    list_people,
    set_password,
    sign_in,
    start_session,
    user_for_link,
)
from procurement.accounts.schemas import NewToken, TokenCreate, TokenInfo
from procurement.accounts.service import (
    TokenRow,
    create_token,
    describe_tokens,
    list_tokens,
    parse_duration,
    revoke_token,
)
from procurement.accounts.sessions import cleared_session_cookie, session_cookie, session_id_of
from procurement.auth import Principal, current_principal, requires_admin
from procurement.errors import DomainError
from procurement.paging import DEFAULT_LIMIT, Limit, Offset
from procurement.schemas import Page
from procurement.settings import Settings
from procurement.web.frame import NO_STORE, PAGE_EXCEPTION_HANDLERS, SETTINGS_STATE_KEY, page_context, safe_next


def token_info(row: TokenRow) -> TokenInfo:
    t = row.token
    return TokenInfo(
        id=t.id,
        name=t.name,
        role=row.user.role,
        organisations=list(row.organisations),
        groups=list(row.groups),
        token_prefix=t.token_prefix,
        created_at=t.created_at,
        expires_at=t.expires_at,
        last_used_at=t.last_used_at,
        revoked_at=t.revoked_at,
    )


class TokenController(Controller):
    path = "/tokens"
    tags = ["tokens"]
    guards = [requires_admin]

    @get("/", summary="API tokens, with their role, scope, expiry and last use (admin)")
    async def list_tokens(
        self, db_session: AsyncSession, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
    ) -> Page[TokenInfo]:
        """API tokens, with their role, scope, expiry and last use (admin)."""
        rows, total = await list_tokens(db_session, limit=limit, offset=offset)
        return Page(items=[token_info(r) for r in rows], total=total, limit=limit, offset=offset)

    @post("/", summary="Create a token; it is shown once (admin)")
    async def create_token(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, data: TokenCreate
    ) -> NewToken:
        """Create a token; it is shown once (admin)."""
        token, row = await create_token(
            db_session,
            role=data.role.value,
            name=data.name,
            orgs=data.organisations,
            groups=data.groups,
            expires_in=parse_duration(data.expires_in) if data.expires_in else None,
            actor=request.user,
        )
        await db_session.refresh(row, ["user"])
        return NewToken(token=token, info=token_info((await describe_tokens(db_session, [row]))[0]))

    @delete("/{token_id:int}", summary="Revoke a token; requests with it get 401 within 3 seconds (admin)")
    async def revoke_token(
        self,
        request: Request[Principal, Any, Any],
        db_session: AsyncSession,
        token_id: int,
        reason: str = Parameter(
            min_length=3, max_length=1000, description="Why (kept in the audit trail), e.g. 'left the trust'."
        ),
    ) -> None:
        """Revoke a token; requests with it get 401 within 3 seconds (at once on the worker that revoked it) (admin)."""
        await revoke_token(db_session, token_id, reason=reason, actor=request.user)


_PRIVATE = [
    ResponseHeader(name="Referrer-Policy", value="no-referrer"),
    ResponseHeader(name="Cache-Control", value="no-store"),
]


def _settings(request: Request[Any, Any, Any]) -> Settings:
    settings: Settings = request.app.state[SETTINGS_STATE_KEY]
    return settings


def _text(form: Any, name: str, limit: int = 400) -> str:
    value = form.get(name, "")
    return str(value)[:limit] if value is not None else ""


class SignInController(Controller):
    path = "/"
    include_in_schema = False
    exception_handlers = PAGE_EXCEPTION_HANDLERS
    response_headers = NO_STORE

    @get("/sign-in", name="sign-in")
    async def sign_in_page(
        self, request: Request[Any, Any, Any], next: str | None = None, signed_out: bool = False
    ) -> Template | Response[Any]:
        if current_principal(request) is not None:
            return Redirect(safe_next(next), status_code=HTTP_303_SEE_OTHER)
        return _sign_in_form(request, next=safe_next(next), signed_out=signed_out)

    @post("/sign-in")
    async def sign_in_submit(self, request: Request[Any, Any, Any], db_session: AsyncSession) -> Response[Any]:
        form = await request.form()
        email, password = _text(form, "email", 320).strip(), _text(form, "password", 1000)
        target = safe_next(_text(form, "next", 2000))
        errors = {}
        if not email:
            errors["email"] = "Enter your email address"
        if not password:
            errors["password"] = "Enter your password"  # noqa: S105 - a message, not a password
        if errors:
            return _sign_in_form(request, next=target, email=email, errors=errors, status=HTTP_400_BAD_REQUEST)
        try:
            user = await sign_in(db_session, email, password)
        except SignInRateLimited as exc:
            await db_session.commit()
            response = _sign_in_form(
                request, next=target, email=email, errors={"email": exc.detail}, status=HTTP_429_TOO_MANY_REQUESTS
            )
            response.headers["Retry-After"] = str(exc.retry_after)
            return response
        except SignInFailed as exc:
            await db_session.commit()
            return _sign_in_form(
                request, next=target, email=email, errors={"email": exc.detail}, status=HTTP_400_BAD_REQUEST
            )
        settings = _settings(request)
        previous = session_id_of(request.cookies)
        if previous:
            await end_session(db_session, previous, None)
        session_id = await start_session(db_session, user, settings)
        await db_session.commit()
        return Redirect(target, status_code=HTTP_303_SEE_OTHER, cookies=[session_cookie(session_id, settings)])

    @post("/sign-out")
    async def sign_out(self, request: Request[Any, Any, Any], db_session: AsyncSession) -> Response[Any]:
        session_id = session_id_of(request.cookies)
        if session_id:
            await end_session(db_session, session_id, current_principal(request))
            await db_session.commit()
        return Redirect(
            "/sign-in?signed_out=true",
            status_code=HTTP_303_SEE_OTHER,
            cookies=[cleared_session_cookie(_settings(request))],
        )

    @get("/set-password", name="set-password", response_headers=_PRIVATE)
    async def set_password_page(
        self, request: Request[Any, Any, Any], db_session: AsyncSession, token: str = ""
    ) -> Template:
        user = await _link_user(db_session, token)
        if isinstance(user, DomainError):
            return _link_problem(request, user)
        return _set_password_form(request, token, user)

    @post("/set-password", response_headers=_PRIVATE)
    async def set_password_submit(self, request: Request[Any, Any, Any], db_session: AsyncSession) -> Response[Any]:
        form = await request.form()
        token = _text(form, "token", 200)
        try:
            result = await set_password(db_session, token, _text(form, "password", 1000), _text(form, "confirm", 1000))
        except LinkNotValid as exc:
            return _link_problem(request, exc)
        if isinstance(result, dict):
            user = await user_for_link(db_session, token)
            return _set_password_form(request, token, user, errors=result, status=HTTP_400_BAD_REQUEST)
        await db_session.commit()
        return Template(
            template_name="accounts/password_set.html",
            context=page_context(request, "", email=result.email),
        )


async def _link_user(session: AsyncSession, token: str) -> m.User | DomainError:
    try:
        return await user_for_link(session, token)
    except LinkNotValid as exc:
        return exc


def _link_problem(request: Request[Any, Any, Any], exc: DomainError) -> Template:
    return Template(
        template_name="accounts/link_not_valid.html",
        context=page_context(request, "", detail=exc.detail),
        status_code=HTTP_400_BAD_REQUEST,
    )


def _sign_in_form(
    request: Request[Any, Any, Any],
    *,
    next: str,
    email: str = "",
    errors: dict[str, str] | None = None,
    signed_out: bool = False,
    status: int = 200,
) -> Template:
    return Template(
        template_name="accounts/sign_in.html",
        context=page_context(request, "", next=next, email=email, errors=errors or {}, signed_out=signed_out),
        status_code=status,
    )


def _set_password_form(
    request: Request[Any, Any, Any], token: str, user: m.User, errors: dict[str, str] | None = None, status: int = 200
) -> Template:
    return Template(
        template_name="accounts/set_password.html",
        context=page_context(request, "", token=token, email=user.email, errors=errors or {}),
        status_code=status,
    )


class UserAdminController(Controller):
    """Admins invite people: the same one-time link as ``localvalue users invite``."""

    path = "/workspace/users"
    include_in_schema = False
    guards = [requires_admin]
    exception_handlers = PAGE_EXCEPTION_HANDLERS
    response_headers = NO_STORE

    @get("/", name="users")
    async def users(self, request: Request[Principal, Any, Any], db_session: AsyncSession) -> Template:
        return await _users_page(request, db_session)

    @post("/")
    async def invite(self, request: Request[Principal, Any, Any], db_session: AsyncSession) -> Template:
        form = await request.form()
        values = {k: _text(form, k, 320).strip() for k in ("email", "name", "role", "org")}
        errors = {}
        if not values["email"]:
            errors["email"] = "Enter the person's email address"
        if values["role"] not in {r.value for r in m.Role}:
            errors["role"] = "Choose a role"
        elif values["role"] == m.Role.EDITOR and not values["org"]:
            errors["org"] = "Enter the editor's organisation: its ODS or GSS code, like RRK or E08000025"
        if not errors:
            try:
                invitation = await invite_user(
                    db_session,
                    email=values["email"],
                    role=values["role"],
                    org=values["org"] or None,
                    name=values["name"] or None,
                    actor=request.user,
                )
            except DomainError as exc:
                field = "org" if "organisation" in exc.detail else "email"
                errors[field] = exc.detail[:1].upper() + exc.detail[1:]
            else:
                link = invitation.link(_settings(request).base_url)
                return Template(
                    template_name="accounts/invited.html",
                    context=page_context(
                        request,
                        "/workspace/users",
                        email=invitation.user.email,
                        link=link,
                        hours=int(INVITE_TTL.total_seconds() // 3600),
                    ),
                )
        return await _users_page(request, db_session, values=values, errors=errors, status=HTTP_400_BAD_REQUEST)


async def _users_page(
    request: Request[Principal, Any, Any],
    session: AsyncSession,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Template:
    people = await list_people(session)
    anchors = (
        await session.execute(
            select(m.Organisation.name, m.Organisation.ods_code, m.Organisation.gss_code)
            .where(m.Organisation.is_anchor.is_(True))
            .order_by(m.Organisation.name)
        )
    ).all()
    return Template(
        template_name="accounts/users.html",
        context=page_context(
            request,
            "/workspace/users",
            people=people,
            anchors=[(name, ods or gss) for name, ods, gss in anchors if ods or gss],
            roles=[r.value for r in m.Role],
            values=values or {"email": "", "name": "", "role": "", "org": ""},
            errors=errors or {},
        ),
        status_code=status,
    )
