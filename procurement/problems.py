"""One place where every error becomes an RFC 9457 problem body.

Clients always get `application/problem+json` with a 4xx for their mistakes; an unexpected fault is a
plain 500 problem with no stack trace (the trace goes to the server log).
"""

from __future__ import annotations

import logging
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
PROBLEM_TYPE_BASE = "https://localvalue.example/problems/"

_TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
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
        "type": f"{PROBLEM_TYPE_BASE}{status}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    return Response(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _validation_errors(extra: Any) -> list[dict[str, Any]] | None:
    if isinstance(extra, list):
        return [e if isinstance(e, dict) else {"message": str(e)} for e in extra]
    if isinstance(extra, dict):
        return [extra]
    return None


def _describe(error: dict[str, Any]) -> str:
    message = str(error.get("message", "invalid value"))
    key = error.get("key")
    # msgspec reports __post_init__ failures against the whole body ("data"); the message already names the field.
    return f"{key}: {message}" if key and key != "data" and key not in message else message


def domain_error_handler(request: Request[Any, Any, Any], exc: DomainError) -> Response[dict[str, Any]]:
    return problem(domain_status(exc), exc.detail, instance=request.url.path)


def http_exception_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    status = exc.status_code
    if status >= HTTP_500_INTERNAL_SERVER_ERROR:
        log.exception("server error on %s %s", request.method, request.url.path, exc_info=exc)
        return problem(status, "The server could not complete the request.", instance=request.url.path)
    detail = exc.detail or _TITLES.get(status, "Error")
    errors = _validation_errors(exc.extra) if isinstance(exc, ValidationException) else None
    if isinstance(exc, ValidationException) and errors:
        detail = "; ".join(_describe(e) for e in errors) or detail
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
