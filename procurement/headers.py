"""Security headers on every response, and CORS only where the public may read.

``security_headers`` is a ``before_send`` hook, so it also covers responses no route produced (404 for an unknown
path, 405, 500). The Content-Security-Policy is strict for every response, HTML or not: no inline script or style
anywhere in the app, nothing from another origin, no framing.

``PublicCorsMiddleware`` answers cross-origin browsers only for GET and HEAD on operations without guards (public
statements, organisations, health): those get ``Access-Control-Allow-Origin: *`` and their preflight succeeds. A
preflight for anything else (a token-only read, any write) is a 403 problem, and no response that needs a token
ever carries an Access-Control-Allow-Origin header.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.exceptions import MethodNotAllowedException, NotFoundException, PermissionDeniedException
from litestar.middleware import ASGIMiddleware
from litestar.status_codes import HTTP_204_NO_CONTENT

if TYPE_CHECKING:
    from litestar.types import (
        ASGIApp,
        HTTPResponseBodyEvent,
        HTTPResponseStartEvent,
        HTTPScope,
        Message,
        Receive,
        Scope,
        Send,
    )

    from procurement.settings import Settings

# img-src adds data: for the icons Swagger UI's stylesheet embeds as data URIs (an image cannot run code).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'"
)
HSTS = "max-age=31536000; includeSubDomains"
PUBLIC_METHODS = ("GET", "HEAD")
PREFLIGHT_MAX_AGE = "600"


def security_headers(settings: Settings) -> Any:
    fixed = {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin",
    }
    if settings.hsts:
        fixed["Strict-Transport-Security"] = HSTS
    # Encoded once and added to the raw header list (this runs on every response, so no header objects).
    raw = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in fixed.items()]
    ours = frozenset(name for name, _ in raw)

    async def before_send(message: Message, _scope: Scope) -> None:
        if message["type"] == "http.response.start":
            headers = message.get("headers", ())
            if not any(name.lower() in ours for name, _ in headers):  # almost always: none set by the route
                message["headers"] = [*headers, *raw]
                return
            present = {name.lower() for name, _ in headers}
            missing = [header for header in raw if header[0] not in present]
            if missing:
                message["headers"] = [*headers, *missing]

    return before_send


def _header(scope: Scope, name: bytes) -> str | None:
    return next((v.decode("latin-1") for k, v in scope["headers"] if k == name), None)


def is_public_read(scope: Scope, path: str) -> bool:
    """Whether GET on ``path`` reaches a handler without guards, i.e. one the public may call."""
    try:
        _, handler, *_ = scope["litestar_app"].asgi_router.handle_routing(path=path, method="GET")
    except (NotFoundException, MethodNotAllowedException):
        return False
    return not handler.resolve_guards()


async def _send_empty(send: Send, headers: list[tuple[bytes, bytes]]) -> None:
    start: HTTPResponseStartEvent = {"type": "http.response.start", "status": HTTP_204_NO_CONTENT, "headers": headers}
    body: HTTPResponseBodyEvent = {"type": "http.response.body", "body": b"", "more_body": False}
    await send(start)
    await send(body)


async def _answer_options(scope: Scope, send: Send) -> None:
    """204 with every method of the address in Allow (Litestar's own OPTIONS lists only some when a controller
    declares the same path in several handlers)."""
    template = scope.get("path_template")
    methods = {m for route in scope["litestar_app"].routes if route.path_format == template for m in route.methods}
    allow = ", ".join(sorted(methods | {"OPTIONS"})).encode()
    await _send_empty(send, [(b"allow", allow)])


class PublicCorsMiddleware(ASGIMiddleware):
    """CORS for public reads only, and the answer to every OPTIONS request."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        method = cast("HTTPScope", scope)["method"]
        if method == "OPTIONS" and _header(scope, b"access-control-request-method") is None:
            await _answer_options(scope, send)
            return
        if _header(scope, b"origin") is None:
            await next_app(scope, receive, send)
            return
        requested = _header(scope, b"access-control-request-method")
        if method == "OPTIONS" and requested is not None:
            if requested.upper() not in PUBLIC_METHODS or not is_public_read(scope, scope["path"]):
                msg = "Cross-origin requests are allowed only for public reads (GET), not for this address or method."
                raise PermissionDeniedException(msg)
            cors = [
                (b"access-control-allow-origin", b"*"),
                (b"access-control-allow-methods", b"GET, HEAD"),
                (b"access-control-allow-headers", b"Accept, If-None-Match"),
                (b"access-control-max-age", PREFLIGHT_MAX_AGE.encode()),
            ]
            await _send_empty(send, cors)
            return
        if method not in PUBLIC_METHODS or scope["route_handler"].resolve_guards():
            await next_app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                headers["Access-Control-Allow-Origin"] = "*"
                headers["Access-Control-Expose-Headers"] = "ETag, Content-Disposition"
            await send(message)

        await next_app(scope, receive, send_with_cors)
