"""HTTP for statements: reviewers preview and publish; the public lists and downloads published files."""

from __future__ import annotations

import json
from typing import Annotated, Any, cast

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.enums import MediaType
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Reference, Schema
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType
from litestar.params import Parameter
from litestar.response import Template
from litestar.serialization import encode_json
from litestar.status_codes import HTTP_200_OK, HTTP_304_NOT_MODIFIED, HTTP_410_GONE
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.auth import Principal, requires_reviewer
from procurement.db import ALCHEMY_STATE_KEY
from procurement.errors import NotFound
from procurement.metrics.lines import resolve_scope
from procurement.problems import problem
from procurement.reused import ReusedResponse
from procurement.schemas import MAX_ID, NOT_BLANK, QUARTER_PATTERN, Id, IdParam, id_query
from procurement.statements.pages import statement_context
from procurement.statements.service import (
    PublishedListing,
    figures_csv,
    preview_pdf,
    publish,
    staleness,
    withdraw,
)
from procurement.statements.snapshot import sha256

# Published files may be cached, but every use revalidates (ETag): a withdrawal or correction reaches a reader on
# their next request, never "immutable" for a year.
REVALIDATE = "public, no-cache"


LISTING = "public, max-age=60"
_LISTING_KEY = "localvalue_published_listing"  # app state: this process's PublishedListing


Quarter = Annotated[str, msgspec.Meta(pattern=QUARTER_PATTERN)]


# {id}, {id}.pdf, {id}.json or {id}.csv, the id at most 19 digits (a 64-bit key).
STATEMENT_FILE = r"^[0-9]{1,19}(\.(pdf|json|csv))?$"


class PublishRequest(msgspec.Struct, forbid_unknown_fields=True):
    period: Quarter
    anchor_id: Id | None = None
    group: str | None = None
    reason: Annotated[str, msgspec.Meta(min_length=3, max_length=2000, pattern=NOT_BLANK)] | None = None

    def __post_init__(self) -> None:
        if (self.anchor_id is None) == (self.group is None):
            msg = "give exactly one of anchor_id or group"
            raise ValueError(msg)


class WithdrawRequest(msgspec.Struct, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(min_length=3, max_length=2000, pattern=NOT_BLANK)]


class PublicStatement(msgspec.Struct):
    id: int
    scope_name: str
    scope_kind: str
    organisation_id: int | None
    group_id: int | None
    period: str
    version: int
    status: str
    published_at: str
    figures_sha256: str
    pdf_sha256: str
    snapshot_sha256: str
    correction_reason: str | None
    superseded_by_id: int | None
    superseded_reason: str | None
    withdrawn_reason: str | None
    links: dict[str, str]


class FigureDifference(msgspec.Struct):
    figure: str
    published: Any
    live: Any


class StalenessOut(msgspec.Struct):
    """stale: the live figures of this quarter differ from the frozen ones; each difference side by side."""

    statement_id: int
    scope_name: str
    period: str
    version: int
    status: str
    stale: bool
    differences: list[FigureDifference]


class PublicStatementPage(msgspec.Struct):
    items: list[PublicStatement]
    total: int
    limit: int
    offset: int


def _public(s: m.Statement | Row[Any]) -> PublicStatement:
    base = f"/public/statements/{s.id}"
    links = (
        {}
        if s.status == m.StatementStatus.WITHDRAWN
        else {"html": f"{base}.html", "pdf": f"{base}.pdf", "json": f"{base}.json", "csv": f"{base}.csv"}
    )
    return PublicStatement(
        id=s.id,
        scope_name=s.scope_name,
        scope_kind=s.scope_kind,
        organisation_id=s.organisation_id,
        group_id=s.group_id,
        period=s.period,
        version=s.version,
        status=s.status,
        published_at=s.published_at.isoformat(),
        figures_sha256=s.figures_sha256,
        pdf_sha256=s.pdf_sha256,
        snapshot_sha256=s.snapshot_sha256,
        correction_reason=s.correction_reason,
        superseded_by_id=s.superseded_by_id,
        superseded_reason=s.superseded_reason,
        withdrawn_reason=s.withdrawn_reason,
        links={"self": base, **links},
    )


