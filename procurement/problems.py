"""One place where every error becomes an RFC 9457 problem body.

Clients always get `application/problem+json` with a 4xx for their mistakes; an unexpected fault is a
plain 500 problem with no stack trace (the trace goes to the server log).
"""

from __future__ import annotations

import difflib
import enum
import logging
import re
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from advanced_alchemy.exceptions import (
    DuplicateKeyError,
    ForeignKeyError,
    IntegrityError,
    NotFoundError,
    RepositoryError,
)
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_403_FORBIDDEN,
    HTTP_404_NOT_FOUND,
    HTTP_409_CONFLICT,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_500_INTERNAL_SERVER_ERROR,
)
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from procurement.errors import ConflictError, DomainError, Forbidden, InvalidInput, NotFound

log = logging.getLogger("localvalue")

PROBLEM_MEDIA_TYPE = "application/problem+json"
# Our problems have no meaning beyond their HTTP status, for which RFC 9457 (4.2.1) gives "about:blank" as the type
# and the status's own phrase (RFC 9110) as the title: an address of our own would promise a page about each type.
PROBLEM_TYPE = "about:blank"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    410: "Gone",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}

# The most specific class wins: DomainError itself is 422.
DOMAIN_STATUS: dict[type[DomainError], int] = {
    InvalidInput: HTTP_400_BAD_REQUEST,
    Forbidden: HTTP_403_FORBIDDEN,
    NotFound: HTTP_404_NOT_FOUND,
    ConflictError: HTTP_409_CONFLICT,
    DomainError: HTTP_422_UNPROCESSABLE_ENTITY,
}


def domain_status(exc: DomainError) -> int:
    return next(DOMAIN_STATUS[k] for k in type(exc).__mro__ if k in DOMAIN_STATUS)


