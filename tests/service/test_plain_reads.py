"""A plain read (GET, no credential, cookie or Origin) takes a shortcut past the middleware chain
(procurement.app.PlainReadShortcut); it must answer exactly as the whole chain does."""

from __future__ import annotations

from typing import Any

from tests.conftest import Database

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
