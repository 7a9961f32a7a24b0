"""What every signed-in page shares: the workspace navigation, and errors shown as pages, not JSON.

Controllers of pages set ``exception_handlers=PAGE_EXCEPTION_HANDLERS``: someone not signed in is sent to
the sign-in page (and back afterwards); a refusal, a bad filter or a missing record is an NHS.UK-styled page
with the same status code the API would give.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote, urlsplit

from litestar import Request, Response
from litestar.datastructures import ResponseHeader
from litestar.exceptions import HTTPException, NotAuthorizedException, PermissionDeniedException, ValidationException
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER, HTTP_400_BAD_REQUEST, HTTP_403_FORBIDDEN, HTTP_404_NOT_FOUND

from procurement.auth import Principal, current_principal
from procurement.errors import DomainError
from procurement.models import Role
from procurement.problems import domain_status, http_exception_handler

log = logging.getLogger("localvalue")

# Pages show one person's view of live data: never kept by a browser or a proxy.
NO_STORE = [ResponseHeader(name="Cache-Control", value="no-store")]
SIGN_IN_PATH = "/sign-in"
WORKSPACE_PATH = "/workspace"
SETTINGS_STATE_KEY = "localvalue_settings"

_KEEPERS = frozenset({Role.EDITOR, Role.ADMIN})  # those who keep an organisation's own records
_REVIEWERS = frozenset({Role.REVIEWER, Role.CROSS_REVIEWER, Role.ADMIN})  # those who publish statements
_NAV: tuple[tuple[str, str, frozenset[Role] | None], ...] = (
    ("Dashboard", "/workspace", None),
    ("My organisation", "/workspace/organisation", frozenset({Role.EDITOR})),
    ("Contracts", "/workspace/contracts", frozenset({Role.EDITOR})),
    ("Suppliers", "/workspace/suppliers", _KEEPERS),
    ("Lines", "/workspace/lines", None),
    ("Review", "/workspace/review", None),
    ("Commitments", "/workspace/commitments", None),
    ("Statements", "/workspace/statements", _REVIEWERS),
    ("Data quality", "/workspace/imports", None),
    ("Users", "/workspace/users", frozenset({Role.ADMIN})),
)

_TITLES = {
    400: "There is a problem with the request",
    403: "You cannot see this page",
    404: "Page not found",
    409: "This conflicts with the current data",
    422: "This cannot be done",
    429: "Too many attempts",
}


def navigation(principal: Principal | None, current: str) -> list[dict[str, Any]]:
    """The workspace menu for this person: admins also get Users. ``current`` is the path of the page."""
    if principal is None:
        return []
    return [
        {"text": text, "href": href, "current": href == current}
        for text, href, roles in _NAV
        if roles is None or principal.role in roles
    ]


def page_context(request: Request[Any, Any, Any], current: str, **context: Any) -> dict[str, Any]:
    principal = current_principal(request)
    return {"navigation": navigation(principal, current), "principal": principal, **context}


def safe_next(target: str | None) -> str:
    """Only a path on this site (never //other.host or a scheme): an open redirect would help phishing."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return WORKSPACE_PATH
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return WORKSPACE_PATH
    return target


def _sign_in(request: Request[Any, Any, Any], _exc: Exception) -> Response[Any]:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":
        target = WORKSPACE_PATH
    return Redirect(f"{SIGN_IN_PATH}?next={quote(target, safe='/')}", status_code=HTTP_303_SEE_OTHER)


def error_page(request: Request[Any, Any, Any], status: int, detail: str, title: str | None = None) -> Template:
    principal = current_principal(request)
    return Template(
        template_name="workspace/error.html",
        context={
            "navigation": navigation(principal, ""),
            "principal": principal,
            "status": status,
            "heading": title or _TITLES.get(status, "Something went wrong"),
            "detail": detail,
        },
        status_code=status,
    )


def _forbidden(request: Request[Any, Any, Any], exc: PermissionDeniedException) -> Response[Any]:
    detail = exc.detail or "You cannot do this."
    if "CSRF" in detail:
        detail = (
            "The form could not be accepted because its security token was missing or out of date. "
            "Go back, reload the page and try again."
        )
    return error_page(request, HTTP_403_FORBIDDEN, detail)


def _domain(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    return error_page(request, domain_status(exc), exc.detail)


def _value(request: Request[Any, Any, Any], exc: ValueError) -> Response[Any]:
    return error_page(request, HTTP_400_BAD_REQUEST, str(exc))


def _http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if exc.status_code >= 500:
        log.exception("server error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_page(
            request,
            exc.status_code,
            "The server could not complete the request.",
            "Sorry, there is a problem with the service",
        )
    detail = exc.detail or _TITLES.get(exc.status_code, "Error")
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list):
        parts = [f"{e.get('key')}: {e.get('message')}" for e in exc.extra if isinstance(e, dict)]
        detail = "; ".join(parts) or detail
    return error_page(request, exc.status_code, detail)


# An address no route answers, as the NHS.UK pattern words it for someone who typed or pasted it.
_NO_PAGE = "If you typed the web address, check it is correct. If you pasted it, check you copied the whole address."


def unrouted_as_page(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """The app's handler of HTTP errors: an address no route answers (404), asked for by a browser, is a page a
    person can act on; everything else, and anyone who does not ask for HTML first (API clients, curl), gets the
    problem document."""
    routed = request.scope.get("route_handler") is not None
    wanted = request.accept.best_match(["application/json", "text/html"], default="application/json")
    if routed or wanted != "text/html" or exc.status_code != HTTP_404_NOT_FOUND:
        return http_exception_handler(request, exc)
    return error_page(request, HTTP_404_NOT_FOUND, _NO_PAGE)


PAGE_EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    NotAuthorizedException: _sign_in,
    PermissionDeniedException: _forbidden,
    DomainError: _domain,
    ValueError: _value,
    HTTPException: _http,
}
