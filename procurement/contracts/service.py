"""Contracts recorded by procurement teams or imported from the feeds: create, update, withdraw, list."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import ColumnElement, and_, exists, func, select

from procurement import clock
from procurement import models as m
from procurement.audit import _apply, _unset_dropped, record_audit
from procurement.auth import Principal, ensure_can_write_for
from procurement.contracts.schemas import (
    BuyerRef,
    Contract,
    ContractCreate,
    ContractSupplierIn,
    ContractSupplierOut,
    ContractUpdate,
    check_dates,
)
from procurement.errors import DomainError, NotFound
from procurement.money import format_pence, split_evenly, to_pence
from procurement.suppliers.tiers import refresh_tiers


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
    def _shares(value_pence: int | None, suppliers: list[ContractSupplierIn]) -> list[m.ContractSupplier]:
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

    async def create_contract(self, data: ContractCreate, actor: Principal) -> m.Contract:
        contract = (await self.create_contracts([data], actor))[0]
        return await self._reload(contract.id)

    async def create_contracts(self, items: Sequence[ContractCreate], actor: Principal) -> list[m.Contract]:
        """One or many contracts (a spreadsheet upload) in one flush, each checked and audited on its own."""
        session = self.repository.session
        for buyer_id in dict.fromkeys(d.buyer_id for d in items):
            ensure_can_write_for(actor, buyer_id)
            if await session.get(m.Organisation, buyer_id) is None:
                raise DomainError(f"No organisation with id {buyer_id}.")
        await self._suppliers_exist(x.supplier_id for d in items for x in d.suppliers)
        contracts = []
        for data in items:
            value_pence = to_pence(data.value) if data.value is not None else None
            contracts.append(
                m.Contract(
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
            )
        session.add_all(contracts)
        await session.flush()
        for contract, data in zip(contracts, items, strict=True):
            await record_audit(
                session,
                actor=actor,
                action="contract.create",
                entity_type="contract",
                entity_id=contract.id,
                organisation_id=contract.buyer_id,
                changes={
                    "title": (None, contract.title),
                    "value_pence": (None, contract.value_pence),
                    "currency": (None, contract.currency),
                    "suppliers": (None, [x.supplier_id for x in data.suppliers]),
                },
            )
        await refresh_tiers(
            session,
            anchors={c.buyer_id for c in contracts},
            suppliers={x.supplier_id for d in items for x in d.suppliers},
        )
        return contracts

    async def update_contract(
        self, contract_id: int, data: ContractUpdate, actor: Principal, reason: str | None = None
    ) -> m.Contract:
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
        check_dates(
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
        if "suppliers" in changes:
            await self.repository.session.flush()
            old, new = changes["suppliers"]
            await refresh_tiers(
                self.repository.session, anchors=[contract.buyer_id], suppliers={s for s, _ in [*old, *new]}
            )
        if changes:
            await record_audit(
                self.repository.session,
                actor=actor,
                action="contract.update",
                entity_type="contract",
                entity_id=contract.id,
                organisation_id=contract.buyer_id,
                changes=changes,
                reason=reason.strip() if reason else None,
            )
        await self.repository.session.flush()
        return await self._reload(contract.id)

    async def _replace_shares(
        self,
        contract: m.Contract,
        suppliers: list[ContractSupplierIn] | None,
        changes: dict[str, tuple[Any, Any]],
    ) -> None:
        if suppliers is None:
            if any(x.share_basis == "stated" for x in contract.suppliers) and len(contract.suppliers) > 1:
                raise DomainError("The value changed: send the supplier shares again so they add up.")
            suppliers = [ContractSupplierIn(supplier_id=x.supplier_id) for x in contract.suppliers]
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
                "withdrawn_at": clock.now(),
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


def contract_schema(contract: m.Contract) -> Contract:
    return Contract(
        id=contract.id,
        source=contract.source,
        source_id=contract.source_id,
        award_id=contract.award_id,
        buyer=BuyerRef(id=contract.buyer.id, name=contract.buyer.name),
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
            ContractSupplierOut(
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
