"""GET /health: the app's version and whether the database answers at the expected schema revision.

Load balancers call it often: one query on a pooled connection (the revision read is the ping), no ORM session,
no token or cookie look-up."""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from procurement.db import ALCHEMY_STATE_KEY, VERSION_TABLE

_REVISION = text(f"SELECT version_num FROM {VERSION_TABLE}")  # noqa: S608


class DatabaseHealth(msgspec.Struct):
    status: str
    dialect: str
    revision: str | None
    detail: str | None = None


class Health(msgspec.Struct):
    status: str
    app: str
    version: str
    database: DatabaseHealth


@cache  # reading the installed metadata scans the file system: once per process
def app_version() -> str:
    try:
        return version("localvalue")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        return "0+unknown"


class HealthController(Controller):
    path = "/health"
    tags = ["system"]

    @get("/", summary="Service and database health", exclude_from_auth=True)
    async def health(self, request: Request[Any, Any, Any]) -> Response[Health]:
        """Whether the service answers and its database is reachable, with the running version. No token needed."""
        engine: AsyncEngine = request.app.state[ALCHEMY_STATE_KEY].get_engine()
        dialect = engine.dialect.name
        try:
            # Autocommit: no BEGIN and ROLLBACK around the one query.
            async with engine.connect() as connection:
                await connection.execution_options(isolation_level="AUTOCOMMIT")
                revision = await connection.scalar(_REVISION)
            db = DatabaseHealth(status="ok", dialect=dialect, revision=revision)
        except SQLAlchemyError as exc:
            db = DatabaseHealth(status="error", dialect=dialect, revision=None, detail=type(exc).__name__)
        ok = db.status == "ok"
        return Response(
            Health(status="ok" if ok else "degraded", app="localvalue", version=app_version(), database=db),
            status_code=HTTP_200_OK if ok else HTTP_503_SERVICE_UNAVAILABLE,
        )
