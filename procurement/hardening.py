"""Request-level input limits that no single endpoint should have to remember.

Types bound each field (``procurement.schemas``, ``procurement.money``); this module refuses, for every route at
once, what no field type can see: NUL bytes and broken UTF-8 in the path or query string (PostgreSQL cannot store
NUL, and a lone surrogate cannot be encoded for the driver), JSON nested deeper than any of our documents, and
strings in a JSON body that hold a NUL. Each is a 400 problem document, never a 500.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_to_bytes

from litestar import Request
from litestar.exceptions import ValidationException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

# Our deepest request body is three levels (a contract's suppliers' shares); 32 leaves room and stays far below
# the recursion limit of the JSON decoder.
MAX_JSON_DEPTH = 32


def _check_text(raw: bytes, where: str) -> None:
    decoded = unquote_to_bytes(raw)
    if b"\x00" in decoded:
        msg = f"The {where} contains a NUL character (%00); remove it."
        raise ValidationException(msg)
    try:
        decoded.decode("utf-8")
    except UnicodeDecodeError as exc:
        msg = f"The {where} is not valid UTF-8 text (byte {exc.start + 1} after decoding %-escapes)."
        raise ValidationException(msg) from exc


class InputGuardMiddleware(ASGIMiddleware):
    """Refuses a path or query string with a NUL byte or invalid UTF-8 before any handler or database sees it."""

    scopes = ("http",)  # type: ignore[assignment]

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
        _check_text(raw_path, "address")
        _check_text(scope.get("query_string", b""), "query string")
        await next_app(scope, receive, send)


def check_json_value(value: Any) -> None:
    """Walks a decoded JSON document without recursion: refuses NUL in any string (keys too) and deep nesting."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                msg = "A text value in the request body contains a NUL character (\\u0000); remove it."
                raise ValidationException(msg)
        elif isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                msg = f"The request body is nested more than {MAX_JSON_DEPTH} levels deep."
                raise ValidationException(msg)
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


class GuardedRequest(Request[Any, Any, Any]):
    """The app's request class: JSON bodies pass ``check_json_value`` before any handler sees them."""

    async def json(self) -> Any:
        try:
            value = await super().json()
        except RecursionError as exc:
            msg = f"The request body is nested more than {MAX_JSON_DEPTH} levels deep."
            raise ValidationException(msg) from exc
        check_json_value(value)
        return value
