"""A token verified a moment ago is trusted without a query (procurement.auth.VerifiedTokens), yet a change made in
this process to anyone's access (a revocation, a user deactivated, a role changed) takes effect at once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import clock
from procurement import models as m
from procurement.auth import Principal, Verified, VerifiedTokens, forget_verified_tokens
from procurement.db import ALCHEMY_STATE_KEY
from tests.conftest import Database
from tests.support.api import bearer, make_token


def _token_reads(app_client: Any) -> tuple[list[str], Any]:
    engine = app_client.app.state[ALCHEMY_STATE_KEY].get_engine().sync_engine
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "api_token" in statement:
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    return statements, lambda: event.remove(engine, "before_cursor_execute", record)


async def test_a_verified_token_is_not_looked_up_again(db: Database, session: AsyncSession, app_client: Any) -> None:
    token = bearer(await make_token(session, "admin"))
    assert (await app_client.get("/contracts", headers=token)).status_code == 200
    statements, stop = _token_reads(app_client)
    try:
        for _ in range(3):
            assert (await app_client.get("/contracts", headers=token)).status_code == 200
    finally:
        stop()
    assert statements == []


async def _revoke(session: AsyncSession, name: str) -> None:
    row = (await session.scalars(select(m.ApiToken).where(m.ApiToken.name == name))).one()
    row.revoked_at = clock.now()


async def _deactivate(session: AsyncSession, name: str) -> None:
    await session.execute(update(m.User).where(m.User.name == name).values(is_active=False))  # in bulk, no objects


async def _demote(session: AsyncSession, name: str) -> None:
    user = (await session.scalars(select(m.User).where(m.User.name == name))).one()
    user.role = m.Role.CROSS_REVIEWER.value


@pytest.mark.parametrize(
    ("change", "status", "detail"),
    [(_revoke, 401, "revoked"), (_deactivate, 401, "not active"), (_demote, 403, "cross_reviewer role")],
    ids=["revoked", "user deactivated", "role lowered"],
)
async def test_a_change_of_access_applies_at_once(
    db: Database,
    session: AsyncSession,
    app_client: Any,
    change: Callable[[AsyncSession, str], Awaitable[None]],
    status: int,
    detail: str,
) -> None:
    token = bearer(await make_token(session, "admin", name="someone@example"))
    assert (await app_client.get("/tokens", headers=token)).status_code == 200  # verified, so remembered
    await change(session, "someone@example")
    await session.commit()
    refused = await app_client.get("/tokens", headers=token)
    assert refused.status_code == status
    assert detail in refused.json()["detail"]


def test_a_check_that_began_before_a_change_is_not_remembered() -> None:
    verified = VerifiedTokens()
    principal = Principal(user_id=1, name="someone@example", role=m.Role.ADMIN, organisation_id=None)
    someone = Verified(principal, token_id=7, expires_at=None)
    began = verified.generation
    forget_verified_tokens()  # e.g. a revocation committed while the check was reading the token
    verified.put("digest", someone, generation=began)
    assert verified.get("digest") is None
    verified.put("digest", someone, generation=verified.generation)
    assert verified.get("digest") == someone
    expired = Verified(principal, token_id=7, expires_at=clock.now() - dt.timedelta(seconds=1))
    verified.put("expired", expired, generation=verified.generation)
    assert verified.get("expired") is None  # never trusted past the token's own expiry
