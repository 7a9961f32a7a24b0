"""Advanced-alchemy services (each with an inner repository) and the domain rules of writes.

Every write goes through here so that it is checked, audited and shaped the same way from the API,
the CLI and the importers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import ColumnElement, and_, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement import schemas as s
from procurement.auth import Principal, ensure_can_write_for
from procurement.errors import DomainError, NotFound
from procurement.money import format_pence, split_evenly, to_pence

SYSTEM_ACTOR = "system"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


async def record_audit(
    session: AsyncSession,
    *,
    actor: Principal | None,
    action: str,
    entity_type: str,
    entity_id: int | str,
    organisation_id: int | None = None,
    changes: dict[str, Any] | None = None,
    reason: str | None = None,
    actor_name: str | None = None,
) -> None:
    session.add(
        m.AuditEvent(
            at=dt.datetime.now(dt.UTC),
            actor_user_id=actor.user_id if actor else None,
            actor_name=actor.name if actor else (actor_name or SYSTEM_ACTOR),
            actor_role=actor.role.value if actor else None,
            action=action,
            entity_type=entity_type,
            entity_id=str(entity_id),
            organisation_id=organisation_id,
            changes={k: [_jsonable(a), _jsonable(b)] for k, (a, b) in (changes or {}).items()},
            reason=reason,
        )
    )


def _apply(obj: Any, fields: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Set fields on an ORM object and return {field: (old, new)} for the ones that changed."""
    changed: dict[str, tuple[Any, Any]] = {}
    for key, new in fields.items():
        old = getattr(obj, key)
        if old != new:
            setattr(obj, key, new)
            changed[key] = (old, new)
    return changed


def _unset_dropped(struct: msgspec.Struct) -> dict[str, Any]:
    return {f: getattr(struct, f) for f in struct.__struct_fields__ if getattr(struct, f) is not msgspec.UNSET}


def _org_name_key(name: str) -> str:
    from socialvalue.identifiers import normalise_org_name

    return normalise_org_name(name)


def _lad_for(postcode: str | None) -> str | None:
    if not postcode:
        return None
    from socialvalue.geography import locate

    place = locate(postcode)
    return place.lad_code if place.method == "unit" else None


# Organisations -------------------------------------------------------------------------------------------------


class OrganisationService(SQLAlchemyAsyncRepositoryService[m.Organisation]):
    class Repo(SQLAlchemyAsyncRepository[m.Organisation]):
        model_type = m.Organisation

    repository_type = Repo

    async def create_organisation(self, data: s.OrganisationCreate, actor: Principal | None) -> m.Organisation:
        org = m.Organisation(
            name=data.name.strip(),
            kind=data.kind.value,
            ods_code=data.ods_code,
            gss_code=data.gss_code,
            icb_ods_code=data.icb_ods_code,
            address=data.address,
            postcode=data.postcode,
            lad_code=_lad_for(data.postcode),
            is_anchor=data.is_anchor,
            name_key=_org_name_key(data.name),
            identifiers=[m.OrganisationIdentifier(scheme=i.scheme, value=i.id) for i in data.identifiers],
        )
        await self._check_unique_codes(org.ods_code, org.gss_code, None)
        self.repository.session.add(org)
        await self.repository.session.flush()
        await record_audit(
            self.repository.session,
            actor=actor,
            action="organisation.create",
            entity_type="organisation",
            entity_id=org.id,
            organisation_id=org.id,
            changes={"name": (None, org.name), "kind": (None, org.kind)},
        )
        return org

    async def update_organisation(self, org_id: int, data: s.OrganisationUpdate, actor: Principal) -> m.Organisation:
        org = await self.get_or_404(org_id)
        ensure_can_write_for(actor, org.id)
        fields = _unset_dropped(data)
        if "kind" in fields:
            fields["kind"] = fields["kind"].value
        if "name" in fields:
            fields["name"] = fields["name"].strip()
            fields["name_key"] = _org_name_key(fields["name"])
        if "postcode" in fields:
            fields["lad_code"] = _lad_for(fields["postcode"])
        await self._check_unique_codes(fields.get("ods_code"), fields.get("gss_code"), org.id)
        changes = _apply(org, fields)
        if changes:
            await record_audit(
                self.repository.session,
                actor=actor,
                action="organisation.update",
                entity_type="organisation",
                entity_id=org.id,
                organisation_id=org.id,
                changes=changes,
            )
        await self.repository.session.flush()
        return org

    async def get_or_404(self, org_id: int) -> m.Organisation:
        org: m.Organisation | None = await self.repository.get_one_or_none(id=org_id)
        if org is None:
            raise NotFound(f"No organisation with id {org_id}.")
        return org

    async def _check_unique_codes(self, ods: str | None, gss: str | None, own_id: int | None) -> None:
        for column, value in ((m.Organisation.ods_code, ods), (m.Organisation.gss_code, gss)):
            if not value:
                continue
            clash = await self.repository.session.scalar(
                select(m.Organisation.id).where(column == value, m.Organisation.id != (own_id or 0))
            )
            if clash is not None:
                raise DomainError(f"Another organisation (id {clash}) already has {column.key} {value}.")


