"""A plain read (GET, no cookie or Origin) takes a shortcut past the middleware chain (only the input guard and, with
an Authorization header, the token middleware: procurement.app.PlainReadShortcut); it must answer exactly as the
whole chain does."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import Database
from tests.support.api import bearer, make_token

# A cookie that is no session: the request then goes through every middleware, and should answer the same.
THROUGH_THE_CHAIN = {"cookie": "unrelated=1"}


async def _answer(client: Any, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    response = await client.get(path, headers=headers)
    kept = {k: v for k, v in response.headers.items() if k not in {"date", "content-length", "set-cookie"}}
    return response.status_code, kept, response.content


async def test_a_plain_read_answers_as_the_whole_chain_does(db: Database, app_client: Any) -> None:
    for path in ("/health", "/public/statements", "/organisations?limit=5", "/contracts", "/nowhere", "/?q=%00"):
        shortcut = await _answer(app_client, path, {})
        chain = await _answer(app_client, path, THROUGH_THE_CHAIN)
        assert shortcut == chain, path
    assert (await app_client.get("/contracts")).status_code == 401  # guards apply: no token, no read
    refused = await app_client.get("/public/statements?period=%00")
    assert refused.status_code == 400  # the input guard's check is made on the shortcut too
    assert "NUL" in refused.json()["detail"]
    assert refused.headers["x-content-type-options"] == "nosniff"


async def test_a_read_with_a_token_answers_as_the_whole_chain_does(
    db: Database, session: AsyncSession, app_client: Any
) -> None:
    good = bearer(await make_token(session, "admin"))
    bad = bearer("lv_not-a-token")
    for path, headers, status in (
        ("/contracts", good, 200),
        ("/tokens", good, 200),
        ("/contracts", bad, 401),
        ("/health", bad, 200),  # no token needed there, so a bad one is not looked at
        ("/contracts", {"authorization": "Basic eDp5"}, 401),
    ):
        shortcut = await _answer(app_client, path, headers)
        chain = await _answer(app_client, path, headers | THROUGH_THE_CHAIN)
        assert shortcut[0] == status, path
        assert shortcut == chain, path
