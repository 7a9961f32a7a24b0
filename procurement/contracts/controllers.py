"""HTTP for contracts: list, read, create, update, withdraw."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from advanced_alchemy.extensions.litestar.providers import create_service_provider
from litestar import Controller, Request, get, patch, post
from litestar.di import Provide
from litestar.params import Parameter, QueryParameter
from litestar.status_codes import HTTP_200_OK

from procurement import models as m
from procurement.auth import Principal, requires_editor, requires_token
from procurement.contracts.schemas import Contract, ContractCreate, ContractUpdate, ContractWithdraw
from procurement.contracts.service import ContractService, contract_schema
from procurement.errors import DomainError
from procurement.paging import DEFAULT_LIMIT, Limit, Offset
from procurement.schemas import IdParam, Page, id_query


class ContractController(Controller):
    path = "/contracts"
    tags = ["contracts"]
    dependencies = {"contracts": Provide(create_service_provider(ContractService))}

    @get("/", summary="List contracts", guards=[requires_token])
    async def list_contracts(
        self,
        contracts: ContractService,
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
        buyer_id: int | None = id_query(),
        supplier_id: int | None = id_query(),
        award_from: Annotated[
            dt.date | None, QueryParameter(name="from", description="Award date on or after.")
        ] = None,
        award_to: Annotated[dt.date | None, QueryParameter(name="to", description="Award date on or before.")] = None,
        cpv: str | None = Parameter(default=None, pattern=r"^\d{2,8}$", description="CPV code or prefix."),
        status: m.ContractStatus | None = None,
        source: m.ContractSource | None = None,
    ) -> Page[Contract]:
        """Contracts newest first, filtered by buyer, supplier, award dates, CPV prefix, status or source; paged."""
        if award_from and award_to and award_to < award_from:
            raise DomainError("'to' is before 'from'.")
        rows, total = await contracts.list_contracts(
            limit=limit,
            offset=offset,
            buyer_id=buyer_id,
            supplier_id=supplier_id,
            award_from=award_from,
            award_to=award_to,
            cpv=cpv,
            status=status.value if status else None,
            source=source.value if source else None,
        )
        return Page(items=[contract_schema(c) for c in rows], total=total, limit=limit, offset=offset)

    @get("/{contract_id:int}", summary="One contract", guards=[requires_token])
    async def get_contract(self, contracts: ContractService, contract_id: IdParam) -> Contract:
        """A contract with its buyer, suppliers and their shares; money as strings in pounds."""
        return contract_schema(await contracts.get_or_404(contract_id))

    @post("/", summary="Record a contract", guards=[requires_editor])
    async def create_contract(
        self, request: Request[Principal, Any, Any], contracts: ContractService, data: ContractCreate
    ) -> Contract:
        """Records a contract for the buyer the body names, split between its suppliers (evenly to the penny when no
        shares are given). Audited."""
        return contract_schema(await contracts.create_contract(data, request.user))

    @patch("/{contract_id:int}", summary="Update a contract", guards=[requires_editor])
    async def update_contract(
        self,
        request: Request[Principal, Any, Any],
        contracts: ContractService,
        contract_id: IdParam,
        data: ContractUpdate,
    ) -> Contract:
        """Changes only the fields sent; a change to value or suppliers re-splits the shares. Audited."""
        return contract_schema(await contracts.update_contract(contract_id, data, request.user))

    @post(
        "/{contract_id:int}/withdraw",
        summary="Withdraw a contract (kept, marked withdrawn)",
        guards=[requires_editor],
        status_code=HTTP_200_OK,
    )
    async def withdraw_contract(
        self,
        request: Request[Principal, Any, Any],
        contracts: ContractService,
        contract_id: IdParam,
        data: ContractWithdraw,
    ) -> Contract:
        """Marks the contract withdrawn with the reason given; it stays readable and leaves every figure. Audited."""
        return contract_schema(await contracts.withdraw_contract(contract_id, data.reason, request.user))
