"""People and machines that act in the service: users with a role (editors: one organisation; reviewers: the
organisations and anchor groups they review) and their API tokens, shown once, stored hashed, revocable and
optionally expiring."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import clock
from procurement import models as m
from procurement.audit import record_audit
from procurement.auth import Principal, hash_token, new_token
from procurement.db import get_or_not_found
from procurement.errors import ConflictError, InvalidInput
from procurement.organisations.groups import get_group
from procurement.organisations.service import find_organisation

_DURATION = re.compile(r"^\s*(\d{1,5})\s*([dhw])\s*$", re.IGNORECASE)
_UNITS = {"h": dt.timedelta(hours=1), "d": dt.timedelta(days=1), "w": dt.timedelta(weeks=1)}
MAX_LIFETIME = dt.timedelta(days=3 * 366)


def parse_duration(text: str) -> dt.timedelta:
    """``90d``, ``12h`` or ``2w`` as a timedelta (at most three years)."""
    match = _DURATION.match(text)
    if match is None:
        raise InvalidInput(f"expiry {text!r} is not a duration: give days, hours or weeks, e.g. 90d, 12h or 2w")
    value = int(match.group(1)) * _UNITS[match.group(2).lower()]
    if not dt.timedelta(0) < value <= MAX_LIFETIME:
        raise InvalidInput(f"expiry {text!r} must be more than 0 and at most {MAX_LIFETIME.days} days")
    return value


@dataclass(frozen=True)
class TokenRow:
    token: m.ApiToken
    user: m.User
    organisations: tuple[str, ...]  # codes (ODS, GSS) or ids of the user's organisation or reviewing scope
    groups: tuple[str, ...]


def _check_role_scope(role: m.Role, orgs: Sequence[str], groups: Sequence[str]) -> None:
    if role is m.Role.EDITOR and (len(orgs) != 1 or groups):
        raise InvalidInput("an editor needs exactly one --org (e.g. --org RBK) and no --group")
    if role is m.Role.REVIEWER and not (orgs or groups):
        raise InvalidInput(
            "a reviewer reviews named organisations or anchor groups: give --org (e.g. --org RRK) or --group "
            "(e.g. --group birmingham-and-solihull), or use --role cross_reviewer for ICB- or WMCA-wide work"
        )
    if role in (m.Role.ADMIN, m.Role.CROSS_REVIEWER) and (orgs or groups):
        raise InvalidInput(f"a {role.value} acts for every organisation: leave out --org and --group")


async def create_token(
    session: AsyncSession,
    *,
    role: str,
    name: str,
    orgs: Sequence[str] = (),
    groups: Sequence[str] = (),
    expires_in: dt.timedelta | None = None,
    actor: Principal | None = None,
) -> tuple[str, m.ApiToken]:
    """Create (or reuse) the user ``name`` with ``role`` and its scope, and return a new token for it.

    Only the token's SHA-256 is stored. A user that exists already must have the same role and scope.
    """
    try:
        role_ = m.Role(role)
    except ValueError:
        raise InvalidInput(f"role {role!r} is not one of {', '.join(r.value for r in m.Role)}") from None
    _check_role_scope(role_, orgs, groups)
    org_ids = sorted({(await find_organisation(session, code)).id for code in orgs})
    group_ids = sorted({(await get_group(session, slug)).id for slug in groups})
    organisation_id = org_ids[0] if role_ is m.Role.EDITOR else None
    scope = {("org", i) for i in org_ids} | {("group", i) for i in group_ids} if role_ is m.Role.REVIEWER else set()
    user = (await session.scalars(select(m.User).where(m.User.name == name))).first()
    if user is None:
        user = m.User(name=name, role=role_.value, organisation_id=organisation_id)
        user.scopes = [
            m.UserScope(organisation_id=i if kind == "org" else None, group_id=i if kind == "group" else None)
            for kind, i in sorted(scope)
        ]
        session.add(user)
    else:
        have = {("org", s.organisation_id) for s in user.scopes if s.organisation_id is not None} | {
            ("group", s.group_id) for s in user.scopes if s.group_id is not None
        }
        if user.role != role_.value or user.organisation_id != organisation_id or have != scope:
            raise ConflictError(f"user {name!r} exists with another role or scope ({user.role}); use another --name")
    token = new_token()
    await session.flush()
    row = m.ApiToken(
        user_id=user.id,
        name=name,
        token_hash=hash_token(token),
        token_prefix=token[:8],
        expires_at=clock.now() + expires_in if expires_in is not None else None,
    )
    session.add(row)
    await session.flush()
    await record_audit(
        session,
        actor=actor,
        actor_name="cli",
        action="token.create",
        entity_type="api_token",
        entity_id=row.id,
        organisation_id=organisation_id,
        changes={
            "user": (None, name),
            "role": (None, role_.value),
            "token_prefix": (None, token[:8]),
            "scope": (None, [f"{kind}:{i}" for kind, i in sorted(scope)] or None),
            "expires_at": (None, row.expires_at),
        },
    )
    return token, row


async def list_tokens(
    session: AsyncSession, *, limit: int | None = None, offset: int = 0, include_revoked: bool = True
) -> tuple[list[TokenRow], int]:
    conditions = [] if include_revoked else [m.ApiToken.revoked_at.is_(None)]
    total = await session.scalar(select(func.count()).select_from(m.ApiToken).where(*conditions)) or 0
    query = select(m.ApiToken).where(*conditions).order_by(m.ApiToken.id).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    tokens = (await session.scalars(query)).all()
    return await describe_tokens(session, tokens), total


async def describe_tokens(session: AsyncSession, tokens: Sequence[m.ApiToken]) -> list[TokenRow]:
    """Each token with its user and the codes of the organisations and groups it acts for."""
    codes = {
        i: ods or gss or str(i)
        for i, ods, gss in (
            await session.execute(select(m.Organisation.id, m.Organisation.ods_code, m.Organisation.gss_code))
        ).tuples()
    }
    slugs = dict((await session.execute(select(m.AnchorGroup.id, m.AnchorGroup.slug))).tuples().all())
    rows = []
    for t in tokens:
        user = t.user
        orgs = [user.organisation_id] if user.organisation_id is not None else []
        orgs += [s.organisation_id for s in user.scopes if s.organisation_id is not None]
        groups = [slugs[s.group_id] for s in user.scopes if s.group_id is not None]
        rows.append(TokenRow(t, user, tuple(codes.get(i, str(i)) for i in orgs), tuple(groups)))
    return rows


async def revoke_token(session: AsyncSession, token_id: int, *, reason: str, actor: Principal | None) -> m.ApiToken:
    token = await get_or_not_found(session, m.ApiToken, token_id, "token")
    if token.revoked_at is not None:
        raise ConflictError(f"Token {token_id} was revoked on {token.revoked_at.date().isoformat()} already.")
    if not reason.strip():
        raise InvalidInput("say why the token is revoked, e.g. --reason 'left the trust'")
    token.revoked_at = clock.now()
    await record_audit(
        session,
        actor=actor,
        actor_name="cli",
        action="token.revoke",
        entity_type="api_token",
        entity_id=token.id,
        changes={"revoked_at": (None, token.revoked_at), "token_prefix": (token.token_prefix, token.token_prefix)},
        reason=reason.strip(),
    )
    await session.flush()
    return token