def organisation_schema(org: m.Organisation) -> s.Organisation:
    return s.Organisation(
        id=org.id,
        name=org.name,
        kind=org.kind,
        ods_code=org.ods_code,
        gss_code=org.gss_code,
        icb_ods_code=org.icb_ods_code,
        address=org.address,
        postcode=org.postcode,
        lad_code=org.lad_code,
        is_anchor=org.is_anchor,
        identifiers=[s.Identifier(scheme=i.scheme, id=i.value) for i in org.identifiers],
    )


# Suppliers -----------------------------------------------------------------------------------------------------


class SupplierService(SQLAlchemyAsyncRepositoryService[m.Supplier]):
    class Repo(SQLAlchemyAsyncRepository[m.Supplier]):
        model_type = m.Supplier

    repository_type = Repo

    async def create_supplier(self, data: s.SupplierCreate, actor: Principal | None) -> m.Supplier:
        await self._check_identifiers_free(data.identifiers, None)
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

    async def update_supplier(self, supplier_id: int, data: s.SupplierUpdate, actor: Principal) -> m.Supplier:
        supplier = await self.get_or_404(supplier_id)
        fields = _unset_dropped(data)
        identifiers = fields.pop("identifiers", None)
        if "name" in fields:
            fields["name"] = fields["name"].strip()
            fields["name_key"] = _org_name_key(fields["name"])
        if "postcode" in fields:
            fields["postcode_source"] = "manual" if fields["postcode"] else None
        changes = _apply(supplier, fields)
        if identifiers is not None:
            await self._check_identifiers_free(identifiers, supplier.id)
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
            )
        await self.repository.session.flush()
        return supplier

    async def get_or_404(self, supplier_id: int) -> m.Supplier:
        supplier: m.Supplier | None = await self.repository.get_one_or_none(id=supplier_id)
        if supplier is None:
            raise NotFound(f"No supplier with id {supplier_id}.")
        return supplier

    async def _check_identifiers_free(self, identifiers: Iterable[s.IdentifierIn], own_id: int | None) -> None:
        for ident in identifiers:
            holder = await self.repository.session.scalar(
                select(m.SupplierIdentifier.supplier_id).where(
                    m.SupplierIdentifier.scheme == ident.scheme, m.SupplierIdentifier.value == ident.id
                )
            )
            if holder is not None and holder != own_id:
                raise DomainError(f"Identifier {ident.scheme} {ident.id} already belongs to supplier {holder}.")


def supplier_schema(supplier: m.Supplier) -> s.Supplier:
    return s.Supplier(
        id=supplier.id,
        name=supplier.name,
        street_address=supplier.street_address,
        locality=supplier.locality,
        postcode=supplier.postcode,
        postcode_source=supplier.postcode_source,
        country=supplier.country,
        declared_scale=supplier.declared_scale,
        declared_vcse=supplier.declared_vcse,
        identifiers=[s.Identifier(scheme=i.scheme, id=i.value) for i in supplier.identifiers],
    )


# Contracts -----------------------------------------------------------------------------------------------------


