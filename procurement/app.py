"""The composition root: the only module that wires HTTP, database, CLI and the domain together."""

from __future__ import annotations

import datetime as dt
import gc
import logging
import warnings
from collections.abc import Awaitable
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from advanced_alchemy.extensions.litestar import SQLAlchemyPlugin
from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.handlers import HTTPRouteHandler
from litestar.middleware import DefineMiddleware
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.routes import HTTPRoute

from procurement.accounts.controllers import SignInController, TokenController, UserAdminController
from procurement.accounts.sessions import (
    PAGE_PREFIXES,
    PageCSRFMiddleware,
    SessionAuthenticationMiddleware,
    csrf_config,
)
from procurement.auth import TokenAuthenticationMiddleware, TokenUsePlugin
from procurement.cli import LocalValueCLIPlugin
from procurement.contracts.controllers import ContractController
from procurement.db import ALCHEMY_STATE_KEY, close_changes, make_alchemy_config
from procurement.hardening import GuardedRequest, InputGuardMiddleware, check_input
from procurement.head import head_as_get
from procurement.headers import PUBLIC_METHODS, PublicCorsMiddleware, security_headers
from procurement.health import HealthController, app_version
from procurement.imports.controllers import ImportController
from procurement.metrics.controllers import CommitmentController, Lm3Controller, MeasureController, MetricsController
from procurement.openapi import BEARER, LocalSwaggerPlugin, finish_openapi
from procurement.organisations.controllers import AnchorGroupController, OrganisationController
from procurement.problems import EXCEPTION_HANDLERS
from procurement.procure.controllers import ProcurementController
from procurement.procure.upload_controllers import ProcurementUploadController
from procurement.public.controllers import PublicPagesController
from procurement.settings import Settings, get_settings
from procurement.spend.controllers import SpendController
from procurement.statements.controllers import PublicStatementController, StatementController
from procurement.suppliers.controllers import (
    ClassificationController,
    SupplierChangeRequestController,
    SupplierController,
)
from procurement.suppliers.register_controllers import RegisterMatchController
from procurement.web.frame import SETTINGS_STATE_KEY, unrouted_as_page
from procurement.web.pages import accessibility_statement_route
from procurement.web.setup import static_files_router, template_config
from procurement.workspace.commitments import CommitmentPagesController
from procurement.workspace.controllers import WorkspaceController
from procurement.workspace.review_controllers import ReviewController
from procurement.workspace.statements import StatementPagesController

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Receive, Scope, Send

# When the accessibility statement was prepared (WCAG 2.2 AA, tested with axe-core in Chromium).
ACCESSIBILITY_PREPARED = dt.date(2026, 12, 6)


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    alchemy = make_alchemy_config(settings)
    logging.basicConfig(level=logging.INFO if settings.debug else logging.WARNING)
    app = Litestar(
        route_handlers=[
            HealthController,
            PublicPagesController,
            PublicStatementController,
            StatementController,
            OrganisationController,
            RegisterMatchController,
            SupplierController,
            ContractController,
            ImportController,
            ClassificationController,
            MetricsController,
            MeasureController,
            CommitmentController,
            AnchorGroupController,
            Lm3Controller,
            SpendController,
            TokenController,
            SupplierChangeRequestController,
            SignInController,
            UserAdminController,
            WorkspaceController,
            ProcurementController,
            ProcurementUploadController,
            ReviewController,
            StatementPagesController,
            CommitmentPagesController,
            static_files_router(),
            accessibility_statement_route(settings.accessibility_contact, prepared=ACCESSIBILITY_PREPARED),
        ],
        template_config=template_config(),
        plugins=[SQLAlchemyPlugin(config=alchemy), LocalValueCLIPlugin(), TokenUsePlugin()],
        on_shutdown=[partial(close_changes, alchemy.get_engine())],
        state=State({ALCHEMY_STATE_KEY: alchemy, SETTINGS_STATE_KEY: settings}),
        middleware=_middleware(settings),
        request_class=GuardedRequest,
        before_send=[security_headers(settings)],
        exception_handlers={**EXCEPTION_HANDLERS, HTTPException: unrouted_as_page},
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Local Value",
            version=app_version(),
            description=(
                "Local procurement and social-value tracking for health and care anchor institutions. "
                "Writes need `Authorization: Bearer <token>`; errors are RFC 9457 problem documents."
            ),
            path="/schema",
            render_plugins=[LocalSwaggerPlugin(path=["/swagger", "/"])],
            use_handler_docstrings=True,
            components=Components(
                security_schemes={BEARER: SecurityScheme(type="http", scheme="bearer", description="API token")}
            ),
        ),
        debug=False,
    )
    finish_openapi(app)
    _guards_without_copies(app)
    app.asgi_handler = head_as_get(app.asgi_handler)
    return app