def problem(
    status: int,
    detail: str,
    *,
    instance: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE,
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    return Response(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


# What to send, by the last part of a field's name: shown instead of a parser's words for any bad value there.
FIELD_HINTS = {
    "value": "must be pounds with at most two decimals, like 80000.00",
    "share": "must be pounds with at most two decimals, like 40000.00",
    "target": "must be pounds with at most two decimals, like 5000.00",
    "award_date": "must be a date like 2025-05-12",
    "start_date": "must be a date like 2025-05-12",
    "end_date": "must be a date like 2025-05-12",
    "from": "must be a date like 2025-04-01",
    "to": "must be a date like 2025-06-30",
    "cpv_codes": "must be an 8-digit CPV code like 15894210",
    "cpv": "must be the first 2 to 8 digits of a CPV code, like 158",
    "currency": "must be a three-letter ISO 4217 currency code like GBP",
    "postcode": "must be a UK postcode like B15 2GW",
    "scheme": "must be an identifier scheme like GB-COH or GB-CHC",
    "limit": "must be a whole number from 1 to 200, like 50",
    "offset": "must be a whole number of 0 or more, like 0",
    "quarter": "must be a UK financial-year quarter like 2025Q1 (Q1 is April to June)",
    "period": "must be a quarter like 2025Q1 or a financial year like 2025/26",
    "confirm_postcode": "must be true or false",
}
# Patterns of the shared types, in words (a person never sees the regular expression).
PATTERN_WORDS = {
    r"^[A-Za-z]{2}-[A-Za-z0-9]+$": "an identifier scheme like GB-COH or GB-CHC",
    r"^[A-Za-z0-9]+$": "letters and digits only, like RBK",
    r"^\d{4}Q[1-4]$": "a UK financial-year quarter like 2025Q1 (Q1 is April to June)",
    r"^https?://\S+$": "a web address like https://example.org/certificate",
    r"^[A-Za-z][0-9]{8}$": "a nine-character ONS code like E08000025",
    r"^[a-z0-9]+(?:-[a-z0-9]+)*$": "lower-case words joined by hyphens, like birmingham-and-solihull",
    r"^\d{2,8}$": "the first 2 to 8 digits of a CPV code, like 158",
    r"^[A-Za-z0-9][A-Za-z0-9-]*$": "letters, digits and hyphens, like PPN-0620-1",
}
_JSON_TYPES = {
    "int": "a whole number",
    "float": "a number",
    "str": "text in double quotes",
    "bool": "true or false",
    "array": "a list in square brackets",
    "object": "a JSON object in curly brackets",
    "decimal": "a number",
}
_EXPECTED = re.compile(r"^Expected `([^`]+)`(?:, got `([^`]+)`)?(?: (of length )?([<>]=?) (\S+))?")
_MATCHING = re.compile(r"^Expected `str` matching regex '(.*)'$")
_UNKNOWN = re.compile(r"^Object contains unknown field `([^`]+)`")
_MISSING = re.compile(r"^Object missing required field `([^`]+)`")
# A schema check's message starts with the field it is about: "value has ...", "cpv_codes[0] must ...".
_FIELD_FIRST = re.compile(r"^([a-z_]+)((?:\[\d+\])?)(?=[ .:;,])")
_NESTED_FIELDS = frozenset({"share", "id", "value", "name", "reason", "scheme", "kind", "reference"})


def _hint_key(field: str) -> str:
    """ "suppliers[0].share" -> "share"; "cpv_codes[0]" -> "cpv_codes"."""
    return re.sub(r"\[\d+\]", "", field.rsplit(".", 1)[-1])


def _join(parent: str | None, name: str) -> str:
    return f"{parent}.{name}" if parent else name


def _limit_words(kind: str, op: str, bound: str, *, length: bool) -> str:
    if length:
        unit = "item" if kind == "array" else "character"
        plural = "" if bound == "1" else "s"
        if op == ">=":
            return (
                "must not be empty"
                if bound == "1" and kind != "array"
                else f"must have at least {bound} {unit}{plural}"
            )
        return f"must have at most {bound} {unit}{plural}"
    words = {">=": "at least", "<=": "at most", ">": "more than", "<": "less than"}[op]
    return f"must be a whole number of {words} {bound}" if kind == "int" else f"must be a number of {words} {bound}"


def human_error(
    key: str | None,
    message: str,
    known_fields: Sequence[str] = (),
    choices: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """One validation error as the caller sent it: ``field`` (their name for it, or null for the whole body) and
    a ``message`` that names it and says what to send, with an example; never a type name, regex or parser phrase.
    ``choices``: the values each field that takes one of a fixed list (by the caller's name for it) takes.
    """
    parent = None if key in (None, "", "data") else key
    if match := _UNKNOWN.match(message):
        name = _join(parent, match.group(1))
        close = difflib.get_close_matches(match.group(1), list(known_fields), n=1) if parent is None else []
        suggestion = f" (did you mean '{close[0]}'?)" if close else "; leave it out"
        return {"field": name, "message": f"unknown field '{name}'{suggestion}"}
    if match := _MISSING.match(message):
        name = _join(parent, match.group(1))
        hint = FIELD_HINTS.get(_hint_key(name))
        return {"field": name, "message": f"{name} is required" + (f"; it {hint}" if hint else "")}
    first = _FIELD_FIRST.match(message)
    if parent is None:
        if message.startswith("Expected `object`"):
            return {"field": None, "message": 'the body must be a JSON object, like {"name": "Acme Ltd"}'}
        # A schema's own check: the message already names the field it is about.
        field = first.group(1) + first.group(2) if first and first.group(1) in known_fields else None
        return {"field": field, "message": message}
    if not message.startswith(("Expected", "Invalid", "Number out of range")):
        # A nested schema's own check ("share has more than two decimal places" at suppliers[0]).
        nested = first is not None and first.group(1) in _NESTED_FIELDS
        field = _join(parent, first.group(1)) if first is not None and nested else parent
        return {"field": field, "message": f"{parent}.{message}" if nested else f"{parent}: {message}"}
    wanted = (choices or {}).get(parent)
    if wanted and message.startswith("Invalid enum value"):
        what = f"must be one of: {', '.join(wanted)}"
    else:
        what = _what_to_send(parent, message)
    return {"field": parent, "message": f"{parent} {what}"}


def _what_to_send(field: str, message: str) -> str:
    """A parser's complaint about one value, as what to send instead."""
    hint = FIELD_HINTS.get(_hint_key(field))
    if match := _MATCHING.match(message):
        words = PATTERN_WORDS.get(match.group(1))
        return f"must be {words}" if words else (hint or "is not in the expected form; see /schema/swagger")
    match = _EXPECTED.match(message)
    if match is None:
        return hint or "is not a value this field takes; see /schema/swagger"
    kind, got, length, op, bound = match.groups()
    if got == "null":
        return "cannot be null" + (f"; it {hint}" if hint else "")
    if op and bound and not (hint and not length and _hint_key(field) in {"limit", "offset"}):
        return _limit_words(kind, op, bound, length=bool(length))
    if hint:
        return hint
    wanted = " or ".join(_JSON_TYPES.get(t.strip(), t.strip()) for t in kind.split("|") if t.strip() != "null")
    example = {"int": ", like 3"}.get(kind.split("|")[0].strip(), "")
    return f"must be {wanted}{example}"


def _validation_errors(request: Request[Any, Any, Any], extra: Any) -> list[dict[str, Any]] | None:
    raw = [extra] if isinstance(extra, dict) else extra if isinstance(extra, list) else None
    if raw is None:
        return None
    aliases, known, choices = _caller_names(request)
    out = []
    for error in raw:
        if not isinstance(error, dict):
            out.append({"field": None, "message": str(error)})
            continue
        key = error.get("key")
        if error.get("source") == "query" and isinstance(key, str):
            key = aliases.get(key, key)
        human = human_error(key, str(error.get("message", "")), known, choices)
        if error.get("source") in {"query", "path"}:
            human["source"] = error["source"]
        out.append(human)
    return out


def _caller_names(request: Request[Any, Any, Any]) -> tuple[dict[str, str], list[str], dict[str, list[str]]]:
    """Query parameter aliases (award_from -> from), the body's top-level field names, and the values of each
    parameter or top-level field that takes one of a fixed list, from the handler."""
    aliases: dict[str, str] = {}
    known: list[str] = []
    choices: dict[str, list[str]] = {}
    try:
        signature = request.route_handler.parsed_fn_signature
    except (AttributeError, KeyError):  # the request never reached a handler
        return aliases, known, choices
    for name, definition in signature.parameters.items():
        kwarg = getattr(definition, "kwarg_definition", None)
        query = getattr(kwarg, "query", None) or getattr(kwarg, "name", None)
        if isinstance(query, str) and query:
            aliases[name] = query
        if name == "data":
            for arg in (definition, *getattr(definition, "inner_types", ())):
                struct = getattr(arg, "annotation", None)
                fields = getattr(struct, "__struct_fields__", None)
                if fields:
                    known = list(fields)
                    choices.update({f: values for f, hint in _hints(struct).items() if (values := _choices(hint))})
        elif values := _choices(getattr(definition, "annotation", None)):
            choices[aliases.get(name, name)] = values
    return aliases, known, choices


def _hints(struct: Any) -> dict[str, Any]:
    """The body's field types; none when one cannot be resolved here (a 400 must never become a 500 for want of
    a list of values)."""
    try:
        return typing.get_type_hints(struct)
    except Exception:  # any failure to resolve only loses the list of values
        return {}


def _choices(annotation: Any) -> list[str]:
    """The values a Literal or an Enum (or either, optional) allows, as the caller writes them; [] for others."""
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return [str(member.value) for member in annotation]
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return [str(value) for value in typing.get_args(annotation)]
    if origin in (typing.Union, types.UnionType):
        return [value for arg in typing.get_args(annotation) for value in _choices(arg)]
    return []


_NOT_JSON = (
    'the body is not valid JSON (check quotes, commas and brackets); send a JSON object like {"name": "Acme Ltd"}'
)


def _body_error(detail: str) -> str | None:
    """A body that is not JSON at all, in words."""
    return _NOT_JSON if detail.startswith(("Input data was truncated", "JSON is malformed")) else None


def domain_error_handler(request: Request[Any, Any, Any], exc: DomainError) -> Response[dict[str, Any]]:
    return problem(domain_status(exc), exc.detail, instance=request.url.path)


def http_exception_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    status = exc.status_code
    if status >= HTTP_500_INTERNAL_SERVER_ERROR:
        log.exception("server error on %s %s", request.method, request.url.path, exc_info=exc)
        return problem(status, "The server could not complete the request.", instance=request.url.path)
    detail = exc.detail or _TITLES.get(status, "Error")
    errors = _validation_errors(request, exc.extra) if isinstance(exc, ValidationException) else None
    if isinstance(exc, ValidationException) and errors:
        detail = "; ".join(e["message"] for e in errors) or detail
    elif status == HTTP_400_BAD_REQUEST and (plain := _body_error(detail)):
        detail, errors = plain, [{"field": None, "message": plain}]
    headers = dict(exc.headers or {})  # e.g. Allow on a 405, which RFC 9110 requires
    if isinstance(exc, NotAuthorizedException):
        headers["WWW-Authenticate"] = "Bearer"
    return problem(status, detail, instance=request.url.path, errors=errors, headers=headers or None)


def repository_exception_handler(request: Request[Any, Any, Any], exc: RepositoryError) -> Response[dict[str, Any]]:
    if isinstance(exc, NotFoundError):
        return problem(HTTP_404_NOT_FOUND, "No such record.", instance=request.url.path)
    if isinstance(exc, DuplicateKeyError | IntegrityError | ForeignKeyError):
        return problem(HTTP_409_CONFLICT, "The change conflicts with existing data.", instance=request.url.path)
    log.exception("repository error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(HTTP_500_INTERNAL_SERVER_ERROR, "The server could not complete the request.")


def integrity_exception_handler(request: Request[Any, Any, Any], _exc: SAIntegrityError) -> Response[dict[str, Any]]:
    return problem(HTTP_409_CONFLICT, "The change conflicts with existing data.", instance=request.url.path)


def value_error_handler(request: Request[Any, Any, Any], exc: ValueError) -> Response[dict[str, Any]]:
    # Raised by domain parsing below the API layer (money, dates, postcodes) with a user-facing message.
    return problem(HTTP_400_BAD_REQUEST, str(exc), instance=request.url.path)


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(HTTP_500_INTERNAL_SERVER_ERROR, "The server could not complete the request.")


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    DomainError: domain_error_handler,
    HTTPException: http_exception_handler,
    RepositoryError: repository_exception_handler,
    SAIntegrityError: integrity_exception_handler,
    ValueError: value_error_handler,
    Exception: internal_error_handler,
}