def _not_modified(request: Request[Any, Any, Any], etag: str) -> bool:
    match = request.headers.get("if-none-match", "")
    return any(tag.strip().strip('"').removeprefix("W/").strip('"') == etag for tag in match.split(","))


class PublicStatementController(Controller):
    path = "/public/statements"
    tags = ["public"]

    @get("/", summary="Published statements (no token needed)")
    async def list_statements(
        self,
        request: Request[Any, Any, Any],
        anchor_id: int | None = id_query(),
        period: str | None = Parameter(default=None, pattern=QUARTER_PATTERN),
        limit: int = Parameter(default=100, ge=1, le=200),
        offset: int = Parameter(default=0, ge=0),
    ) -> Response[PublicStatementPage]:
        """Every published statement, newest version first, with links to its PDF, JSON and CSV; withdrawn ones say why.
        Public: no token needed."""
        state = request.app.state
        listing: PublishedListing | None = state.get(_LISTING_KEY)
        if listing is None:
            listing = state.setdefault(_LISTING_KEY, PublishedListing(state[ALCHEMY_STATE_KEY].get_engine()))

        def encode(rows: list[Row[Any]]) -> ReusedResponse[bytes]:
            page = [_public(s) for s in rows[offset : offset + limit]]
            body = encode_json(PublicStatementPage(items=page, total=len(rows), limit=limit, offset=offset))
            # Already JSON: sent as it is, with the struct's media type, the same response until the table changes.
            return ReusedResponse(body, media_type=MediaType.JSON, headers={"Cache-Control": LISTING})

        response = await listing.page(
            (anchor_id, period, limit, offset), anchor_id=anchor_id, period=period, encode=encode
        )
        return cast("Response[PublicStatementPage]", response)

    @get(
        "/{name:str}",
        summary="One statement: {id}, {id}.html (accessible version), {id}.pdf, {id}.json or {id}.csv",
        opt={
            "problems": (HTTP_410_GONE,),
            "content": {
                "application/json": Schema(
                    any_of=[
                        Reference(ref="#/components/schemas/PublicStatement"),
                        Schema(type=OpenAPIType.OBJECT, description="{id}.json: the frozen figures as published."),
                    ]
                ),
                "application/pdf": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY, description="{id}.pdf"),
                "text/csv": Schema(type=OpenAPIType.STRING, description="{id}.csv: the figures, one per row."),
                "text/html": Schema(type=OpenAPIType.STRING, description="{id}.html: the accessible statement."),
            },
        },
        responses={
            HTTP_304_NOT_MODIFIED: ResponseSpec(None, description="The copy the client holds (ETag) is current.")
        },
    )
    async def statement_file(
        self,
        request: Request[Any, Any, Any],
        db_session: AsyncSession,
        # Documented, not enforced: an address that names no statement file is a 404, like any unknown record.
        name: Annotated[
            str, Parameter(description="{id} or {id}.pdf|json|csv", schema_extra={"pattern": STATEMENT_FILE})
        ],
        download: bool = False,
    ) -> Response[Any]:
        """A published statement's record, or one of its frozen files.

        Files carry an ETag and `Cache-Control: public, no-cache`: send `If-None-Match` to get 304 while the file is
        unchanged. A withdrawn statement's files answer 410 with the reason.
        """
        stem, _, ext = name.partition(".")
        number = int(stem) if stem.isdigit() else 0
        if not 1 <= number <= MAX_ID or ext not in {"", "pdf", "json", "csv", "html"}:
            raise NotFound(f"No statement file {name!r}.")
        statement = await db_session.get(m.Statement, number)
        if statement is None:
            raise NotFound(f"No statement {stem}.")
        if ext == "":
            return Response(_public(statement), headers={"Cache-Control": LISTING})
        if statement.status == m.StatementStatus.WITHDRAWN:
            return problem(
                HTTP_410_GONE,
                f"Statement {statement.id} was withdrawn: {statement.withdrawn_reason}",
                instance=request.url.path,
            )
        if ext == "html":
            # Not immutable: a withdrawal or a later version changes the notice at the top of the page.
            return Template(
                template_name="pages/statement.html",
                context=statement_context(statement),
                headers={"Cache-Control": LISTING},
            )
        if ext == "pdf":
            body, media, etag = statement.pdf, "application/pdf", statement.pdf_sha256
        elif ext == "json":
            body = statement.snapshot_json.encode("utf-8")
            media, etag = "application/json", statement.snapshot_sha256
        else:
            body = figures_csv(json.loads(statement.snapshot_json)).encode("utf-8")
            media, etag = "text/csv", sha256(body)
        headers = {"ETag": f'"{etag}"', "Cache-Control": REVALIDATE}
        if _not_modified(request, etag):
            return Response(b"", status_code=HTTP_304_NOT_MODIFIED, headers=headers)
        filename = f"local-value-statement-{statement.id}-v{statement.version}-{statement.period}.{ext}"
        disposition = "attachment" if download else "inline"
        headers["Content-Disposition"] = f'{disposition}; filename="{filename}"'
        return Response(body, media_type=media, headers=headers)


