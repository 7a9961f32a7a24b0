"""Shared steps of the tests of the copies on disk behind /metrics (``procurement.metrics.linecache``): the lines,
the stored tiers and the payment lines, each keyed by a token that database triggers renew."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from procurement import models as m
from procurement.metrics import linecache
from procurement.organisations.seed import seed_anchors
from tests.conftest import Database
from tests.support.api import bearer, make_supplier, make_token

Before = tuple[str | None, Any]  # the token and the copy's inode after the last check


@dataclass(frozen=True)
class Place:
    """Birmingham City Council with a supplier in Birmingham and one in London, and tokens to change things."""

    bcc: int
    brum: m.Supplier
    london: m.Supplier
    editor: dict[str, str]
    reviewer: dict[str, str]
    admin: dict[str, str]


async def make_place(session: AsyncSession) -> Place:
    await seed_anchors(session)
    await session.commit()
    orgs = {o.gss_code or o.ods_code: o.id for o in (await session.scalars(select(m.Organisation))).all()}
    bcc = orgs["E08000025"]
    brum = await make_supplier(session, "Edgbaston Catering Ltd", postcode="B15 2GW")
    london = await make_supplier(session, "Westminster Consulting Ltd", postcode="SW1A 1AA")
    editor = bearer(await make_token(session, "editor", bcc))
    reviewer = bearer(await make_token(session, "cross_reviewer"))
    admin = bearer(await make_token(session, "admin"))
    await session.commit()
    return Place(bcc, brum, london, editor, reviewer, admin)


async def post_contract(app_client: Any, place: Place, buyer_id: int | None = None) -> int:
    """A contract of the council (or, by the admin, of another buyer) with both suppliers; its id."""
    r = await app_client.post(
        "/contracts",
        json={"buyer_id": buyer_id or place.bcc, "title": "Meals", "value": "3000.00", "currency": "GBP",
              "award_date": "2025-05-01", "start_date": "2025-05-01", "end_date": "2026-04-30",
              "suppliers": [{"supplier_id": place.brum.id}, {"supplier_id": place.london.id}]},
        headers=place.admin if buyer_id else place.editor,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def by_sql(db: Database, statement: str, **params: Any) -> None:
    """Plain SQL, outside the ORM, committed with the data version bumped by hand (as the answers cached in
    memory need): the database's triggers must still see it."""
    async with db.engine.begin() as conn:
        await conn.execute(text(statement), params)
        await conn.execute(text("UPDATE data_version SET version = version + 1"))


async def copy_of(s: AsyncSession, kind: linecache.Kind) -> Path | None:
    """This kind's copy for the token the session sees, when written."""
    token = await linecache.token(s, kind)
    conn = await s.connection()
    found = linecache.folder(conn.engine.url.render_as_string(hide_password=True)) / f"{kind.prefix}{token}.arrow"
    return found if found.exists() else None


async def check_copy(
    db: Database,
    app_client: Any,
    place: Place,
    kind: linecache.Kind,
    change: str,
    same_as_the_database: Callable[[AsyncSession, str], Awaitable[None]],
    *,
    changed: bool | None,
    before: Before,
    query: str = "",
) -> Before:
    """After ``change``: GET /metrics writes the copy of this kind; its token moved exactly when the content did
    (``changed``; None: either way), an unchanged copy is kept, reads through it equal the database, and
    reading through it does not write it again. ``query``: more of the request's query (``&basis=paid``)."""
    async with async_sessionmaker(db.engine, expire_on_commit=False)() as s:
        r = await app_client.get(f"/metrics?anchor_id={place.bcc}{query}", headers=place.reviewer)
        assert r.status_code == 200, (change, r.text)
        await linecache.written()
        token = await linecache.token(s, kind)
        assert token is not None
        if changed is not None:
            assert (token != before[0]) == changed, f"{change}: the {kind.token_column} must move with its content"
        copy = await copy_of(s, kind)
        assert copy is not None, f"{change}: /metrics should have written the copy"
        kept = copy.stat().st_ino
        if changed is False:
            assert kept == before[1], f"{change} left the content alone: the copy is kept"
        await same_as_the_database(s, change)
        assert copy.stat().st_ino == kept, "a read through a copy does not write it again"
        return token, kept
