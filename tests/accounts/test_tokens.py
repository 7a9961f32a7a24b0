"""Tokens: created with a role and scope, listed, revoked and expiring (CLI and admin API); a revoked or expired
token is a 401 problem; a use is noted in memory and written by the worker's flush (every minute and at
shutdown), so answering a request never writes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import clock
from procurement import models as m
from procurement.app import create_app
from procurement.auth import Role, principal_for_token, token_checks
from procurement.db import ALCHEMY_STATE_KEY
from procurement.settings import Settings
from tests.conftest import Database
from tests.support.api import bearer, make_org, make_token
from tests.support.cli import localvalue


async def test_admin_api_creates_lists_and_revokes(db: Database, session: AsyncSession, app_client: Any) -> None:
    walsall = await make_org(session, "Walsall Healthcare NHS Trust", ods_code="RBK")
    admin = bearer(await make_token(session, "admin", name="ops@example"))
    editor = bearer(await make_token(session, "editor", walsall.id))

    assert (await app_client.get("/tokens", headers=editor)).status_code == 403
    assert (await app_client.get("/tokens")).status_code == 401
    refused = await app_client.post(
        "/tokens", json={"name": "kim@walsall", "role": "editor", "organisations": []}, headers=admin
    )
    assert refused.status_code == 400
    assert "--org" in refused.json()["detail"]
    bad_expiry = await app_client.post(
        "/tokens",
        json={"name": "kim@walsall", "role": "editor", "organisations": ["RBK"], "expires_in": "soon"},
        headers=admin,
    )
    assert bad_expiry.status_code == 400
    assert "90d" in bad_expiry.json()["detail"]

    created = await app_client.post(
        "/tokens",
        json={"name": "kim@walsall", "role": "editor", "organisations": ["rbk"], "expires_in": "90d"},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    token, info = body["token"], body["info"]
    assert token.startswith("lv_")
    assert (info["role"], info["organisations"], info["token_prefix"]) == ("editor", ["RBK"], token[:8])
    expires = dt.datetime.fromisoformat(info["expires_at"])
    assert abs(expires - (clock.now() + dt.timedelta(days=90))) < dt.timedelta(minutes=5)
    stored = (await session.scalars(select(m.ApiToken).where(m.ApiToken.id == info["id"]))).one()
    assert stored.token_hash != token  # only the hash is kept
    assert token not in str(await app_client.get("/tokens", headers=admin))

    assert (await app_client.get("/contracts", headers=bearer(token))).status_code == 200
    _flush(app_client)
    listed = (await app_client.get("/tokens", headers=admin)).json()
    assert listed["total"] == 3
    mine = next(t for t in listed["items"] if t["id"] == info["id"])
    assert mine["last_used_at"] is not None
    assert "token" not in mine

    no_reason = await app_client.delete(f"/tokens/{info['id']}", headers=admin)
    assert no_reason.status_code == 400
    revoked = await app_client.delete(f"/tokens/{info['id']}", params={"reason": "left the trust"}, headers=admin)
    assert revoked.status_code == 204
    refused_now = await app_client.get("/contracts", headers=bearer(token))
    assert refused_now.status_code == 401
    assert refused_now.headers["content-type"].startswith("application/problem+json")
    assert "revoked" in refused_now.json()["detail"]
    again = await app_client.delete(f"/tokens/{info['id']}", params={"reason": "twice"}, headers=admin)
    assert again.status_code == 409

    audit = (
        await session.scalars(
            select(m.AuditEvent).where(m.AuditEvent.entity_type == "api_token").order_by(m.AuditEvent.id)
        )
    ).all()
    assert [(a.action, a.actor_name, a.reason) for a in audit] == [
        ("token.create", "ops@example", None),
        ("token.revoke", "ops@example", "left the trust"),
    ]


async def test_expired_token_is_refused(session: AsyncSession, app_client: Any) -> None:
    past = clock.now() - dt.timedelta(seconds=1)
    expired = await make_token(session, "admin", expires_at=past)
    live = await make_token(session, "admin", expires_at=clock.now() + dt.timedelta(days=1))
    response = await app_client.get("/contracts", headers=bearer(expired))
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "expired" in response.json()["detail"]
    assert (await app_client.get("/contracts", headers=bearer(live))).status_code == 200


def _flush(client: Any) -> int:
    """The app's flush of token uses, run where the test client runs the app (its portal's event loop)."""
    flushed: int = client.blocking_portal.call(token_checks(client.app.state).uses.flush)
    return flushed


def _writes(statements: list[str]) -> list[str]:
    return [s for s in statements if s.lstrip().split(" ", 1)[0].upper() in {"INSERT", "UPDATE", "DELETE"}]


async def _last_use(session: AsyncSession, name: str) -> dt.datetime | None:
    session.expire_all()
    return (await session.scalars(select(m.ApiToken.last_used_at).where(m.ApiToken.name == name))).one()


async def test_reads_with_a_token_do_not_write_and_the_flush_writes_the_last_use(
    session: AsyncSession, app_client: Any
) -> None:
    _flush(app_client)  # uses other tests left behind (before ids they used are given out again)
    token = await make_token(session, "admin", name="reader@example")
    other = await make_token(session, "admin", name="other@example")
    engine = app_client.app.state[ALCHEMY_STATE_KEY].get_engine().sync_engine
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    started = clock.now()
    event.listen(engine, "before_cursor_execute", record)
    try:
        for _ in range(3):
            assert (await app_client.get("/contracts", headers=bearer(token))).status_code == 200
        assert (await app_client.get("/contracts", headers=bearer(other))).status_code == 200
        assert _writes(statements) == []
        assert await _last_use(session, "reader@example") is None

        assert _flush(app_client) == 2
        assert len(_writes(statements)) == 1, _writes(statements)  # one statement for every token used
        statements.clear()
        assert _flush(app_client) == 0  # nothing used since: nothing written
        assert statements == []
    finally:
        event.remove(engine, "before_cursor_execute", record)
    first_use = await _last_use(session, "reader@example")
    assert first_use is not None
    assert started <= first_use <= clock.now()
    assert await _last_use(session, "other@example") is not None

    # Another worker wrote a later use meanwhile: a flush never moves it back.
    later = clock.now() + dt.timedelta(hours=1)
    await session.execute(update(m.ApiToken).where(m.ApiToken.name == "reader@example").values(last_used_at=later))
    await session.commit()
    assert (await app_client.get("/contracts", headers=bearer(token))).status_code == 200
    assert _flush(app_client) == 1
    assert await _last_use(session, "reader@example") == later


async def test_a_worker_writes_its_token_uses_when_it_stops(db: Database, session: AsyncSession) -> None:
    token = await make_token(session, "admin", name="leaving@example")
    app = create_app(Settings(**{**Settings.from_env().__dict__, "database_url": db.url}))
    try:
        async with AsyncTestClient(app=app) as client:
            assert (await client.get("/contracts", headers=bearer(token))).status_code == 200
            assert await _last_use(session, "leaving@example") is None
        assert await _last_use(session, "leaving@example") is not None
    finally:
        await app.state[ALCHEMY_STATE_KEY].get_engine().dispose()


async def test_reviewer_scope_follows_its_groups(session: AsyncSession) -> None:
    walsall = await make_org(session, "Walsall Healthcare NHS Trust", ods_code="RBK")
    bcc = await make_org(session, "Birmingham City Council", gss_code="E08000025")
    uhb = await make_org(session, "University Hospitals Birmingham", ods_code="RRK")
    group = m.AnchorGroup(slug="bsol", name="BSol", members=[m.AnchorGroupMember(organisation_id=bcc.id)])
    session.add(group)
    await session.commit()
    token = await make_token(session, "reviewer", reviews=[walsall.id], groups=[group.id])
    principal = await principal_for_token(session, token)
    assert principal.role is Role.REVIEWER
    assert principal.scope == {walsall.id, bcc.id}
    assert principal.can_review_for(bcc.id)
    assert not principal.can_review_for(uhb.id)
    assert not principal.can_write_for(walsall.id)
    group.members.append(m.AnchorGroupMember(organisation_id=uhb.id))
    await session.commit()
    assert (await principal_for_token(session, token)).scope == {walsall.id, bcc.id, uhb.id}


@pytest.mark.slow
async def test_cli_creates_scoped_tokens_lists_and_revokes(db: Database, session: AsyncSession) -> None:
    await make_org(session, "University Hospitals Birmingham", ods_code="RRK")
    await make_org(session, "Birmingham City Council", gss_code="E08000025")
    bcc = (await session.scalars(select(m.Organisation).where(m.Organisation.gss_code == "E08000025"))).one()
    session.add(
        m.AnchorGroup(
            slug="birmingham-and-solihull", name="BSol", members=[m.AnchorGroupMember(organisation_id=bcc.id)]
        )
    )
    await session.commit()
    url = db.url

    reviewer = localvalue(
        "tokens", "create", "--role", "reviewer", "--org", "RRK", "--org", "E08000025",
        "--group", "birmingham-and-solihull", "--name", "sam@icb", "--expires-in", "90d", database_url=url,
    ).stdout.strip()  # fmt: skip
    assert reviewer.startswith("lv_")
    cross = localvalue("tokens", "create", "--role", "cross_reviewer", "--name", "alex@icb", database_url=url)
    assert cross.stdout.startswith("lv_")
    unscoped = localvalue("tokens", "create", "--role", "reviewer", "--name", "x@icb", database_url=url, check=False)
    assert unscoped.returncode == 1
    assert "Traceback" not in unscoped.stderr
    assert "--group" in unscoped.stderr
    bad_expiry = localvalue(
        "tokens", "create", "--role", "cross_reviewer", "--name", "y@icb", "--expires-in", "forever",
        database_url=url, check=False,
    )  # fmt: skip
    assert bad_expiry.returncode == 1
    assert "90d" in bad_expiry.stderr

    listed = localvalue("tokens", "list", database_url=url).stdout.splitlines()
    assert len(listed) == 2
    first = listed[0].split("\t")
    assert first[1:5] == [reviewer[:8], "sam@icb", "reviewer", "RRK,E08000025,group:birmingham-and-solihull"]
    assert first[6].startswith("expires 20")
    assert listed[1].split("\t")[3:5] == ["cross_reviewer", "all"]

    token_id = first[0]
    out = localvalue("tokens", "revoke", token_id, "--reason", "moved to another ICB", database_url=url)
    assert f"Revoked token {token_id}" in out.stdout
    again = localvalue("tokens", "revoke", token_id, "--reason", "again", database_url=url, check=False)
    assert again.returncode == 1
    assert "already" in again.stderr
    active = localvalue("tokens", "list", "--active", database_url=url).stdout.splitlines()
    assert [line.split("\t")[2] for line in active] == ["alex@icb"]
    session.expire_all()
    row = (await session.scalars(select(m.ApiToken).where(m.ApiToken.name == "sam@icb"))).one()
    assert row.revoked_at is not None
    assert row.expires_at is not None
