"""Request-level input limits that no single endpoint should have to remember.

Types bound each field (``procurement.schemas``, ``procurement.money``); this module refuses, for every route at
once, what no field type can see: NUL bytes and broken UTF-8 in the path or query string (PostgreSQL cannot store
NUL, and a lone surrogate cannot be encoded for the driver), JSON nested deeper than any of our documents,
strings in a JSON body that hold a NUL, and JSON values of the wrong type that Litestar's lax conversion would
coerce. Each is a 400 problem document, never a 500.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import unquote_to_bytes

import msgspec
from litestar import Request
from litestar.enums import ScopeType
from litestar.exceptions import SerializationException, ValidationException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Empty, Receive, Scope, Send

# JSON numbers with a fraction or exponent decode straight to Decimal, exactly as written: money never passes
# through a binary float (where 1e-999999999 would become 0.00 and 1E+999999999 an unreadable number).
_JSON = msgspec.json.Decoder(float_hook=Decimal)

# Our deepest request body is three levels (a contract's suppliers' shares); 32 leaves room and stays far below
# the recursion limit of the JSON decoder.
MAX_JSON_DEPTH = 32


def _check_text(raw: bytes, where: str) -> None:
    if raw.isascii() and b"%" not in raw and b"\x00" not in raw:
        return  # nothing escaped, no NUL, and ASCII is UTF-8: what almost every request sends
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

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        check_input(scope)
        await next_app(scope, receive, send)


def check_input(scope: Scope) -> None:
    """``InputGuardMiddleware``'s checks of one request."""
    raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
    _check_text(raw_path, "address")
    _check_text(scope.get("query_string", b""), "query string")


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


def _check_strict_types(value: Any, annotation: Any) -> None:
    """Refuses a body that only fits its type after coercion (``0`` for a boolean, ``"5"`` for an integer).

    Litestar converts bodies with msgspec's lax rules, made for query strings; JSON has real types, and the OpenAPI
    document promises them. Anything else wrong with the body is left to Litestar's own validation (and messages).
    """
    try:
        msgspec.convert(value, annotation, strict=True)
    except msgspec.ValidationError as strict_error:
        try:
            msgspec.convert(value, annotation, strict=False)
        except (msgspec.ValidationError, ValueError, TypeError):
            return
        message, _, where = str(strict_error).rpartition(" - at ")
        key = where.strip("`").removeprefix("$").removeprefix(".") or "data"
        raise ValidationException(
            f"{key}: {message}", extra=[{"message": message or str(strict_error), "key": key, "source": "body"}]
        ) from strict_error


class GuardedRequest(Request[Any, Any, Any]):
    """The app's request class: JSON bodies pass ``check_json_value`` and strict JSON types before any handler."""

    async def json(self) -> Any:
        if self._json is not Empty:
            return self._json
        try:
            value = _JSON.decode(await self.body() or b"null")
        except msgspec.DecodeError as exc:
            raise SerializationException(str(exc)) from exc  # Litestar's own 400 for unreadable JSON
        except RecursionError as exc:
            msg = f"The request body is nested more than {MAX_JSON_DEPTH} levels deep."
            raise ValidationException(msg) from exc
        check_json_value(value)
        data = self.route_handler.parsed_fn_signature.parameters.get("data")
        if data is not None:
            _check_strict_types(value, data.annotation)
        self._json = value
        return value