def create_served_app() -> Litestar:
    """The app as `localvalue run` serves it: ``create_app`` plus a garbage-collector freeze once started.

    Everything alive after start-up (modules, routes, the ORM's mappings) lives as long as the worker, yet each
    full collection walked all of it: pauses of tens of milliseconds, the slowest 1% of answers under load. Frozen,
    those objects are left out of collections (they are still freed by reference counting). Not in
    ``create_app``: tests build many apps in one process, and frozen cycles would never be collected there."""
    app = create_app()
    app.on_startup.append(_freeze_survivors)
    return app


def _freeze_survivors() -> None:
    gc.collect()
    gc.freeze()


def _guards_without_copies(app: Litestar) -> None:
    """Litestar hands every guard a fresh copy of its route handler, tens of microseconds on each guarded request;
    our guards never look at the handler (``procurement.auth.requires_*``), so each handler passes itself."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler, _ in route.route_handler_map.values():
            if handler.resolve_guards():
                handler.__class__ = _passing_itself(type(handler))


_PASSING_ITSELF: dict[type[HTTPRouteHandler], type[HTTPRouteHandler]] = {}


def _passing_itself(kind: type[HTTPRouteHandler]) -> type[HTTPRouteHandler]:
    made = _PASSING_ITSELF.get(kind)
    if made is None:
        made = _PASSING_ITSELF[kind] = _subclass_passing_itself(kind)
    return made


def _subclass_passing_itself(kind: type[HTTPRouteHandler]) -> type[HTTPRouteHandler]:
    async def authorize_connection(self: HTTPRouteHandler, connection: ASGIConnection[Any, Any, Any, Any]) -> None:
        for guard in self.resolve_guards():
            await cast("Awaitable[None]", guard(connection, self))  # made async by resolve_guards

    # No slots of its own: the same layout, so an existing handler can take this class. Litestar 2 warns against
    # subclassing its get/post/... classes (they become functions in 3.0); this adds one method to what they made.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return type(kind.__name__, (kind,), {"__slots__": (), "authorize_connection": authorize_connection})


def _middleware(settings: Settings) -> list[Any]:
    """Bad bytes refused first; CORS on public reads only; a bearer token, else a session cookie gives the same
    Principal; then CSRF on forms. A plain read takes a shortcut past the ones with nothing to do for it."""
    token = DefineMiddleware(TokenAuthenticationMiddleware, exclude=["^/schema"])
    chain = [
        InputGuardMiddleware(),
        PublicCorsMiddleware(),
        token,
        SessionAuthenticationMiddleware(idle=dt.timedelta(minutes=settings.session_idle_minutes)),
        DefineMiddleware(PageCSRFMiddleware, config=csrf_config(settings)),
    ]
    return [PlainReadShortcut(chain, token)]


# A header either of which gives CORS, the session or CSRF middleware something to do.
_NOT_PLAIN = frozenset({b"cookie", b"origin"})


def _plain_read(scope: Scope) -> bool:
    """GET or HEAD outside the pages, with no cookie or Origin: of the middleware in ``_middleware`` only the
    input guard and the token check (when there is an Authorization header) have anything to do."""
    if scope["type"] != ScopeType.HTTP or scope["method"] not in PUBLIC_METHODS:
        return False
    if str(scope["path"]).startswith(PAGE_PREFIXES):
        return False
    return not any(name in _NOT_PLAIN for name, _ in scope["headers"])


def _has_authorization(scope: Scope) -> bool:
    return any(name == b"authorization" for name, _ in scope["headers"])


class PlainReadShortcut:
    """The middleware chain, or for a plain read (``_plain_read``) only the layers with something to do for it,
    without the others' per-layer cost: the input guard's checks, then the token middleware itself when the
    request has an Authorization header, else an anonymous caller (as the token middleware marks one) straight to
    the route. Guards, handlers and the security headers (``before_send``) apply to every path alike."""

    def __init__(self, chain: list[Any], token: DefineMiddleware) -> None:
        self.chain = chain
        self.token = token

    def __call__(self, app: ASGIApp) -> ASGIApp:
        full = app
        for middleware in reversed(self.chain):
            full = middleware(app=full)
        with_token = self.token(app=app)

        async def entry(scope: Scope, receive: Receive, send: Send) -> None:
            if not _plain_read(scope):
                await full(scope, receive, send)
                return
            check_input(scope)
            if _has_authorization(scope):
                await with_token(scope, receive, send)
                return
            scope["user"] = None
            scope["auth"] = None
            await app(scope, receive, send)

        return entry
