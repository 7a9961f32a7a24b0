"""The browser side of signing in: the session cookie, the middleware that turns it into a Principal, and CSRF.

A request with ``Authorization: Bearer`` is a machine and is judged by its token alone (the token middleware
runs first); otherwise a valid session cookie gives the same Principal. CSRF checks apply where an ambient
credential could be abused: any request carrying the session cookie, and every page form (sign-in included,
against login CSRF). Bearer requests carry no ambient credential, so they are not checked.
"""

from __future__ import annotations

import datetime as dt
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING, Any

from litestar.config.csrf import CSRFConfig
from litestar.datastructures import Cookie
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.middleware.csrf import CSRFMiddleware

from procurement.auth import principal_for_session
from procurement.db import ALCHEMY_STATE_KEY
from procurement.settings import Settings, secret_key

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Receive, Scope, Send

SESSION_COOKIE = "lv_session"
CSRF_COOKIE = "lv_csrf"
SESSION_AUTH = "session"
# Paths whose forms are for people: checked for CSRF even before anyone has signed in.
PAGE_PREFIXES = ("/sign-in", "/sign-out", "/set-password", "/workspace")


def _cookie(scope: Scope, name: str) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            jar.load(value.decode("latin-1"))
            if name in jar:
                return jar[name].value or None
    return None


def _static_or_docs(scope: Scope) -> bool:
    return str(scope.get("path", "")).startswith(("/static/", "/schema"))


def _has_header(scope: Scope, name: bytes) -> bool:
    return any(key == name for key, _ in scope.get("headers", ()))


class SessionAuthenticationMiddleware(ASGIMiddleware):
    """After the token middleware: a request with no Principal yet but a live session cookie gets the
    session's Principal. An unknown or expired cookie leaves it anonymous (pages then ask to sign in)."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, idle: dt.timedelta) -> None:
        self.idle = idle
        # Static files and the API docs never need a Principal: no database look-up for them.
        self.should_bypass_for_scope = _static_or_docs

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        session_id = _cookie(scope, SESSION_COOKIE) if scope.get("user") is None else None
        if session_id and len(session_id) <= 100:
            async with scope["litestar_app"].state[ALCHEMY_STATE_KEY].get_session() as db:
                principal = await principal_for_session(db, session_id, idle=self.idle)
                await db.commit()
            if principal is not None:
                scope["user"] = principal
                scope["auth"] = SESSION_AUTH
        await next_app(scope, receive, send)


class PageCSRFMiddleware(CSRFMiddleware):
    """Litestar's double-submit CSRF check (signed token in a cookie and in the form's ``_csrf_token`` field
    or the X-CSRFToken header), applied only where a browser's ambient credentials are at stake."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP and not _needs_csrf(scope):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _needs_csrf(scope: Scope) -> bool:
    if _has_header(scope, b"authorization"):
        return False
    return _cookie(scope, SESSION_COOKIE) is not None or str(scope.get("path", "")).startswith(PAGE_PREFIXES)


def csrf_config(settings: Settings) -> CSRFConfig:
    return CSRFConfig(
        secret=secret_key(settings),
        cookie_name=CSRF_COOKIE,
        cookie_secure=settings.cookie_secure,
        cookie_httponly=True,
        cookie_samesite="lax",
    )


def session_cookie(value: str, settings: Settings) -> Cookie:
    return Cookie(
        key=SESSION_COOKIE,
        value=value,
        path="/",
        max_age=settings.session_absolute_hours * 3600,
        httponly=True,
        secure=settings.cookie_secure,
        samesite="lax",
    )


def cleared_session_cookie(settings: Settings) -> Cookie:
    return Cookie(
        key=SESSION_COOKIE, value="", path="/", max_age=0, httponly=True, secure=settings.cookie_secure, samesite="lax"
    )


def session_id_of(cookies: dict[str, Any]) -> str | None:
    value = cookies.get(SESSION_COOKIE)
    return str(value) if value else None
