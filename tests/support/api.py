"""Helpers for API tests: tokens per role, a few records, and a full-database fingerprint."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from advanced_alchemy.base import metadata_registry
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from procurement import models as m
from procurement.auth import hash_token, new_token


async def make_token(
    session: AsyncSession,
    role: str,
    organisation_id: int | None = None,
    name: str | None = None,
    *,
    reviews: Sequence[int] = (),
    groups: Sequence[int] = (),
    expires_at: dt.datetime | None = None,
) -> str:
    """A user with ``role`` and a token for it. Editors act for ``organisation_id``; reviewers review the
    organisation ids in ``reviews`` and the members of the anchor group ids in ``groups``."""
    user = m.User(
        name=name or f"{role}-{organisation_id}-{new_token()[-6:]}", role=role, organisation_id=organisation_id
    )
    user.scopes = [m.UserScope(organisation_id=i) for i in reviews] + [m.UserScope(group_id=g) for g in groups]
    session.add(user)
    await session.flush()
    token = new_token()
    session.add(
        m.ApiToken(
            user_id=user.id,
            name=user.name,
            token_hash=hash_token(token),
            token_prefix=token[:8],
            expires_at=expires_at,
        )
    )
    await session.commit()
    return token


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


async def make_org(session: AsyncSession, name: str, **kw: Any) -> m.Organisation:
    org = m.Organisation(name=name, kind=kw.pop("kind", "nhs_trust"), name_key=name.lower(), **kw)
    session.add(org)
    await session.commit()
    return org


async def make_supplier(session: AsyncSession, name: str, **kw: Any) -> m.Supplier:
    supplier = m.Supplier(name=name, name_key=name.lower(), **kw)
    session.add(supplier)
    await session.commit()
    return supplier


async def fingerprint(engine: AsyncEngine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, so a test can prove a refused request wrote nothing."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with engine.connect() as conn:
        for table in metadata_registry.get(None).sorted_tables:
            rows = (await conn.execute(select(table).order_by(*table.primary_key.columns))).all()
            out[table.name] = [tuple(r) for r in rows]
    return out


async def count_rows(engine: AsyncEngine, table: str) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())
