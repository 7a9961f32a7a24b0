"""The supplier master: create and correct suppliers (identifiers, postcode, names)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import distinct, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import figures
from procurement import models as m
from procurement.audit import _apply, _unset_dropped, record_audit
from procurement.auth import Principal
from procurement.errors import DomainError, NotFound
from procurement.organisations.service import _org_name_key
from procurement.schemas import Identifier, IdentifierIn
from procurement.suppliers.schemas import Supplier, SupplierCreate, SupplierUpdate
from socialvalue import geography

# postcode_source of a postcode a person confirmed although the ONS directory does not have it
CONFIRMED_UNLISTED = "manual_confirmed_unlisted"


def check_postcode(postcode: str, *, confirmed: bool, field: str = "postcode") -> bool:
    """True when the directory lacks the postcode and the caller confirmed it; refuses (422) an unconfirmed one."""
    place = geography.locate(postcode)
    if geography.postcode_status(place.method) not in {"not_in_directory_best_fit", "not_in_directory_no_fit"}:
        return False
    if confirmed:
        return True
    fit = geography.best_fit(place)
    then = (
        f"its place will be the best fit of its {fit}" if fit else "its place will be unknown (no part of it matches)"
    )
    raise DomainError(
        f"{field} {postcode} is not in the ONS postcode directory ({place.data_version}). Check it; if it is right"
        f' (new postcodes appear every month), send it again with "confirm_postcode": true and {then}.'
    )


class SupplierService(SQLAlchemyAsyncRepositoryService[m.Supplier]):
    class Repo(SQLAlchemyAsyncRepository[m.Supplier]):
        model_type = m.Supplier

    repository_type = Repo

    async def create_supplier(self, data: SupplierCreate, actor: Principal | None) -> m.Supplier:
        await self.check_identifiers_free(data.identifiers, None)
        unlisted = data.postcode is not None and check_postcode(data.postcode, confirmed=data.confirm_postcode)
        supplier = m.Supplier(
            name=data.name.strip(),
            name_key=_org_name_key(data.name),
            street_address=data.street_address,
            locality=data.locality,
            postcode=data.postcode,
            postcode_source=(CONFIRMED_UNLISTED if unlisted else "manual") if data.postcode else None,
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
            changes={
                "name": (None, supplier.name),
                "postcode": (None, supplier.postcode),
                "postcode_source": (None, supplier.postcode_source),
            },
        )
        await figures.suppliers_changed(self.repository.session, [supplier.id])
        return supplier

    async def update_supplier(self, supplier_id: int, data: SupplierUpdate, actor: Principal) -> m.Supplier:
        supplier = await self.get_or_404(supplier_id)
        fields = _unset_dropped(data)
        reason = fields.pop("reason")
        identifiers = fields.pop("identifiers", None)
        confirmed = bool(fields.pop("confirm_postcode", False))
        if "name" in fields:
            fields["name"] = fields["name"].strip()
            fields["name_key"] = _org_name_key(fields["name"])
        if "postcode" in fields and fields["postcode"] != supplier.postcode:
            unlisted = bool(fields["postcode"]) and check_postcode(fields["postcode"], confirmed=confirmed)
            fields["postcode_source"] = (CONFIRMED_UNLISTED if unlisted else "manual") if fields["postcode"] else None
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
        if changes:
            await figures.suppliers_changed(self.repository.session, [supplier.merged_into_id or supplier.id])
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


def supplier_schema(supplier: m.Supplier, place: geography.Place | None = None) -> Supplier:
    if place is None and supplier.postcode:
        place = geography.locate(supplier.postcode)
    return Supplier(
        id=supplier.id,
        name=supplier.name,
        street_address=supplier.street_address,
        locality=supplier.locality,
        postcode=supplier.postcode,
        postcode_source=supplier.postcode_source,
        postcode_status=geography.postcode_status(place.method) if place else None,
        postcode_note=geography.fit_text(place) if place else None,
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


def supplier_schemas(suppliers: Sequence[m.Supplier]) -> list[Supplier]:
    """Many suppliers, their postcodes looked up in one batch."""
    frame = geography.locate_many([s.postcode for s in suppliers])
    places = [geography.Place(**row) for row in frame.iter_rows(named=True)]
    return [supplier_schema(s, p if s.postcode else None) for s, p in zip(suppliers, places, strict=True)]