class StatementController(Controller):
    path = "/statements"
    tags = ["statements"]
    guards = [requires_reviewer]

    @get("/preview", summary="Draft PDF from live figures (reviewers)", media_type="application/pdf")
    async def preview(
        self,
        db_session: AsyncSession,
        period: str = Parameter(pattern=QUARTER_PATTERN),
        anchor_id: int | None = id_query(),
        group: str | None = Parameter(default=None, max_length=64),
    ) -> Response[bytes]:
        """A DRAFT PDF of the statement from today's figures; nothing is stored."""
        scope = await resolve_scope(db_session, anchor_id=anchor_id, group=group)
        pdf, _ = await preview_pdf(db_session, scope, period)
        return Response(pdf, media_type="application/pdf", headers={"Cache-Control": "no-store"})

    @post("/", summary="Publish (or correct) a statement (reviewers)")
    async def publish_statement(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, data: PublishRequest
    ) -> PublicStatement:
        """Freezes the quarter's figures and PDF with their SHA-256 hashes; a second publication is a correction and
        needs a reason. Audited."""
        scope = await resolve_scope(db_session, anchor_id=data.anchor_id, group=data.group)
        return _public(await publish(db_session, scope, data.period, actor=request.user, reason=data.reason))

    @get("/{statement_id:int}/staleness", summary="Do the live figures still match the published ones? (reviewers)")
    async def statement_staleness(self, db_session: AsyncSession, statement_id: int) -> StalenessOut:
        """Do the live figures still match the published ones? (reviewers)."""
        statement = await db_session.get(m.Statement, statement_id)
        if statement is None:
            raise NotFound(f"No statement {statement_id}.")
        found = await staleness(db_session, statement)
        return StalenessOut(
            statement_id=found.statement_id,
            scope_name=found.scope_name,
            period=found.period,
            version=found.version,
            status=found.status,
            stale=found.stale,
            differences=[FigureDifference(d.figure, d.published, d.live) for d in found.differences],
        )

    @post("/{statement_id:int}/withdraw", summary="Withdraw a statement (kept, marked why)", status_code=HTTP_200_OK)
    async def withdraw_statement(
        self,
        request: Request[Principal, Any, Any],
        db_session: AsyncSession,
        statement_id: IdParam,
        data: WithdrawRequest,
    ) -> PublicStatement:
        """Withdraws a published statement with a reason; its record stays public, its files answer 410. Audited."""
        return _public(await withdraw(db_session, statement_id, actor=request.user, reason=data.reason))
