"""The composition root: the only module that wires HTTP, database, CLI and the domain together."""

from __future__ import annotations

import datetime as dt
import gc
import logging
from typing import Any

from advanced_alchemy.extensions.litestar import SQLAlchemyPlugin
from litestar import Litestar
from litestar.datastructures import State
from litestar.middleware import DefineMiddleware
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from procurement.accounts.controllers import SignInController, TokenController, UserAdminController
from procurement.accounts.sessions import PageCSRFMiddleware, SessionAuthenticationMiddleware, csrf_config
from procurement.auth import TokenAuthenticationMiddleware, TokenUsePlugin
from procurement.cli import LocalValueCLIPlugin
from procurement.contracts.controllers import ContractController
from procurement.db import ALCHEMY_STATE_KEY, make_alchemy_config
from procurement.hardening import GuardedRequest, InputGuardMiddleware
from procurement.headers import PublicCorsMiddleware, security_headers
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
from procurement.web.frame import SETTINGS_STATE_KEY
from procurement.web.pages import accessibility_statement_route
from procurement.web.setup import static_files_router, template_config
from procurement.workspace.commitments import CommitmentPagesController
from procurement.workspace.controllers import WorkspaceController
from procurement.workspace.review_controllers import ReviewController
from procurement.workspace.statements import StatementPagesController

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
        state=State({ALCHEMY_STATE_KEY: alchemy, SETTINGS_STATE_KEY: settings}),
        middleware=_middleware(settings),
        request_class=GuardedRequest,
        before_send=[security_headers(settings)],
        exception_handlers=EXCEPTION_HANDLERS,
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


def _middleware(settings: Settings) -> list[Any]:
    """Bad bytes refused first; CORS on public reads only; a bearer token, else a session cookie gives the same
    Principal; then CSRF on forms."""
    return [
        InputGuardMiddleware(),
        PublicCorsMiddleware(),
        DefineMiddleware(TokenAuthenticationMiddleware, exclude=["^/schema"]),
        SessionAuthenticationMiddleware(idle=dt.timedelta(minutes=settings.session_idle_minutes)),
        DefineMiddleware(PageCSRFMiddleware, config=csrf_config(settings)),
    ]
