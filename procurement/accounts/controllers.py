"""HTTP for API tokens (admins): list, create (shown once) and revoke."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, post
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from procurement.accounts.schemas import NewToken, TokenCreate, TokenInfo
from procurement.accounts.service import (
    TokenRow,
    create_token,
    describe_tokens,
    list_tokens,
    parse_duration,
    revoke_token,
)
from procurement.auth import Principal, requires_admin
from procurement.paging import DEFAULT_LIMIT, Limit, Offset
from procurement.schemas import Page


def token_info(row: TokenRow) -> TokenInfo:
    t = row.token
    return TokenInfo(
        id=t.id,
        name=t.name,
        role=row.user.role,
        organisations=list(row.organisations),
        groups=list(row.groups),
        token_prefix=t.token_prefix,
        created_at=t.created_at,
        expires_at=t.expires_at,
        last_used_at=t.last_used_at,
        revoked_at=t.revoked_at,
    )


class TokenController(Controller):
    path = "/tokens"
    tags = ["tokens"]
    guards = [requires_admin]

    @get("/", summary="API tokens, with their role, scope, expiry and last use (admin)")
    async def list_tokens(
        self, db_session: AsyncSession, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
    ) -> Page[TokenInfo]:
        rows, total = await list_tokens(db_session, limit=limit, offset=offset)
        return Page(items=[token_info(r) for r in rows], total=total, limit=limit, offset=offset)

    @post("/", summary="Create a token; it is shown once (admin)")
    async def create_token(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, data: TokenCreate
    ) -> NewToken:
        token, row = await create_token(
            db_session,
            role=data.role.value,
            name=data.name,
            orgs=data.organisations,
            groups=data.groups,
            expires_in=parse_duration(data.expires_in) if data.expires_in else None,
            actor=request.user,
        )
        await db_session.refresh(row, ["user"])
        return NewToken(token=token, info=token_info((await describe_tokens(db_session, [row]))[0]))

    @delete("/{token_id:int}", summary="Revoke a token; requests with it get 401 from now on (admin)")
    async def revoke_token(
        self,
        request: Request[Principal, Any, Any],
        db_session: AsyncSession,
        token_id: int,
        reason: str = Parameter(
            min_length=3, max_length=1000, description="Why (kept in the audit trail), e.g. 'left the trust'."
        ),
    ) -> None:
        await revoke_token(db_session, token_id, reason=reason, actor=request.user)
