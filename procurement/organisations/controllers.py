"""HTTP for organisations, their local areas and anchor groups."""

from __future__ import annotations

from typing import Any, cast

from advanced_alchemy.extensions.litestar.providers import create_service_provider
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import Provide
from litestar.enums import MediaType
from litestar.params import Parameter
from litestar.serialization import encode_json
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from procurement import models as m
from procurement.auth import Principal, requires_admin, requires_editor, requires_token
from procurement.coalesce import CoalescedByKey
from procurement.db import ALCHEMY_STATE_KEY, changes_of
from procurement.organisations.groups import (
    create_group,
    delete_group,
    get_group,
    group_schema,
    list_groups,
    update_group,
)
from procurement.organisations.schemas import (
    AnchorGroup,
    AnchorGroupCreate,
    AnchorGroupUpdate,
    Organisation,
    OrganisationCreate,
    OrganisationUpdate,
)
from procurement.organisations.service import OrganisationService, list_page, organisation_schema
from procurement.paging import DEFAULT_LIMIT, Limit, Offset
from procurement.schemas import IdParam, Page

# anchor, kind, q, limit, offset: concurrent requests for the same page share one read (never an older one).
_PageKey = tuple[bool | None, str | None, str | None, int, int]
_PAGES_KEY = "localvalue_organisation_pages"  # app state: this process's shared page reads


async def _encoded_page(engine: AsyncEngine, key: _PageKey) -> bytes:
    items, total = await list_page(engine, *key)
    *_, limit, offset = key
    return encode_json(Page(items=items, total=total, limit=limit, offset=offset))


class OrganisationController(Controller):
    path = "/organisations"
    tags = ["organisations"]
    dependencies = {"organisations": Provide(create_service_provider(OrganisationService))}

    @get("/", summary="List organisations")
    async def list_organisations(
        self,
        request: Request[Any, Any, Any],
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
        anchor: bool | None = Parameter(default=None, description="Only anchors (true) or only non-anchors."),
        kind: m.OrganisationKind | None = None,
        q: str | None = Parameter(default=None, max_length=100, description="Name contains."),
    ) -> Response[Page[Organisation]]:
        """Organisations by name, optionally anchors only, one kind, or a name fragment; paged. Public: no token
        needed."""
        state = request.app.state
        pages: CoalescedByKey[_PageKey, bytes] | None = state.get(_PAGES_KEY)
        if pages is None:
            engine = state[ALCHEMY_STATE_KEY].get_engine()
            pages = state.setdefault(
                _PAGES_KEY, CoalescedByKey(lambda key: _encoded_page(engine, key), changes=changes_of(engine))
            )
        body = await pages.get((anchor, None if kind is None else kind.value, q, limit, offset))
        # Already JSON (encoded once per read): sent as it is, with the media type the struct would have had.
        return cast("Response[Page[Organisation]]", Response(body, media_type=MediaType.JSON))

    @get("/{org_id:int}", summary="One organisation")
    async def get_organisation(self, organisations: OrganisationService, org_id: IdParam) -> Organisation:
        """An organisation with its codes, address and identifiers. Public: no token needed."""
        return organisation_schema(await organisations.get_or_404(org_id))

    @post("/", summary="Create an organisation (admin)", guards=[requires_admin])
    async def create_organisation(
        self, request: Request[Principal, Any, Any], organisations: OrganisationService, data: OrganisationCreate
    ) -> Organisation:
        """Adds an organisation (a buyer or an anchor institution) with its codes and identifiers. Audited."""
        return organisation_schema(await organisations.create_organisation(data, request.user))

    @patch("/{org_id:int}", summary="Update an organisation (admin, or an editor of it)", guards=[requires_editor])
    async def update_organisation(
        self,
        request: Request[Principal, Any, Any],
        organisations: OrganisationService,
        org_id: IdParam,
        data: OrganisationUpdate,
    ) -> Organisation:
        """Changes only the fields sent. Audited."""
        return organisation_schema(await organisations.update_organisation(org_id, data, request.user))


class AnchorGroupController(Controller):
    path = "/anchor-groups"
    tags = ["social value"]

    @get("/", summary="Anchor groups reported together", guards=[requires_token])
    async def list_groups(self, db_session: AsyncSession) -> list[AnchorGroup]:
        """Every anchor group with its members."""
        return [await group_schema(db_session, g) for g in await list_groups(db_session)]

    @get("/{slug:str}", summary="One anchor group", guards=[requires_token])
    async def get_group(self, db_session: AsyncSession, slug: str) -> AnchorGroup:
        """One anchor group with its member organisations."""
        return await group_schema(db_session, await get_group(db_session, slug))

    @post("/", summary="Create an anchor group (admin)", guards=[requires_admin])
    async def create_group(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, data: AnchorGroupCreate
    ) -> AnchorGroup:
        """Creates a named group of anchors whose figures are reported together. Audited."""
        return await group_schema(db_session, await create_group(db_session, data, request.user))

    @patch("/{slug:str}", summary="Rename an anchor group or replace its members (admin)", guards=[requires_admin])
    async def update_group(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, slug: str, data: AnchorGroupUpdate
    ) -> AnchorGroup:
        """Renames an anchor group or replaces its member list. Audited."""
        return await group_schema(db_session, await update_group(db_session, slug, data, request.user))

    @delete("/{slug:str}", summary="Delete an anchor group (admin)", guards=[requires_admin])
    async def delete_group(self, request: Request[Principal, Any, Any], db_session: AsyncSession, slug: str) -> None:
        """Deletes an anchor group; the anchors and their figures stay. Audited."""
        await delete_group(db_session, slug, request.user)
