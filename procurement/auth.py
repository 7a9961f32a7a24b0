"""Bearer tokens, the authentication middleware and the role guards.

Tokens are 32 random bytes shown once; only their SHA-256 is stored. A fast hash is right here (unlike
passwords) because the token has 256 bits of entropy: there is nothing to brute-force.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import hashlib
import logging
import secrets
import time
import weakref
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.plugins import InitPluginProtocol
from sqlalchemy import bindparam, event, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from procurement import clock
from procurement import models as m
from procurement.coalesce import CoalescedByKey
from procurement.db import ALCHEMY_STATE_KEY
from procurement.errors import Forbidden
from procurement.models import ApiToken, Role, User, WebSession

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.config.app import AppConfig

TOKEN_PREFIX = "lv_"  # noqa: S105 - a visible marker, not a secret

# Each worker writes the last uses of its tokens this often (and when it stops), never while answering a request.
FLUSH_USES_EVERY_S = 60.0

_log = logging.getLogger(__name__)


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


class Verified(NamedTuple):
    principal: Principal
    token_id: int
    expires_at: dt.datetime | None


async def principal_for_token(session: AsyncSession, token: str) -> Principal:
    """The caller behind a token, or TokenRefused saying why (unknown, revoked, expired, inactive user)."""
    return (await verify_token(session, token)).principal


async def verify_token(session: AsyncSession, token: str) -> Verified:
    """The caller behind a token, the token's id and when it expires, or TokenRefused saying why. Reads only: a
    use is noted by the caller (``TokenUses``)."""
    return await verify_digest(session, hash_token(token))


async def verify_digest(session: AsyncSession, digest: str) -> Verified:
    """``verify_token`` by the token's SHA-256."""
    row = (
        await session.execute(
            select(ApiToken.id, ApiToken.revoked_at, ApiToken.expires_at, User)
            .join(User, ApiToken.user_id == User.id)
            .where(ApiToken.token_hash == digest)
        )
    ).first()
    if row is None:
        raise TokenRefused("The token is not valid.")
    token_id, revoked_at, expires_at, user = row
    now = clock.now()
    if revoked_at is not None:
        raise TokenRefused(f"The token was revoked on {revoked_at.date().isoformat()}; ask an admin for a new one.")
    if expires_at is not None and expires_at <= now:
        raise TokenRefused(f"The token expired on {expires_at.date().isoformat()}; ask an admin for a new one.")
    if not user.is_active:
        raise TokenRefused("The token's user is not active.")
    return Verified(await principal_for_user(session, user), int(token_id), expires_at)


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
        self._entries: dict[str, tuple[Verified, float]] = {}
        # Moves on every clear: a check that began before a change must not store what it read.
        self.generation = 0
        _ALL_VERIFIED.add(self)

    def get(self, digest: str) -> Verified | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        verified, until = entry
        if time.monotonic() >= until or (verified.expires_at is not None and clock.now() >= verified.expires_at):
            self._entries.pop(digest, None)
            return None
        return verified

    def put(self, digest: str, verified: Verified, *, generation: int) -> None:
        """Remember a token verified by a check that began at ``generation`` (nothing if access changed since)."""
        if generation != self.generation:
            return
        if len(self._entries) >= MAX_VERIFIED:
            self._entries.clear()
        self._entries[digest] = (verified, time.monotonic() + VERIFIED_FOR_S)

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
        # From the raw list: building the connection's Headers object cost more than the rest of a remembered check.
        raw = next((v for k, v in connection.scope["headers"] if k == b"authorization"), None)
        if not raw:
            return AuthenticationResult(user=None, auth=None)
        header = raw.decode("latin-1")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > 200:
            raise NotAuthorizedException("Use 'Authorization: Bearer <token>'.")
        try:
            principal = await token_checks(connection.app.state).principal(hash_token(token))
        except TokenRefused as exc:
            raise NotAuthorizedException(exc.detail) from None
        return AuthenticationResult(user=principal, auth=token)


class TokenChecks:
    """This process's verified tokens, and one shared check per token not (or no longer) remembered: a burst of
    requests with a token just forgotten makes one query, not one each (``Coalesced``: never a check that began
    before the request). Every use is noted in ``uses``, in memory."""

    def __init__(self, alchemy: Any) -> None:
        self.verified = VerifiedTokens()
        self.uses = TokenUses(alchemy)
        self._alchemy = alchemy
        self._checks: CoalescedByKey[str, Verified] = CoalescedByKey(self._check, max_keys=MAX_VERIFIED)

    async def principal(self, digest: str) -> Principal:
        found = self.verified.get(digest)
        if found is None:
            found = await self._checks.get(digest)
        self.uses.note(found.token_id)
        return found.principal

    async def _check(self, digest: str) -> Verified:
        generation = self.verified.generation
        async with self._alchemy.get_session() as session:
            verified = await verify_digest(session, digest)
        self.verified.put(digest, verified, generation=generation)
        return verified


