"""People and machines that act in the service: users with a role (and, for editors, an organisation) and their
API tokens, shown once and stored hashed."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.audit import record_audit
from procurement.auth import hash_token, new_token
from procurement.errors import ConflictError, InvalidInput
from procurement.organisations.service import find_organisation


async def create_token(session: AsyncSession, *, role: str, org: str | None, name: str) -> str:
    """Create (or reuse) the user ``name`` with ``role`` and return a new token for it; only its hash is stored."""
    organisation_id = (await find_organisation(session, org)).id if org is not None else None
    if role == "editor" and organisation_id is None:
        raise InvalidInput("an editor token needs --org: editors act only for their organisation")
    user = (await session.scalars(select(m.User).where(m.User.name == name))).first()
    if user is None:
        user = m.User(name=name, role=role, organisation_id=organisation_id)
        session.add(user)
    elif user.role != role or user.organisation_id != organisation_id:
        raise ConflictError(f"user {name!r} exists with role {user.role}; use another --name")
    token = new_token()
    await session.flush()
    session.add(m.ApiToken(user_id=user.id, name=name, token_hash=hash_token(token), token_prefix=token[:8]))
    await record_audit(
        session,
        actor=None,
        actor_name="cli",
        action="token.create",
        entity_type="user",
        entity_id=user.id,
        organisation_id=organisation_id,
        changes={"role": (None, role), "token_prefix": (None, token[:8])},
    )
    return token
