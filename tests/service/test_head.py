"""HEAD on every GET route: the GET answer's status and headers, no body, and nothing kept from it that a later GET
would get (the reused answers of /health and /public/statements are made by GETs only)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Database


async def _send(app: Any, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    """One request straight into the app, with every message it sends kept (a client would drop a HEAD's body)."""
    raw_path, _, query = path.partition("?")
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": raw_path, "raw_path": raw_path.encode(), "query_string": query.encode(), "root_path": "",
        "headers": [(b"host", b"testserver")], "client": ("127.0.0.1", 1), "server": ("testserver", 80),
    }  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"] if k.lower() != b"date"}
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert sent[-1]["type"] == "http.response.body"
    assert not sent[-1].get("more_body", False)
    return start["status"], headers, body


def _sent(client: Any, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    """``_send`` on the loop the client runs the app on: its pooled connections belong to that loop."""
    result: tuple[int, dict[str, str], bytes] = client.blocking_portal.call(_send, client.app, method, path)
    return result


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/health", 200),
        ("/public/statements", 200),
        ("/", 200),
        ("/organisations?limit=5", 200),
        ("/static/nhsuk/nhsuk-frontend-10.6.1.min.css", 200),
        ("/no-such-page", 404),
        ("/metrics?period=2025Q1", 401),
    ],
)
async def test_head_is_the_get_answer_without_its_body(db: Database, app_client: Any, path: str, status: int) -> None:
    head_first = _sent(app_client, "HEAD", path)
    got = _sent(app_client, "GET", path)
    head = _sent(app_client, "HEAD", path)
    again = _sent(app_client, "GET", path)

    assert got[0] == status, got[:2]
    assert got[2]
    for answer in (head_first, head):
        assert answer[0] == status
        assert answer[2] == b""
        assert answer[1] == got[1]  # Content-Length and Content-Type included: what the GET would send
    assert int(head[1]["content-length"]) == len(got[2])
    # A HEAD first made no body-less answer that a GET is then given.
    assert again[:2] == got[:2]
    assert len(again[2]) == len(got[2])


async def test_a_post_route_still_refuses_head(db: Database, app_client: Any) -> None:
    status, headers, body = _sent(app_client, "HEAD", "/sign-out")
    assert status == 405
    assert body == b""
    assert "POST" in headers.get("allow", "")
