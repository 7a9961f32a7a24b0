"""Bearer tokens, the authentication middleware and the role guards.

Tokens are 32 random bytes shown once; only their SHA-256 is stored. A fast hash is right here (unlike
passwords) because the token has 256 bits of entropy: there is nothing to brute-force.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import secrets
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from sqlalchemy import event, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from procurement import clock
from procurement import models as m
from procurement.coalesce import CoalescedByKey
from procurement.db import ALCHEMY_STATE_KEY
from procurement.errors import Forbidden
from procurement.models import ApiToken, Role, User, WebSession

TOKEN_PREFIX = "lv_"  # noqa: S105 - a visible marker, not a secret


# A token's last use is recorded at most this often, so reading with a token does not write every time.
LAST_USED_EVERY = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class Principal:
    """Who is calling. ``scope`` holds the organisations a reviewer reviews (its groups' members included)."""

    user_id: int
    name: str
    role: Role
    organisation_id: int | None
    scope: frozenset[int] = frozenset()

    def can_write_for(self, organisation_id: int) -> bool:
        """Keep an organisation's own records (contracts, commitments, local area): its editors and admins."""
        if self.role is Role.ADMIN:
            return True
        return self.role is Role.EDITOR and self.organisation_id == organisation_id

    def can_review_for(self, organisation_id: int) -> bool:
        """Verify returns and publish statements: reviewers in scope, cross-organisation reviewers, admins."""
        if self.role in (Role.ADMIN, Role.CROSS_REVIEWER):
            return True
        return self.role is Role.REVIEWER and organisation_id in self.scope

    def may_act_for(self, organisation_id: int) -> bool:
        """Change data that moves this organisation's figures (shared supplier corrections)."""
        return self.can_write_for(organisation_id) or self.can_review_for(organisation_id)

    def may_act_for_all(self, organisation_ids: Iterable[int]) -> bool:
        return all(self.may_act_for(i) for i in organisation_ids)


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def scope_of(session: AsyncSession, user_id: int) -> frozenset[int]:
    """The organisations a user's scope names, directly or as today's members of its anchor groups."""
    us, gm = m.UserScope, m.AnchorGroupMember
    direct = select(us.organisation_id).where(us.user_id == user_id, us.organisation_id.is_not(None))
    grouped = select(gm.organisation_id).join(us, us.group_id == gm.group_id).where(us.user_id == user_id)
    rows = await session.scalars(direct.union(grouped))
    return frozenset(int(i) for i in rows.all() if i is not None)


class TokenRefused(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


async def principal_for_token(session: AsyncSession, token: str) -> Principal:
    """The caller behind a token, or TokenRefused saying why (unknown, revoked, expired, inactive user)."""
    principal, _ = await verify_token(session, token)
    return principal


async def verify_token(session: AsyncSession, token: str) -> tuple[Principal, dt.datetime | None]:
    """The caller behind a token and when the token expires, or TokenRefused saying why."""
    return await verify_digest(session, hash_token(token))


async def verify_digest(session: AsyncSession, digest: str) -> tuple[Principal, dt.datetime | None]:
    """``verify_token`` by the token's SHA-256.

    The last use is written only when the stored one is a minute old or more, with a conditional UPDATE, so
    a burst of reads writes once.
    """
    row = (
        await session.execute(
            select(ApiToken.id, ApiToken.revoked_at, ApiToken.expires_at, ApiToken.last_used_at, User)
            .join(User, ApiToken.user_id == User.id)
            .where(ApiToken.token_hash == digest)
        )
    ).first()
    if row is None:
        raise TokenRefused("The token is not valid.")
    token_id, revoked_at, expires_at, last_used_at, user = row
    now = clock.now()
    if revoked_at is not None:
        raise TokenRefused(f"The token was revoked on {revoked_at.date().isoformat()}; ask an admin for a new one.")
    if expires_at is not None and expires_at <= now:
        raise TokenRefused(f"The token expired on {expires_at.date().isoformat()}; ask an admin for a new one.")
    if not user.is_active:
        raise TokenRefused("The token's user is not active.")
    if last_used_at is None or now - last_used_at >= LAST_USED_EVERY:
        stale = or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= now - LAST_USED_EVERY)
        await session.execute(
            update(ApiToken).where(ApiToken.id == token_id, stale).values(last_used_at=now),
            # Noting a use changes nobody's access: verified tokens stay remembered.
            execution_options={"synchronize_session": False, _NOT_AN_ACCESS_CHANGE: True},
        )
        await session.commit()
    return await principal_for_user(session, user), expires_at


async def principal_for_user(session: AsyncSession, user: User) -> Principal:
    """The same Principal whichever way the user came in (token or browser session), scope included."""
    principal = Principal(user_id=user.id, name=user.name, role=Role(user.role), organisation_id=user.organisation_id)
    if principal.role is Role.REVIEWER:
        return dataclasses.replace(principal, scope=await scope_of(session, principal.user_id))
    return principal


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
    return await principal_for_user(session, user)


# How long a verified token is trusted without asking the database again, in one worker process. A change this
# process commits (revocation, a user deactivated, a role or scope changed) forgets every verified token at once;
# a change committed elsewhere (another worker, `localvalue tokens revoke`) takes effect within this bound.
# Chosen over sharing one session between the check and the handler because a warm authenticated read then needs
# no token query at all, and a few seconds is far below how long an admin takes to notice a leaked token.
VERIFIED_FOR_S = 3.0
MAX_VERIFIED = 4096  # distinct tokens remembered per process; past this all are forgotten (a full check each)


class VerifiedTokens:
    """Principals of recently verified tokens by SHA-256, each trusted until ``VERIFIED_FOR_S`` has passed or its
    token's own expiry, whichever comes first. Only successes are kept: a refused token is checked every time."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[Principal, float, dt.datetime | None]] = {}
        # Moves on every clear: a check that began before a change must not store what it read.
        self.generation = 0
        _ALL_VERIFIED.add(self)

    def get(self, digest: str) -> Principal | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        principal, until, expires_at = entry
        if time.monotonic() >= until or (expires_at is not None and clock.now() >= expires_at):
            self._entries.pop(digest, None)
            return None
        return principal

    def put(self, digest: str, principal: Principal, expires_at: dt.datetime | None, *, generation: int) -> None:
        """Remember a token verified by a check that began at ``generation`` (nothing if access changed since)."""
        if generation != self.generation:
            return
        if len(self._entries) >= MAX_VERIFIED:
            self._entries.clear()
        self._entries[digest] = (principal, time.monotonic() + VERIFIED_FOR_S, expires_at)

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()


_ALL_VERIFIED: weakref.WeakSet[VerifiedTokens] = weakref.WeakSet()
# What a Principal is made of: a change to any of these rows may change or end someone's access.
_PRINCIPAL_SOURCES = (ApiToken, User, m.UserScope, m.AnchorGroup, m.AnchorGroupMember)
_CHANGED = "localvalue_principals_changed"
_NOT_AN_ACCESS_CHANGE = "localvalue_not_an_access_change"


def forget_verified_tokens() -> None:
    for verified in list(_ALL_VERIFIED):
        verified.clear()


@event.listens_for(Session, "after_flush")
def _forget_on_flush(session: Session, _flush: UOWTransaction) -> None:
    if any(isinstance(o, _PRINCIPAL_SOURCES) for o in (*session.new, *session.dirty, *session.deleted)):
        session.info[_CHANGED] = True
        forget_verified_tokens()


@event.listens_for(Session, "do_orm_execute")
def _forget_on_bulk_write(state: ORMExecuteState) -> None:
    # UPDATE or DELETE statements on those tables (not through objects), e.g. deactivating users in bulk.
    mapper = state.bind_mapper
    if not (state.is_update or state.is_delete) or mapper is None or not issubclass(mapper.class_, _PRINCIPAL_SOURCES):
        return
    if not state.execution_options.get(_NOT_AN_ACCESS_CHANGE):
        state.session.info[_CHANGED] = True
        forget_verified_tokens()


@event.listens_for(Session, "after_commit")
def _forget_on_commit(session: Session) -> None:
    # Again once committed: a request may have verified a token between the flush and the commit.
    if session.info.pop(_CHANGED, False):
        forget_verified_tokens()


class TokenAuthenticationMiddleware(AbstractAuthenticationMiddleware):
    """No header: anonymous public. A header with an unknown, revoked or expired token: 401, never anonymous.

    A token verified in the last few seconds is trusted without a query (``VerifiedTokens``)."""

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        header = connection.headers.get("authorization")
        if not header:
            return AuthenticationResult(user=None, auth=None)
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > 200:
            raise NotAuthorizedException("Use 'Authorization: Bearer <token>'.")
        state = connection.app.state
        checks: TokenChecks | None = state.get(_CHECKS_KEY)
        if checks is None:
            checks = state.setdefault(_CHECKS_KEY, TokenChecks(state[ALCHEMY_STATE_KEY]))
        try:
            principal = await checks.principal(hash_token(token))
        except TokenRefused as exc:
            raise NotAuthorizedException(exc.detail) from None
        return AuthenticationResult(user=principal, auth=token)


class TokenChecks:
    """This process's verified tokens, and one shared check per token not (or no longer) remembered: a burst of
    requests with a token just forgotten makes one query, not one each (``Coalesced``: never a check that began
    before the request)."""

    def __init__(self, alchemy: Any) -> None:
        self.verified = VerifiedTokens()
        self._alchemy = alchemy
        self._checks: CoalescedByKey[str, Principal] = CoalescedByKey(self._check, max_keys=MAX_VERIFIED)

    async def principal(self, digest: str) -> Principal:
        found = self.verified.get(digest)
        return found if found is not None else await self._checks.get(digest)

    async def _check(self, digest: str) -> Principal:
        generation = self.verified.generation
        async with self._alchemy.get_session() as session:
            principal, expires_at = await verify_digest(session, digest)
        self.verified.put(digest, principal, expires_at, generation=generation)
        return principal


_CHECKS_KEY = "localvalue_token_checks"  # app state: this process's TokenChecks


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


# Guards are coroutines: Litestar runs a plain function guard in a worker thread, a hop on every request.
async def requires_token(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    _require(connection, set(Role))


async def requires_editor(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Editors (for their own organisation, checked against the record) and admins."""
    _require(connection, {Role.EDITOR, Role.ADMIN})


async def requires_reviewer(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Reviewers (their scope is checked against the record), cross-organisation reviewers and admins."""
    _require(connection, {Role.REVIEWER, Role.CROSS_REVIEWER, Role.ADMIN})


async def requires_admin(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    _require(connection, {Role.ADMIN})


def ensure_can_write_for(principal: Principal, organisation_id: int) -> None:
    if not principal.can_write_for(organisation_id):
        raise Forbidden("Editors may only change their own organisation's records.")


def ensure_can_review_for(principal: Principal, organisation_ids: Iterable[int]) -> None:
    outside = sorted(i for i in organisation_ids if not principal.can_review_for(i))
    if not outside:
        return
    if principal.role is not Role.REVIEWER:
        raise Forbidden("Only reviewers and admins can do this.")
    named = ", ".join(str(i) for i in outside)
    raise Forbidden(f"Organisation {named} is outside the organisations this reviewer reviews.")


def _require_admin(actor: Principal) -> None:
    if actor.role is not m.Role.ADMIN:
        raise Forbidden("Only admins can do this.")
