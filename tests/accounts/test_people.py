"""People and their sessions, on both databases: invitations with one-time links, argon2id passwords, sign-in
with its rate limit and audit trail, and sessions that end when idle, at their absolute expiry or on sign-out."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import clock
from procurement import models as m
from procurement.accounts.people import (
    FAILURE_WINDOW,
    LinkNotValid,
    SignInFailed,
    SignInRateLimited,
    end_session,
    invite_user,
    set_password,
    sign_in,
    start_session,
)
from procurement.auth import hash_token, principal_for_session
from procurement.errors import ConflictError, InvalidInput
from procurement.settings import Settings
from tests.support.api import make_org
from tests.support.people import PASSWORD, make_person

IDLE = dt.timedelta(minutes=30)


def _settings() -> Settings:
    return Settings.from_env()


async def _actions(session: AsyncSession, action: str) -> int:
    return int(await session.scalar(select(func.count()).where(m.AuditEvent.action == action)) or 0)


async def test_invite_stores_only_a_hash_of_a_72_hour_link(session: AsyncSession) -> None:
    invitation = await invite_user(session, email=" Jo.Bloggs@NHS.net ", role="reviewer", org=None)
    await session.commit()
    user = invitation.user
    assert user.email == "jo.bloggs@nhs.net"
    assert user.name == "jo.bloggs@nhs.net"
    assert user.invite_token_hash == hash_token(invitation.token)
    assert invitation.token not in (user.invite_token_hash or "")
    assert user.invite_expires_at is not None
    left = user.invite_expires_at - clock.now()
    assert dt.timedelta(hours=71, minutes=59) < left <= dt.timedelta(hours=72)
    assert invitation.link("https://lv.example/") == f"https://lv.example/set-password?token={invitation.token}"
    assert await _actions(session, "user.invite") == 1

    # Inviting again gives a new link and the old one stops working.
    again = await invite_user(session, email="jo.bloggs@nhs.net", role="reviewer", org=None)
    await session.commit()
    assert again.user.id == user.id
    with pytest.raises(LinkNotValid):
        await set_password(session, invitation.token, PASSWORD, PASSWORD)
    assert await _actions(session, "user.reinvite") == 1


async def test_invite_refuses_bad_input(session: AsyncSession) -> None:
    await make_org(session, "Walsall Healthcare NHS Trust", ods_code="RBK")
    with pytest.raises(InvalidInput, match="not an email address"):
        await invite_user(session, email="jo at nhs", role="reviewer", org=None)
    with pytest.raises(InvalidInput, match="editor needs --org"):
        await invite_user(session, email="ed@nhs.net", role="editor", org=None)
    with pytest.raises(InvalidInput, match="role must be"):
        await invite_user(session, email="ed@nhs.net", role="owner", org=None)
    invitation = await invite_user(session, email="ed@nhs.net", role="editor", org="rbk")
    assert invitation.user.organisation_id is not None
    with pytest.raises(ConflictError, match="already a editor"):
        await invite_user(session, email="ed@nhs.net", role="reviewer", org=None)


async def test_set_password_hashes_with_argon2id_and_spends_the_link(session: AsyncSession) -> None:
    invitation = await invite_user(session, email="reviewer.one@nhs.net", role="reviewer", org=None)
    assert await set_password(session, invitation.token, "short", "short") == {
        "password": "Enter a password of at least 12 characters"
    }
    assert await set_password(session, invitation.token, PASSWORD, PASSWORD + "x") == {
        "confirm": "Enter the same password twice"
    }
    assert await set_password(session, invitation.token, "Reviewer.One@nhs.net", "Reviewer.One@nhs.net") == {
        "password": "Enter a password that is not your email address"
    }
    user = await set_password(session, invitation.token, PASSWORD, PASSWORD)
    await session.commit()
    assert isinstance(user, m.User)
    assert (user.password_hash or "").startswith("$argon2id$")
    assert PASSWORD not in (user.password_hash or "")
    assert user.invite_token_hash is None
    with pytest.raises(LinkNotValid, match="expired or has already been used"):
        await set_password(session, invitation.token, PASSWORD, PASSWORD)
    assert await _actions(session, "user.set_password") == 1


async def test_an_expired_link_is_refused(session: AsyncSession) -> None:
    invitation = await invite_user(session, email="late@nhs.net", role="reviewer", org=None)
    invitation.user.invite_expires_at = clock.now() - dt.timedelta(seconds=1)
    await session.commit()
    with pytest.raises(LinkNotValid):
        await set_password(session, invitation.token, PASSWORD, PASSWORD)


async def test_sign_in_is_audited_and_rate_limited_per_email(session: AsyncSession) -> None:
    await make_person(session, "rev@nhs.net", "reviewer")
    user = await sign_in(session, "REV@nhs.net", PASSWORD)
    await session.commit()
    assert user.last_sign_in_at is not None
    assert await _actions(session, "session.sign_in") == 1

    for _ in range(5):
        with pytest.raises(SignInFailed, match="Enter a correct email address and password"):
            await sign_in(session, "rev@nhs.net", "wrong password!")
        await session.commit()
    assert await _actions(session, "session.sign_in_failed") == 5
    # The sixth try is refused even with the right password, and says how long to wait.
    with pytest.raises(SignInRateLimited) as refused:
        await sign_in(session, "rev@nhs.net", PASSWORD)
    await session.commit()
    assert 0 < refused.value.retry_after <= FAILURE_WINDOW.total_seconds() + 1
    assert "Wait 15 minutes" in refused.value.detail
    assert await _actions(session, "session.sign_in_rate_limited") == 1
    # Another address is not affected; an unknown one fails like a wrong password (never says which).
    await make_person(session, "other@nhs.net", "reviewer")
    assert (await sign_in(session, "other@nhs.net", PASSWORD)).email == "other@nhs.net"
    with pytest.raises(SignInFailed, match="Enter a correct email address and password"):
        await sign_in(session, "nobody@nhs.net", PASSWORD)
    await session.commit()
    reasons = set(
        await session.scalars(select(m.AuditEvent.reason).where(m.AuditEvent.action == "session.sign_in_failed"))
    )
    assert reasons == {"wrong password", "unknown email"}


async def test_failures_older_than_the_window_do_not_count(session: AsyncSession) -> None:
    await make_person(session, "rev@nhs.net", "reviewer")
    old = clock.now() - FAILURE_WINDOW - dt.timedelta(minutes=1)
    for _ in range(5):
        session.add(
            m.AuditEvent(
                at=old,
                actor_name="sign-in form",
                action="session.sign_in_failed",
                entity_type="sign_in",
                entity_id="rev@nhs.net",
                changes={},
            )
        )
    await session.commit()
    assert (await sign_in(session, "rev@nhs.net", PASSWORD)).email == "rev@nhs.net"


async def test_a_session_gives_the_users_principal_until_it_ends(session: AsyncSession) -> None:
    org = await make_org(session, "Walsall Healthcare NHS Trust", ods_code="RBK")
    user_id = await make_person(session, "ed@nhs.net", "editor", org="RBK")
    user = await session.get(m.User, user_id)
    assert user is not None
    settings = _settings()
    cookie = await start_session(session, user, settings)
    await session.commit()
    stored = (await session.scalars(select(m.WebSession))).one()
    assert stored.id_hash == hash_token(cookie) != cookie
    assert stored.expires_at - stored.created_at == dt.timedelta(hours=settings.session_absolute_hours)

    principal = await principal_for_session(session, cookie, idle=IDLE)
    assert principal is not None
    assert (principal.user_id, principal.role, principal.organisation_id) == (user_id, m.Role.EDITOR, org.id)
    assert principal.can_write_for(org.id)
    assert await principal_for_session(session, "not-a-session", idle=IDLE) is None

    # Seen 29 minutes later it lives on (and is marked seen); 31 idle minutes after that it has ended.
    later = clock.now() + dt.timedelta(minutes=29)
    assert await principal_for_session(session, cookie, idle=IDLE, now=later) is not None
    assert await principal_for_session(session, cookie, idle=IDLE, now=later + dt.timedelta(minutes=29)) is not None
    await session.commit()
    assert await principal_for_session(session, cookie, idle=IDLE, now=later + dt.timedelta(minutes=60)) is None
    await session.commit()
    assert await session.scalar(select(func.count()).select_from(m.WebSession)) == 0


async def test_absolute_expiry_inactive_users_and_sign_out(session: AsyncSession) -> None:
    user_id = await make_person(session, "rev@nhs.net", "reviewer")
    user = await session.get(m.User, user_id)
    assert user is not None
    settings = _settings()
    first = await start_session(session, user, settings)
    await session.commit()
    # Kept busy, it still ends at its absolute expiry.
    end = clock.now() + dt.timedelta(hours=settings.session_absolute_hours)
    assert await principal_for_session(session, first, idle=dt.timedelta(days=2), now=end) is None
    await session.commit()

    second = await start_session(session, user, settings)
    user.is_active = False
    await session.commit()
    assert await principal_for_session(session, second, idle=IDLE) is None
    user.is_active = True
    await session.commit()

    third = await start_session(session, user, settings)
    await session.commit()
    await end_session(session, third, None)
    await session.commit()
    assert await principal_for_session(session, third, idle=IDLE) is None
    assert await _actions(session, "session.sign_out") == 1