_CHECKS_KEY = "localvalue_token_checks"  # app state: this process's TokenChecks


def token_checks(state: Any) -> TokenChecks:
    """The app's TokenChecks (``state``: the Litestar app's state)."""
    checks: TokenChecks | None = state.get(_CHECKS_KEY)
    if checks is None:
        checks = state.setdefault(_CHECKS_KEY, TokenChecks(state[ALCHEMY_STATE_KEY]))
    return checks


_NOTE_USES = (
    update(ApiToken.__table__)  # type: ignore[arg-type]
    .where(
        ApiToken.__table__.c.id == bindparam("token_id"),
        # Never back in time: another worker may have written a later use.
        or_(ApiToken.__table__.c.last_used_at.is_(None), ApiToken.__table__.c.last_used_at < bindparam("used_at")),
    )
    .values(last_used_at=bindparam("used_at"))
)


class TokenUses:
    """When each token was last presented to this worker, held in memory and written by ``flush``: answering a
    request never writes or waits for a write. ``TokenUsePlugin`` flushes every ``FLUSH_USES_EVERY_S`` and when
    the worker stops, so a token's ``last_used_at`` is at most about a minute behind its real last use."""

    def __init__(self, alchemy: Any) -> None:
        self._alchemy = alchemy
        self._latest: dict[int, dt.datetime] = {}

    def note(self, token_id: int) -> None:
        self._latest[token_id] = clock.now()

    async def flush(self) -> int:
        """Writes the uses noted since the last flush (one UPDATE statement); returns how many tokens. On a
        database error they are kept for the next flush."""
        if not self._latest:
            return 0
        latest, self._latest = self._latest, {}
        try:
            async with self._alchemy.get_session() as session:
                await session.execute(
                    _NOTE_USES,
                    [{"token_id": i, "used_at": at} for i, at in latest.items()],
                    # Noting a use changes nobody's access: verified tokens stay remembered.
                    execution_options={_NOT_AN_ACCESS_CHANGE: True},
                )
                await session.commit()
        except BaseException:
            for token_id, at in latest.items():  # a use noted meanwhile is the later one
                self._latest.setdefault(token_id, at)
            raise
        return len(latest)


async def _flush_uses_every(uses: TokenUses, seconds: float) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await uses.flush()
        except (SQLAlchemyError, OSError) as error:
            _log.warning("could not write token uses (kept for the next try): %s", type(error).__name__)


class TokenUsePlugin(InitPluginProtocol):
    """Flushes this worker's token uses in the background and once more at shutdown. Listed after the SQLAlchemy
    plugin, so its lifespan ends first, while the engine still serves."""

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.lifespan.append(self._lifespan)
        return app_config

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Litestar) -> AsyncIterator[None]:
        uses = token_checks(app.state).uses
        task = asyncio.create_task(_flush_uses_every(uses, FLUSH_USES_EVERY_S))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            try:
                await uses.flush()
            except (SQLAlchemyError, OSError) as error:
                _log.warning("could not write token uses at shutdown: %s", type(error).__name__)


def current_principal(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    user = connection.scope.get("user")
    return user if isinstance(user, Principal) else None


def _require(connection: ASGIConnection[Any, Any, Any, Any], roles: frozenset[Role]) -> Principal:
    principal = current_principal(connection)
    if principal is None:
        raise NotAuthorizedException("This request needs a token.")
    if principal.role not in roles:
        raise PermissionDeniedException(f"The {principal.role.value} role cannot do this.")
    return principal


_ANY_ROLE = frozenset(Role)
_EDITORS = frozenset({Role.EDITOR, Role.ADMIN})
_REVIEWERS = frozenset({Role.REVIEWER, Role.CROSS_REVIEWER, Role.ADMIN})
_ADMINS = frozenset({Role.ADMIN})


# Guards are coroutines: Litestar runs a plain function guard in a worker thread, a hop on every request.
async def requires_token(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    _require(connection, _ANY_ROLE)


async def requires_editor(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Editors (for their own organisation, checked against the record) and admins."""
    _require(connection, _EDITORS)


async def requires_reviewer(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Reviewers (their scope is checked against the record), cross-organisation reviewers and admins."""
    _require(connection, _REVIEWERS)


async def requires_admin(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    _require(connection, _ADMINS)


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
