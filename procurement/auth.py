"""Bearer tokens, the authentication middleware and the role guards.

Tokens are 32 random bytes shown once; only their SHA-256 is stored. A fast hash is right here (unlike
passwords) because the token has 256 bits of entropy: there is nothing to brute-force.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import clock
from procurement import models as m
from procurement.db import ALCHEMY_STATE_KEY
from procurement.errors import Forbidden
from procurement.models import ApiToken, Role, User, WebSession

TOKEN_PREFIX = "lv_"  # noqa: S105 - a visible marker, not a secret


@dataclass(frozen=True)
class Principal:
    user_id: int
    name: str
    role: Role
    organisation_id: int | None

    def can_write_for(self, organisation_id: int) -> bool:
        if self.role is Role.ADMIN:
            return True
        return self.role is Role.EDITOR and self.organisation_id == organisation_id


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def principal_for_token(session: AsyncSession, token: str) -> Principal | None:
    row = (
        await session.execute(
            select(ApiToken, User)
            .join(User, ApiToken.user_id == User.id)
            .where(ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None), User.is_active.is_(True))
        )
    ).first()
    if row is None:
        return None
    token_row, user = row
    token_row.last_used_at = clock.now()
    return Principal(user_id=user.id, name=user.name, role=Role(user.role), organisation_id=user.organisation_id)


async def principal_for_session(
    session: AsyncSession, session_id: str, *, idle: dt.timedelta, now: dt.datetime | None = None
) -> Principal | None:
    """The Principal of a signed-in browser (its cookie holds ``session_id``): the same one a token of that user
    gives, so guards and ``ensure_can_write_for`` apply unchanged. None when unknown, idle for longer than
    ``idle``, past its absolute expiry, or its user is inactive; an ended session is deleted."""
    now = now or clock.now()
    row = (
        await session.execute(
            select(WebSession, User)
            .join(User, WebSession.user_id == User.id)
            .where(WebSession.id_hash == hash_token(session_id))
        )
    ).first()
    if row is None:
        return None
    web_session, user = row
    if not user.is_active or now >= web_session.expires_at or now - web_session.last_seen_at >= idle:
        await session.delete(web_session)
        return None
    # One write a minute at most, not one per request.
    if now - web_session.last_seen_at >= dt.timedelta(minutes=1):
        web_session.last_seen_at = now
    return Principal(user_id=user.id, name=user.name, role=Role(user.role), organisation_id=user.organisation_id)


class TokenAuthenticationMiddleware(AbstractAuthenticationMiddleware):
    """No header: anonymous public. A header with an unknown or revoked token: 401, never anonymous."""

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        header = connection.headers.get("authorization")
        if not header:
            return AuthenticationResult(user=None, auth=None)
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > 200:
            raise NotAuthorizedException("Use 'Authorization: Bearer <token>'.")
        async with connection.app.state[ALCHEMY_STATE_KEY].get_session() as session:
            principal = await principal_for_token(session, token)
            await session.commit()
        if principal is None:
            raise NotAuthorizedException("The token is not valid or has been revoked.")
        return AuthenticationResult(user=principal, auth=token)


def current_principal(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    user = connection.scope.get("user")
    return user if isinstance(user, Principal) else None


def _require(connection: ASGIConnection[Any, Any, Any, Any], roles: set[Role]) -> Principal:
    principal = current_principal(connection)
    if principal is None:
        raise NotAuthorizedException("This request needs a token.")
    if principal.role not in roles:
        raise PermissionDeniedException(f"The {principal.role.value} role cannot do this.")
    return principal


def requires_token(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    _require(connection, set(Role))


def requires_editor(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Editors (for their own organisation, checked against the record) and admins."""
    _require(connection, {Role.EDITOR, Role.ADMIN})


def requires_reviewer(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    _require(connection, {Role.REVIEWER, Role.ADMIN})


def requires_admin(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    _require(connection, {Role.ADMIN})


def ensure_can_write_for(principal: Principal, organisation_id: int) -> None:
    if not principal.can_write_for(organisation_id):
        raise Forbidden("Editors may only change their own organisation's records.")


def _require_reviewer(actor: Principal) -> None:
    if actor.role not in (m.Role.REVIEWER, m.Role.ADMIN):
        raise Forbidden("Only reviewers and admins verify or reject returns.")


def _require_admin(actor: Principal) -> None:
    if actor.role is not m.Role.ADMIN:
        raise Forbidden("Only admins can do this.")
