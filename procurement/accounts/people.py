"""People who sign in: invitations with a one-time set-password link, argon2id passwords, sign-in with a
rate limit, and server-side sessions. Every step is audited, failures included.

Links and session ids are 32 random bytes; only their SHA-256 is stored (``auth.hash_token``), so a copy of
the database gives nobody a working link or session.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import re
import secrets
from dataclasses import dataclass

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import clock
from procurement import models as m
from procurement.audit import record_audit
from procurement.auth import Principal, hash_token
from procurement.errors import ConflictError, DomainError, InvalidInput
from procurement.organisations.service import find_organisation
from procurement.settings import Settings

INVITE_TTL = dt.timedelta(hours=72)
MAX_FAILURES = 5
FAILURE_WINDOW = dt.timedelta(minutes=15)
MIN_PASSWORD = 12
MAX_PASSWORD = 256
SIGN_IN_ENTITY = "sign_in"
SET_PASSWORD_PATH = "/set-password"  # noqa: S105 - a path

_HASHER = PasswordHash((Argon2Hasher(),))


@functools.cache
def _dummy_hash() -> str:
    """Checked when the email is unknown, so a wrong email takes as long as a wrong password. Made on first use:
    hashing costs every process's start-up (each CLI command) a sixth of a second otherwise."""
    return _HASHER.hash(secrets.token_hex(16))


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class SignInRateLimited(DomainError):
    """Too many wrong passwords for one email address in the window; the page answers 429."""

    def __init__(self, retry_after: int) -> None:
        minutes = max(1, -(-retry_after // 60))
        super().__init__(
            f"There have been {MAX_FAILURES} wrong passwords for this email address. "
            f"Wait {minutes} minute{'s' if minutes != 1 else ''} and try again."
        )
        self.retry_after = retry_after


class SignInFailed(DomainError):
    """Wrong email or password (the message never says which)."""


class LinkNotValid(DomainError):
    """A set-password link that is unknown, used or expired."""


@dataclass(frozen=True)
class Invitation:
    user: m.User
    token: str

    def link(self, base_url: str) -> str:
        return f"{base_url.rstrip('/')}{SET_PASSWORD_PATH}?token={self.token}"


def normalise_email(raw: str) -> str:
    email = raw.strip().lower()
    if not _EMAIL.match(email) or len(email) > 320:
        raise InvalidInput(f"{raw.strip()!r} is not an email address; give one like jo.bloggs@nhs.net")
    return email


def password_problems(password: str, confirm: str, email: str | None) -> dict[str, str]:
    """What is wrong with a new password, by field (empty when it is fine). Length, not character rules (NCSC)."""
    if len(password) < MIN_PASSWORD:
        return {"password": f"Enter a password of at least {MIN_PASSWORD} characters"}
    if len(password) > MAX_PASSWORD:
        return {"password": f"Enter a password of at most {MAX_PASSWORD} characters"}
    if email and password.strip().lower() == email:
        return {"password": "Enter a password that is not your email address"}
    if password != confirm:
        return {"confirm": "Enter the same password twice"}
    return {}


async def invite_user(
    session: AsyncSession,
    *,
    email: str,
    role: str,
    org: str | None,
    name: str | None = None,
    actor: Principal | None = None,
    actor_name: str = "cli",
) -> Invitation:
    """Create the user (or re-invite one with the same role and organisation) and a one-time set-password link
    valid for 72 hours; any earlier link stops working."""
    email = normalise_email(email)
    if role not in {r.value for r in m.Role}:
        raise InvalidInput(f"role must be admin, editor, reviewer or cross_reviewer, got {role!r}")
    organisation_id = (await find_organisation(session, org)).id if org else None
    if role == m.Role.EDITOR and organisation_id is None:
        raise InvalidInput("an editor needs --org: editors act only for their organisation")
    user = (await session.scalars(select(m.User).where(m.User.email == email))).first()
    if user is None:
        display = (name or email).strip()
        if (await session.scalars(select(m.User.id).where(m.User.name == display))).first() is not None:
            raise ConflictError(f"a user named {display!r} exists already; give another --name")
        user = m.User(name=display, email=email, role=role, organisation_id=organisation_id)
        # A reviewer invited for an organisation reviews that organisation (its scope).
        user.scopes = (
            [m.UserScope(organisation_id=organisation_id)] if role == m.Role.REVIEWER and organisation_id else []
        )
        session.add(user)
        action = "user.invite"
    elif user.role != role or user.organisation_id != organisation_id:
        raise ConflictError(f"{email} is already a {user.role}; change the role before inviting again")
    else:
        action = "user.reinvite"
    token = secrets.token_urlsafe(32)
    user.invite_token_hash = hash_token(token)
    user.invite_expires_at = clock.now() + INVITE_TTL
    await session.flush()
    await record_audit(
        session,
        actor=actor,
        actor_name=actor_name,
        action=action,
        entity_type="user",
        entity_id=user.id,
        organisation_id=organisation_id,
        changes={"email": (None, email), "role": (None, role), "link_expires_at": (None, user.invite_expires_at)},
    )
    return Invitation(user=user, token=token)


async def user_for_link(session: AsyncSession, token: str) -> m.User:
    user = (
        (await session.scalars(select(m.User).where(m.User.invite_token_hash == hash_token(token)))).first()
        if token
        else None
    )
    if user is None or user.invite_expires_at is None or user.invite_expires_at <= clock.now() or not user.is_active:
        raise LinkNotValid("This link has expired or has already been used. Ask an administrator to invite you again.")
    return user


async def set_password(session: AsyncSession, token: str, password: str, confirm: str) -> m.User | dict[str, str]:
    """Set the password of the link's user and spend the link; the problems by field if the password is refused.
    Signs the user out everywhere (a new password ends old sessions)."""
    user = await user_for_link(session, token)
    problems = password_problems(password, confirm, user.email)
    if problems:
        return problems
    user.password_hash = await asyncio.to_thread(_HASHER.hash, password)
    user.password_set_at = clock.now()
    user.invite_token_hash = None
    user.invite_expires_at = None
    await session.execute(delete(m.WebSession).where(m.WebSession.user_id == user.id))
    await record_audit(
        session,
        actor=None,
        actor_name=user.name,
        action="user.set_password",
        entity_type="user",
        entity_id=user.id,
        organisation_id=user.organisation_id,
    )
    return user


async def _recent_failures(session: AsyncSession, key: str, since: dt.datetime) -> tuple[int, dt.datetime | None]:
    row = (
        await session.execute(
            select(func.count(), func.min(m.AuditEvent.at)).where(
                m.AuditEvent.action == "session.sign_in_failed",
                m.AuditEvent.entity_type == SIGN_IN_ENTITY,
                m.AuditEvent.entity_id == key,
                m.AuditEvent.at > since,
            )
        )
    ).one()
    return int(row[0]), row[1]


async def sign_in(session: AsyncSession, email: str, password: str) -> m.User:
    """The user whose email and password these are. Raises SignInRateLimited after 5 wrong passwords for one
    email in 15 minutes (a success starts the count again), else SignInFailed. The caller commits either way,
    so failures stay in the audit trail."""
    now = clock.now()
    address = email.strip().lower()
    key = address[:64]
    user = (await session.scalars(select(m.User).where(m.User.email == address))).first() if address else None
    since = now - FAILURE_WINDOW
    if user is not None and user.last_sign_in_at is not None:
        since = max(since, user.last_sign_in_at)
    failures, first = await _recent_failures(session, key, since)
    if failures >= MAX_FAILURES:
        retry_after = int(((first or now) + FAILURE_WINDOW - now).total_seconds()) + 1
        await record_audit(
            session,
            actor=None,
            actor_name="sign-in form",
            action="session.sign_in_rate_limited",
            entity_type=SIGN_IN_ENTITY,
            entity_id=key,
            changes={"email": (None, key)},
        )
        raise SignInRateLimited(retry_after)
    stored = user.password_hash if user is not None and user.is_active else None
    ok, new_hash = await asyncio.to_thread(_HASHER.verify_and_update, password, stored or _dummy_hash())
    if user is None or stored is None or not ok:
        await record_audit(
            session,
            actor=None,
            actor_name="sign-in form",
            action="session.sign_in_failed",
            entity_type=SIGN_IN_ENTITY,
            entity_id=key,
            changes={"email": (None, key)},
            reason="unknown email" if user is None else ("no password set" if stored is None else "wrong password"),
        )
        raise SignInFailed("Enter a correct email address and password")
    if new_hash is not None:
        user.password_hash = new_hash
    user.last_sign_in_at = now
    await record_audit(
        session,
        actor=principal_of(user),
        action="session.sign_in",
        entity_type="user",
        entity_id=user.id,
        organisation_id=user.organisation_id,
    )
    return user


def principal_of(user: m.User) -> Principal:
    return Principal(user_id=user.id, name=user.name, role=m.Role(user.role), organisation_id=user.organisation_id)


async def start_session(session: AsyncSession, user: m.User, settings: Settings) -> str:
    """A new session for the user; returns the cookie value (shown to the browser only)."""
    session_id = secrets.token_urlsafe(32)
    now = clock.now()
    session.add(
        m.WebSession(
            id_hash=hash_token(session_id),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + dt.timedelta(hours=settings.session_absolute_hours),
        )
    )
    await session.flush()
    return session_id


async def end_session(session: AsyncSession, session_id: str, actor: Principal | None) -> None:
    """Sign out: the session row goes (the cookie is then worthless), and the audit trail says so."""
    deleted = await session.execute(
        delete(m.WebSession).where(m.WebSession.id_hash == hash_token(session_id)).returning(m.WebSession.user_id)
    )
    user_id = deleted.scalar_one_or_none()
    if user_id is not None:
        await record_audit(
            session,
            actor=actor,
            action="session.sign_out",
            entity_type="user",
            entity_id=user_id,
            actor_name="sign-out",
        )


async def list_people(session: AsyncSession) -> list[tuple[m.User, str | None]]:
    """Users with an email (people, not machine tokens), with their organisation's name."""
    rows = await session.execute(
        select(m.User, m.Organisation.name)
        .outerjoin(m.Organisation, m.Organisation.id == m.User.organisation_id)
        .where(m.User.email.is_not(None))
        .order_by(m.User.email)
    )
    return [(u, n) for u, n in rows.all()]
