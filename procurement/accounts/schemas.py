"""API shapes of tokens: what an admin sends to create one, and what is listed (never the token itself)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec

from procurement.models import Role

TokenName = Annotated[str, msgspec.Meta(min_length=3, max_length=200)]


OrgCode = Annotated[str, msgspec.Meta(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9]+$")]


GroupSlug = Annotated[str, msgspec.Meta(min_length=2, max_length=64, pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")]


# Items of the lists below as the OpenAPI document shows them (Litestar drops the bounds of list items).
_ORG_ITEMS = {"extra": {"items": {"type": "string", "minLength": 1, "maxLength": 20, "pattern": r"^[A-Za-z0-9]+$"}}}
_GROUP_ITEMS = {
    "extra": {"items": {"type": "string", "minLength": 2, "maxLength": 64, "pattern": r"^[a-z0-9]+(?:-[a-z0-9]+)*$"}}
}

# What parse_duration reads (days, hours or weeks, more than 0), for the document; the service checks it.
_DURATION = {
    "extra": {
        # one to five digits, not all zero; then the unit
        "pattern": r"^\s*(0{0,4}[1-9]|0{0,3}[1-9][0-9]|0{0,2}[1-9][0-9]{2}|0?[1-9][0-9]{3}|[1-9][0-9]{4})"
        r"\s*[dhwDHW]\s*$"
    }
}


class TokenCreate(msgspec.Struct, forbid_unknown_fields=True):
    """``organisations`` are ids, ODS or GSS codes: one for an editor, the reviewed ones for a reviewer."""

    name: TokenName
    role: Role
    organisations: Annotated[list[OrgCode], msgspec.Meta(max_length=200, extra_json_schema=_ORG_ITEMS)] = []
    groups: Annotated[list[GroupSlug], msgspec.Meta(max_length=50, extra_json_schema=_GROUP_ITEMS)] = []
    expires_in: Annotated[str, msgspec.Meta(max_length=10, examples=["90d"], extra_json_schema=_DURATION)] | None = None


class TokenInfo(msgspec.Struct):
    id: int
    name: str
    role: str
    organisations: list[str]
    groups: list[str]
    token_prefix: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


class NewToken(msgspec.Struct):
    """The token is shown here once; only its hash is kept."""

    token: str
    info: TokenInfo
