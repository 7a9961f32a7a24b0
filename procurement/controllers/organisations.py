"""Organisations: buyers and anchor institutions. Public to read (they are public bodies)."""

from __future__ import annotations

from typing import Any

from advanced_alchemy.extensions.litestar.providers import create_service_provider
from litestar import Controller, Request, get, patch, post
from litestar.di import Provide
from litestar.params import Parameter
from sqlalchemy import ColumnElement, func, select

from procurement import models as m
from procurement import schemas as s
from procurement.auth import Principal, requires_admin, requires_editor
from procurement.controllers.paging import DEFAULT_LIMIT, Limit, Offset
from procurement.services import OrganisationService, organisation_schema


class OrganisationController(Controller):
    path = "/organisations"
    tags = ["organisations"]
    dependencies = {"organisations": Provide(create_service_provider(OrganisationService))}

    @get("/", summary="List organisations")
    async def list_organisations(
        self,
        organisations: OrganisationService,
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
        anchor: bool | None = Parameter(default=None, description="Only anchors (true) or only non-anchors."),
        kind: m.OrganisationKind | None = None,
        q: str | None = Parameter(default=None, max_length=100, description="Name contains."),
    ) -> s.Page[s.Organisation]:
        conditions: list[ColumnElement[bool]] = []
        if anchor is not None:
            conditions.append(m.Organisation.is_anchor.is_(anchor))
        if kind is not None:
            conditions.append(m.Organisation.kind == kind.value)
        if q:
            conditions.append(func.lower(m.Organisation.name).contains(q.lower()))
        session = organisations.repository.session
        total = await session.scalar(select(func.count()).select_from(m.Organisation).where(*conditions)) or 0
        rows = await session.scalars(
            select(m.Organisation).where(*conditions).order_by(m.Organisation.name).limit(limit).offset(offset)
        )
        items = [organisation_schema(o) for o in rows.all()]
        return s.Page(items=items, total=total, limit=limit, offset=offset)

    @get("/{org_id:int}", summary="One organisation")
    async def get_organisation(self, organisations: OrganisationService, org_id: int) -> s.Organisation:
        return organisation_schema(await organisations.get_or_404(org_id))

    @post("/", summary="Create an organisation (admin)", guards=[requires_admin])
    async def create_organisation(
        self, request: Request[Principal, Any, Any], organisations: OrganisationService, data: s.OrganisationCreate
    ) -> s.Organisation:
        return organisation_schema(await organisations.create_organisation(data, request.user))

    @patch("/{org_id:int}", summary="Update an organisation (admin, or an editor of it)", guards=[requires_editor])
    async def update_organisation(
        self,
        request: Request[Principal, Any, Any],
        organisations: OrganisationService,
        org_id: int,
        data: s.OrganisationUpdate,
    ) -> s.Organisation:
        return organisation_schema(await organisations.update_organisation(org_id, data, request.user))