class ContractService(SQLAlchemyAsyncRepositoryService[m.Contract]):
    class Repo(SQLAlchemyAsyncRepository[m.Contract]):
        model_type = m.Contract

    repository_type = Repo

    async def get_or_404(self, contract_id: int) -> m.Contract:
        contract: m.Contract | None = await self.repository.get_one_or_none(id=contract_id)
        if contract is None:
            raise NotFound(f"No contract with id {contract_id}.")
        return contract

    async def list_contracts(
        self,
        *,
        limit: int,
        offset: int,
        buyer_id: int | None = None,
        supplier_id: int | None = None,
        award_from: dt.date | None = None,
        award_to: dt.date | None = None,
        cpv: str | None = None,
        status: str | None = None,
        source: str | None = None,
    ) -> tuple[Sequence[m.Contract], int]:
        conditions: list[ColumnElement[bool]] = []
        if buyer_id is not None:
            conditions.append(m.Contract.buyer_id == buyer_id)
        if supplier_id is not None:
            conditions.append(
                exists().where(
                    and_(m.ContractSupplier.contract_id == m.Contract.id, m.ContractSupplier.supplier_id == supplier_id)
                )
            )
        if award_from is not None:
            conditions.append(m.Contract.award_date >= award_from)
        if award_to is not None:
            conditions.append(m.Contract.award_date <= award_to)
        if cpv:
            conditions.append(
                exists().where(and_(m.ContractCpv.contract_id == m.Contract.id, m.ContractCpv.code.startswith(cpv)))
            )
        if status:
            conditions.append(m.Contract.status == status)
        if source:
            conditions.append(m.Contract.source == source)
        session = self.repository.session
        total = await session.scalar(select(func.count()).select_from(m.Contract).where(*conditions)) or 0
        rows = await session.scalars(
            select(m.Contract)
            .where(*conditions)
            .order_by(m.Contract.award_date.desc().nulls_last(), m.Contract.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return rows.unique().all(), total

    async def _suppliers_exist(self, ids: Iterable[int]) -> None:
        wanted = set(ids)
        found = set(
            (await self.repository.session.scalars(select(m.Supplier.id).where(m.Supplier.id.in_(wanted)))).all()
        )
        missing = sorted(wanted - found)
        if missing:
            raise DomainError(f"No supplier with id {', '.join(map(str, missing))}.")

    @staticmethod
    def _shares(value_pence: int | None, suppliers: list[s.ContractSupplierIn]) -> list[m.ContractSupplier]:
        stated = [x.share for x in suppliers if x.share is not None]
        if stated and len(stated) != len(suppliers):
            raise DomainError("Give a share for every supplier, or for none (the value is then split evenly).")
        if stated:
            pence = [to_pence(x.share, field="share") for x in suppliers if x.share is not None]
            if value_pence is None:
                raise DomainError("Supplier shares need a contract value.")
            if sum(pence) != value_pence:
                raise DomainError(
                    f"Supplier shares add up to {format_pence(sum(pence))}, not the value {format_pence(value_pence)}."
                )
            basis = ["stated"] * len(pence)
            values: list[int | None] = list(pence)
        elif value_pence is None:
            values, basis = [None] * len(suppliers), ["unknown"] * len(suppliers)
        else:
            values = list(split_evenly(value_pence, len(suppliers)))
            basis = ["stated" if len(suppliers) == 1 else "equal_split"] * len(suppliers)
        return [
            m.ContractSupplier(supplier_id=x.supplier_id, share_pence=v, share_basis=b, position=i)
            for i, (x, v, b) in enumerate(zip(suppliers, values, basis, strict=True))
        ]

    async def create_contract(self, data: s.ContractCreate, actor: Principal) -> m.Contract:
        ensure_can_write_for(actor, data.buyer_id)
        if await self.repository.session.get(m.Organisation, data.buyer_id) is None:
            raise DomainError(f"No organisation with id {data.buyer_id}.")
        await self._suppliers_exist(x.supplier_id for x in data.suppliers)
        value_pence = to_pence(data.value) if data.value is not None else None
        contract = m.Contract(
            source=m.ContractSource.MANUAL.value,
            source_id=data.reference,
            buyer_id=data.buyer_id,
            title=data.title.strip(),
            description=data.description,
            value_pence=value_pence,
            currency=data.currency,
            award_date=data.award_date,
            start_date=data.start_date,
            end_date=data.end_date,
            status=m.ContractStatus.ACTIVE.value,
            cpv=[m.ContractCpv(code=c, position=i) for i, c in enumerate(data.cpv_codes)],
            suppliers=self._shares(value_pence, data.suppliers),
        )
        self.repository.session.add(contract)
        await self.repository.session.flush()
        await record_audit(
            self.repository.session,
            actor=actor,
            action="contract.create",
            entity_type="contract",
            entity_id=contract.id,
            organisation_id=contract.buyer_id,
            changes={
                "title": (None, contract.title),
                "value_pence": (None, value_pence),
                "currency": (None, contract.currency),
                "suppliers": (None, [x.supplier_id for x in data.suppliers]),
            },
        )
        return await self._reload(contract.id)

    async def update_contract(self, contract_id: int, data: s.ContractUpdate, actor: Principal) -> m.Contract:
        contract = await self.get_or_404(contract_id)
        ensure_can_write_for(actor, contract.buyer_id)
        if contract.status == m.ContractStatus.WITHDRAWN.value:
            raise DomainError("A withdrawn contract cannot be changed.")
        fields = _unset_dropped(data)
        cpv_codes = fields.pop("cpv_codes", None)
        suppliers = fields.pop("suppliers", None)
        if "reference" in fields:
            fields["source_id"] = fields.pop("reference")
        if "value" in fields:
            value = fields.pop("value")
            fields["value_pence"] = to_pence(value) if value is not None else None
        if "title" in fields:
            fields["title"] = fields["title"].strip()
        s.check_dates(
            fields.get("start_date", contract.start_date),
            fields.get("end_date", contract.end_date),
        )
        changes = _apply(contract, fields)
        if cpv_codes is not None:
            old_cpv = [c.code for c in contract.cpv]
            if old_cpv != cpv_codes:
                contract.cpv.clear()
                await self.repository.session.flush()
                contract.cpv.extend(m.ContractCpv(code=c, position=i) for i, c in enumerate(cpv_codes))
                changes["cpv_codes"] = (old_cpv, cpv_codes)
        if suppliers is not None or "value_pence" in changes:
            await self._replace_shares(contract, suppliers, changes)
        if changes:
            await record_audit(
                self.repository.session,
                actor=actor,
                action="contract.update",
                entity_type="contract",
                entity_id=contract.id,
                organisation_id=contract.buyer_id,
                changes=changes,
            )
        await self.repository.session.flush()
        return await self._reload(contract.id)

    async def _replace_shares(
        self,
        contract: m.Contract,
        suppliers: list[s.ContractSupplierIn] | None,
        changes: dict[str, tuple[Any, Any]],
    ) -> None:
        if suppliers is None:
            if any(x.share_basis == "stated" for x in contract.suppliers) and len(contract.suppliers) > 1:
                raise DomainError("The value changed: send the supplier shares again so they add up.")
            suppliers = [s.ContractSupplierIn(supplier_id=x.supplier_id) for x in contract.suppliers]
        await self._suppliers_exist(x.supplier_id for x in suppliers)
        old = [(x.supplier_id, x.share_pence) for x in contract.suppliers]
        new_rows = self._shares(contract.value_pence, suppliers)
        new = [(x.supplier_id, x.share_pence) for x in new_rows]
        if old != new:
            contract.suppliers.clear()
            await self.repository.session.flush()
            contract.suppliers.extend(new_rows)
            changes["suppliers"] = (old, new)

    async def withdraw_contract(self, contract_id: int, reason: str, actor: Principal) -> m.Contract:
        contract = await self.get_or_404(contract_id)
        ensure_can_write_for(actor, contract.buyer_id)
        if contract.status == m.ContractStatus.WITHDRAWN.value:
            raise DomainError("The contract is already withdrawn.")
        changes = _apply(
            contract,
            {
                "status": m.ContractStatus.WITHDRAWN.value,
                "withdrawn_reason": reason.strip(),
                "withdrawn_at": dt.datetime.now(dt.UTC),
            },
        )
        await record_audit(
            self.repository.session,
            actor=actor,
            action="contract.withdraw",
            entity_type="contract",
            entity_id=contract.id,
            organisation_id=contract.buyer_id,
            changes={"status": changes["status"]},
            reason=reason.strip(),
        )
        await self.repository.session.flush()
        return await self._reload(contract.id)

    async def _reload(self, contract_id: int) -> m.Contract:
        session = self.repository.session
        contract: m.Contract | None = await session.get(m.Contract, contract_id, populate_existing=True)
        if contract is None:  # pragma: no cover - just written in this transaction
            raise NotFound(f"No contract with id {contract_id}.")
        await session.refresh(contract, ["cpv", "suppliers", "buyer"])
        return contract


def contract_schema(contract: m.Contract) -> s.Contract:
    return s.Contract(
        id=contract.id,
        source=contract.source,
        source_id=contract.source_id,
        award_id=contract.award_id,
        buyer=s.BuyerRef(id=contract.buyer.id, name=contract.buyer.name),
        title=contract.title,
        description=contract.description,
        cpv_codes=[c.code for c in contract.cpv],
        value=format_pence(contract.value_pence),
        value_pence=contract.value_pence,
        currency=contract.currency,
        non_gbp=contract.currency != "GBP",
        award_date=contract.award_date,
        start_date=contract.start_date,
        end_date=contract.end_date,
        status=m.ContractStatus(contract.status),
        withdrawn_reason=contract.withdrawn_reason,
        suppliers=[
            s.ContractSupplierOut(
                supplier_id=x.supplier_id,
                name=x.supplier.name,
                share=format_pence(x.share_pence),
                share_pence=x.share_pence,
                share_basis=x.share_basis,
            )
            for x in contract.suppliers
        ],
        created_at=contract.created_at,
        updated_at=contract.updated_at,
    )
