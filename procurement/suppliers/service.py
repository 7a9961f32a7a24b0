"""The supplier master: create and correct suppliers (identifiers, postcode, names)."""

from __future__ import annotations

from collections.abc import Iterable

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import distinct, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.audit import _apply, _unset_dropped, record_audit
from procurement.auth import Principal
from procurement.errors import DomainError, NotFound
from procurement.organisations.service import _org_name_key
from procurement.schemas import Identifier, IdentifierIn
from procurement.suppliers.schemas import Supplier, SupplierCreate, SupplierUpdate


class SupplierService(SQLAlchemyAsyncRepositoryService[m.Supplier]):
    class Repo(SQLAlchemyAsyncRepository[m.Supplier]):
        model_type = m.Supplier

    repository_type = Repo

    async def create_supplier(self, data: SupplierCreate, actor: Principal | None) -> m.Supplier:
        await self.check_identifiers_free(data.identifiers, None)
        supplier = m.Supplier(
            name=data.name.strip(),
            name_key=_org_name_key(data.name),
            street_address=data.street_address,
            locality=data.locality,
            postcode=data.postcode,
            postcode_source="manual" if data.postcode else None,
            country=data.country,
            identifiers=[m.SupplierIdentifier(scheme=i.scheme, value=i.id) for i in data.identifiers],
        )
        self.repository.session.add(supplier)
        await self.repository.session.flush()
        await record_audit(
            self.repository.session,
            actor=actor,
            action="supplier.create",
            entity_type="supplier",
            entity_id=supplier.id,
            changes={"name": (None, supplier.name), "postcode": (None, supplier.postcode)},
        )
        return supplier

    async def update_supplier(self, supplier_id: int, data: SupplierUpdate, actor: Principal) -> m.Supplier:
        supplier = await self.get_or_404(supplier_id)
        fields = _unset_dropped(data)
        reason = fields.pop("reason")
        identifiers = fields.pop("identifiers", None)
        if "name" in fields:
            fields["name"] = fields["name"].strip()
            fields["name_key"] = _org_name_key(fields["name"])
        if "postcode" in fields:
            fields["postcode_source"] = "manual" if fields["postcode"] else None
        changes = _apply(supplier, fields)
        if identifiers is not None:
            await self.check_identifiers_free(identifiers, supplier.id)
            old = sorted(f"{i.scheme}:{i.value}" for i in supplier.identifiers)
            new = sorted(f"{i.scheme}:{i.id}" for i in identifiers)
            if old != new:
                supplier.identifiers = [m.SupplierIdentifier(scheme=i.scheme, value=i.id) for i in identifiers]
                changes["identifiers"] = (old, new)
        if changes:
            await record_audit(
                self.repository.session,
                actor=actor,
                action="supplier.update",
                entity_type="supplier",
                entity_id=supplier.id,
                changes=changes,
                reason=reason.strip(),
            )
        await self.repository.session.flush()
        return supplier

    async def get_or_404(self, supplier_id: int) -> m.Supplier:
        supplier: m.Supplier | None = await self.repository.get_one_or_none(id=supplier_id)
        if supplier is None:
            raise NotFound(f"No supplier with id {supplier_id}.")
        return supplier

    async def check_identifiers_free(self, identifiers: Iterable[IdentifierIn], own_id: int | None) -> None:
        for ident in identifiers:
            holder = await self.repository.session.scalar(
                select(m.SupplierIdentifier.supplier_id).where(
                    m.SupplierIdentifier.scheme == ident.scheme, m.SupplierIdentifier.value == ident.id
                )
            )
            if holder is not None and holder != own_id:
                raise DomainError(f"Identifier {ident.scheme} {ident.id} already belongs to supplier {holder}.")


def supplier_schema(supplier: m.Supplier) -> Supplier:
    return Supplier(
        id=supplier.id,
        name=supplier.name,
        street_address=supplier.street_address,
        locality=supplier.locality,
        postcode=supplier.postcode,
        postcode_source=supplier.postcode_source,
        country=supplier.country,
        declared_scale=supplier.declared_scale,
        declared_vcse=supplier.declared_vcse,
        identifiers=[Identifier(scheme=i.scheme, id=i.value) for i in supplier.identifiers],
    )


async def affected_organisations(session: AsyncSession, supplier_ids: Iterable[int]) -> list[int]:
    """Anchors whose figures these suppliers feed (duplicates included): the buyers of their non-withdrawn
    contracts and the anchors whose published payments went to them."""
    ids = list(supplier_ids)
    if not ids:
        return []
    s, cs, c = m.Supplier, m.ContractSupplier, m.Contract
    effective = select(func.coalesce(s.merged_into_id, s.id)).where(s.id.in_(ids))
    family = select(s.id).where(or_(s.id.in_(ids), s.id.in_(effective), s.merged_into_id.in_(effective)))
    buyers = (
        select(distinct(c.buyer_id))
        .join(cs, cs.contract_id == c.id)
        .where(cs.supplier_id.in_(family), c.status != m.ContractStatus.WITHDRAWN.value)
    )
    payers = select(distinct(m.PaymentLine.anchor_id)).where(m.PaymentLine.supplier_id.in_(family))
    found = set((await session.scalars(buyers)).all()) | set((await session.scalars(payers)).all())
    return sorted(int(i) for i in found)
