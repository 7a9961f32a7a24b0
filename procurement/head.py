"""HEAD answered for every GET route: the GET answer's status and headers, without its body.

Litestar routes HEAD only to handlers declared for it, so a monitor or link checker that sends HEAD (many do by
default) was told 405 even for /health. HEAD becomes GET before routing, so it runs exactly the GET's handler,
guards and caches (a cached answer is never made or kept as a body-less one), and its body is dropped on the way
out: the headers, Content-Length included, are those a GET would get, as RFC 9110 (9.3.2) asks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar.enums import ScopeType

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send


def head_as_get(app: ASGIApp) -> ASGIApp:
    async def entry(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["method"] != "HEAD":
            await app(scope, receive, send)
            return
        # The same scope (hooks that run on sending read what the handler left in it), given back its method as the
        # answer starts, so the server knows no body follows the headers.
        scope["method"] = "GET"
        ended = False

        async def without_body(message: Message) -> None:
            nonlocal ended
            if message["type"] != "http.response.body":
                if message["type"] == "http.response.start":
                    scope["method"] = "HEAD"
                await send(message)
            elif not ended and not message.get("more_body", False):
                ended = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        await app(scope, receive, without_body)

    return entry
