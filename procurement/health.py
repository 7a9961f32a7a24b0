"""GET /health: the app's version and whether the database answers at the expected schema revision."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import msgspec
from litestar import Controller, Response, get
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from procurement.db import VERSION_TABLE


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


def app_version() -> str:
    try:
        return version("localvalue")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        return "0+unknown"


class HealthController(Controller):
    path = "/health"
    tags = ["system"]

    @get("/", summary="Service and database health", exclude_from_auth=True)
    async def health(self, db_session: AsyncSession) -> Response[Health]:
        """Whether the service answers and its database is reachable, with the running version. No token needed."""
        dialect = db_session.bind.dialect.name if db_session.bind else "unknown"
        try:
            await db_session.execute(text("SELECT 1"))
            revision = await db_session.scalar(text(f"SELECT version_num FROM {VERSION_TABLE}"))  # noqa: S608
            db = DatabaseHealth(status="ok", dialect=dialect, revision=revision)
        except SQLAlchemyError as exc:
            db = DatabaseHealth(status="error", dialect=dialect, revision=None, detail=type(exc).__name__)
        ok = db.status == "ok"
        return Response(
            Health(status="ok" if ok else "degraded", app="localvalue", version=app_version(), database=db),
            status_code=HTTP_200_OK if ok else HTTP_503_SERVICE_UNAVAILABLE,
        )
