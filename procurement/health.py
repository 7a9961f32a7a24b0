"""GET /health: the app's version and whether the database answers at the expected schema revision.

Load balancers call it often: one query on a pooled connection (the revision read is the ping), no ORM session,
no token or cookie look-up; concurrent calls share one ping that started after each of them asked
(``procurement.coalesce``), so the answer is never older than the request. On SQLite a good answer is reused
while the file's change counter has not moved (reading it is itself the ping: a readable file at an unchanged
revision)."""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any, cast

import msgspec
from litestar import Controller, Request, Response, get
from litestar.enums import MediaType
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from procurement.coalesce import Coalesced
from procurement.db import ALCHEMY_STATE_KEY, VERSION_TABLE, changes_of
from procurement.reused import ReusedResponse

_REVISION = text(f"SELECT version_num FROM {VERSION_TABLE}")  # noqa: S608
_PING_KEY = "localvalue_health_ping"  # app state: this process's shared ping


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


async def _database_health(engine: AsyncEngine) -> ReusedResponse[bytes]:
    """The answer of one ping, encoded and ready to send as often as it holds."""
    dialect = engine.dialect.name
    try:
        # Autocommit: no BEGIN and ROLLBACK around the one query.
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            revision = await connection.scalar(_REVISION)
        db = DatabaseHealth(status="ok", dialect=dialect, revision=revision)
    except (SQLAlchemyError, OSError) as exc:
        db = DatabaseHealth(status="error", dialect=dialect, revision=None, detail=type(exc).__name__)
    ok = db.status == "ok"
    health = Health(status="ok" if ok else "degraded", app="localvalue", version=app_version(), database=db)
    # Already JSON: sent as it is, with the media type the struct would have had.
    return ReusedResponse(
        msgspec.json.encode(health),
        status_code=HTTP_200_OK if ok else HTTP_503_SERVICE_UNAVAILABLE,
        media_type=MediaType.JSON,
    )


def _is_ok(answer: ReusedResponse[bytes]) -> bool:
    return answer.status_code == HTTP_200_OK


class HealthController(Controller):
    path = "/health"
    tags = ["system"]

    @get("/", summary="Service and database health", exclude_from_auth=True)
    async def health(self, request: Request[Any, Any, Any]) -> Response[Health]:
        """Whether the service answers and its database is reachable, with the running version. No token needed."""
        state = request.app.state
        ping: Coalesced[ReusedResponse[bytes]] | None = state.get(_PING_KEY)
        if ping is None:
            engine: AsyncEngine = state[ALCHEMY_STATE_KEY].get_engine()
            ping = state.setdefault(
                _PING_KEY,
                Coalesced(lambda: _database_health(engine), changes=changes_of(engine), keep=_is_ok),
            )
        return cast("Response[Health]", await ping.get())
