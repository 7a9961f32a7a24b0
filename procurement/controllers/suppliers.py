"""Suppliers: read with any token; editors and admins create and correct them."""

from __future__ import annotations

from typing import Any

from advanced_alchemy.extensions.litestar.providers import create_service_provider
from litestar import Controller, Request, get, patch, post
from litestar.di import Provide
from litestar.params import Parameter
from sqlalchemy import ColumnElement, func, select

from procurement import models as m
from procurement import schemas as s
from procurement.auth import Principal, requires_editor, requires_token
from procurement.controllers.paging import DEFAULT_LIMIT, Limit, Offset
from procurement.services import SupplierService, supplier_schema


class SupplierController(Controller):
    path = "/suppliers"
    tags = ["suppliers"]
    dependencies = {"suppliers": Provide(create_service_provider(SupplierService))}

    @get("/", summary="List suppliers", guards=[requires_token])
    async def list_suppliers(
        self,
        suppliers: SupplierService,
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
        q: str | None = Parameter(default=None, max_length=100, description="Name contains."),
        postcode: str | None = Parameter(default=None, max_length=10),
    ) -> s.Page[s.Supplier]:
        conditions: list[ColumnElement[bool]] = []
        if q:
            conditions.append(func.lower(m.Supplier.name).contains(q.lower()))
        if postcode:
            conditions.append(m.Supplier.postcode == postcode.upper())
        session = suppliers.repository.session
        total = await session.scalar(select(func.count()).select_from(m.Supplier).where(*conditions)) or 0
        rows = await session.scalars(
            select(m.Supplier).where(*conditions).order_by(m.Supplier.name, m.Supplier.id).limit(limit).offset(offset)
        )
        return s.Page(items=[supplier_schema(x) for x in rows.all()], total=total, limit=limit, offset=offset)

    @get("/{supplier_id:int}", summary="One supplier", guards=[requires_token])
    async def get_supplier(self, suppliers: SupplierService, supplier_id: int) -> s.Supplier:
        return supplier_schema(await suppliers.get_or_404(supplier_id))

    @post("/", summary="Create a supplier", guards=[requires_editor])
    async def create_supplier(
        self, request: Request[Principal, Any, Any], suppliers: SupplierService, data: s.SupplierCreate
    ) -> s.Supplier:
        return supplier_schema(await suppliers.create_supplier(data, request.user))

    @patch("/{supplier_id:int}", summary="Correct a supplier", guards=[requires_editor])
    async def update_supplier(
        self,
        request: Request[Principal, Any, Any],
        suppliers: SupplierService,
        supplier_id: int,
        data: s.SupplierUpdate,
    ) -> s.Supplier:
        return supplier_schema(await suppliers.update_supplier(supplier_id, data, request.user))
