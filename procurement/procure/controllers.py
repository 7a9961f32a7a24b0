"""Pages for procurement teams: their organisation at a glance, the contracts register, and the supplier search.

(The upload pages are in ``upload_controllers``; split the rest by page family - contracts, suppliers,
commitments - when it next grows.)

Every form works without JavaScript. A contract is saved in two steps: the form, then a page showing what was
understood ("£80,000.00", "12 May 2025") with a button to save it; both steps post the same fields, so the
saved contract is exactly the one that was shown. Writes go through ``ContractService`` (the API's rules and
audit); an editor acts only for their own organisation.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import Parameter, QueryParameter
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER, HTTP_400_BAD_REQUEST
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import clock
from procurement import models as m
from procurement.auth import Principal, ensure_can_write_for, requires_token
from procurement.contracts.people_input import PeopleInputError, parse_quarter
from procurement.contracts.schemas import ContractCreate, ContractSupplierIn, ContractUpdate
from procurement.contracts.service import ContractService
from procurement.errors import DomainError, Forbidden, NotFound
from procurement.metrics.commitments import create_commitment, enter_return, get_commitment, list_commitments
from procurement.metrics.measures import list_measures
from procurement.metrics.schemas import CommitmentCreate, ReturnCreate
from procurement.money import format_pence
from procurement.procure.evidence import MAX_EVIDENCE_BYTES, checked_evidence, parse_targets
from procurement.procure.service import (
    FORM_FIELDS,
    MAX_REASON,
    SUPPLIER_FIELDS,
    ContractForm,
    classifications_of,
    contract_history,
    likely_duplicates,
    organisation_for,
    overview,
    read_contract_form,
    read_supplier_form,
    search_suppliers,
)
from procurement.settings import Settings
from procurement.suppliers.service import SupplierService
from procurement.web.frame import NO_STORE, PAGE_EXCEPTION_HANDLERS, SETTINGS_STATE_KEY, page_context
from procurement.workspace.service import CATEGORY_NAMES

OrganisationChoice = Annotated[
    int | None, QueryParameter(name="organisation", ge=1, description="Admins: the organisation to work on.")
]
PAGE = 50


def _contract_fields(read: ContractForm) -> dict[str, Any]:
    """What a confirmed form says of a contract, as the API's create and update bodies take it."""
    v = read.values
    return {
        "title": v["title"],
        "reference": v["reference"],
        "suppliers": [ContractSupplierIn(supplier_id=s.id) for s in read.suppliers],
        "cpv_codes": v["cpv"],
        "value": _pounds_decimal(v["value"]),
        "award_date": v["award_date"],
        "start_date": v["start_date"],
        "end_date": v["end_date"],
    }


def _pounds_decimal(pence: int | None) -> Decimal | None:
    return None if pence is None else Decimal(format_pence(pence) or "0")


def _form_values(contract: m.Contract) -> dict[str, str]:
    """A saved contract written back the way people type it, to edit."""
    return {
        "title": contract.title,
        "reference": contract.source_id or "",
        "value": f"{_pounds_decimal(contract.value_pence):,}" if contract.value_pence is not None else "",
        "award_date": contract.award_date.strftime("%d/%m/%Y") if contract.award_date else "",
        "start_date": contract.start_date.strftime("%d/%m/%Y") if contract.start_date else "",
        "end_date": contract.end_date.strftime("%d/%m/%Y") if contract.end_date else "",
        "cpv": ", ".join(c.code for c in contract.cpv),
        "suppliers": "\n".join(f"#{s.supplier_id}" for s in contract.suppliers),
        "reason": "",
    }


class ProcurementController(Controller):
    path = "/workspace"
    include_in_schema = False
    guards = [requires_token]
    exception_handlers = PAGE_EXCEPTION_HANDLERS
    response_headers = NO_STORE

    @get("/organisation", name="workspace-organisation")
    async def organisation_page(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, organisation: OrganisationChoice = None
    ) -> Template:
        organisation_id = organisation_for(request.user, organisation)
        settings: Settings = request.app.state[SETTINGS_STATE_KEY]
        board = await overview(db_session, organisation_id, draft_hours=settings.upload_max_age_hours)
        return Template(
            template_name="procure/organisation.html",
            context=page_context(request, "/workspace/organisation", board=board),
        )

    @get("/contracts", name="workspace-contracts")
    async def contracts_page(
        self,
        request: Request[Principal, Any, Any],
        db_session: AsyncSession,
        organisation: OrganisationChoice = None,
        status: str | None = Parameter(default=None, pattern="^(active|pending|withdrawn)?$"),
        cpv: str | None = Parameter(default=None, pattern=r"^\d{0,8}$"),
        page: int = Parameter(default=1, ge=1, le=100_000),
    ) -> Template:
        organisation_id = organisation_for(request.user, organisation)
        rows, total = await ContractService(session=db_session).list_contracts(
            limit=PAGE, offset=(page - 1) * PAGE, buyer_id=organisation_id, status=status or None, cpv=cpv or None
        )
        return Template(
            template_name="procure/contracts.html",
            context=page_context(
                request,
                "/workspace/contracts",
                contracts=rows,
                total=total,
                page=page,
                pages=max(1, -(-total // PAGE)),
                status=status or "",
                cpv=cpv or "",
                organisation=await db_session.get(m.Organisation, organisation_id),
            ),
        )

    @get("/contracts/new", name="workspace-contract-new")
    async def new_contract(
        self, request: Request[Principal, Any, Any], organisation: OrganisationChoice = None
    ) -> Template:
        organisation_for(request.user, organisation)
        return _form_page(request, ContractForm(raw=dict.fromkeys(FORM_FIELDS, "")), None, organisation)

    @post("/contracts/new")
    async def new_contract_submit(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, organisation: OrganisationChoice = None
    ) -> Response[Any]:
        organisation_id = organisation_for(request.user, organisation)
        form = await request.form()
        read = await read_contract_form(db_session, form)
        if read.errors:
            return _form_page(request, read, None, organisation, status=HTTP_400_BAD_REQUEST)
        if form.get("back") == "yes":
            return _form_page(request, read, None, organisation)
        if form.get("confirm") != "yes":
            return _confirm_page(request, read, None, organisation)
        saved = await ContractService(session=db_session).create_contract(
            ContractCreate(buyer_id=organisation_id, **_contract_fields(read)), request.user
        )
        await db_session.commit()  # "autocommit" leaves redirects uncommitted
        return Redirect(f"/workspace/contracts/{saved.id}?saved=1", status_code=HTTP_303_SEE_OTHER)

    @get("/contracts/{contract_id:int}", name="workspace-contract")
    async def contract_page(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, contract_id: int, saved: bool = False
    ) -> Template:
        contract = await ContractService(session=db_session).get_or_404(contract_id)
        ensure_can_write_for(request.user, contract.buyer_id)
        return await _contract_template(request, db_session, contract, saved=saved)

    @get("/contracts/{contract_id:int}/edit", name="workspace-contract-edit")
    async def edit_contract(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, contract_id: int
    ) -> Template:
        contract = await ContractService(session=db_session).get_or_404(contract_id)
        ensure_can_write_for(request.user, contract.buyer_id)
        return _form_page(request, ContractForm(raw=_form_values(contract)), contract, None)

    @post("/contracts/{contract_id:int}/edit")
    async def edit_contract_submit(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, contract_id: int
    ) -> Response[Any]:
        service = ContractService(session=db_session)
        contract = await service.get_or_404(contract_id)
        ensure_can_write_for(request.user, contract.buyer_id)
        form = await request.form()
        read = await read_contract_form(db_session, form, needs_reason=True)
        if read.errors:
            return _form_page(request, read, contract, None, status=HTTP_400_BAD_REQUEST)
        if form.get("back") == "yes":
            return _form_page(request, read, contract, None)
        if form.get("confirm") != "yes":
            return _confirm_page(request, read, contract, None)
        await service.update_contract(
            contract_id,
            ContractUpdate(**_contract_fields(read)),
            request.user,
            reason=read.raw["reason"][:MAX_REASON],
        )
        await db_session.commit()  # "autocommit" leaves redirects uncommitted
        return Redirect(f"/workspace/contracts/{contract_id}?saved=1", status_code=HTTP_303_SEE_OTHER)

    @post("/contracts/{contract_id:int}/withdraw")
    async def withdraw_contract(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, contract_id: int
    ) -> Response[Any]:
        service = ContractService(session=db_session)
        contract = await service.get_or_404(contract_id)
        ensure_can_write_for(request.user, contract.buyer_id)
        form = await request.form()
        reason = form.get("reason")
        reason = reason.strip()[:MAX_REASON] if isinstance(reason, str) else ""
        if not reason:
            return await _contract_template(
                request,
                db_session,
                contract,
                errors={"reason": "Enter why the contract is withdrawn, for example Awarded in error"},
            )
        await service.withdraw_contract(contract_id, reason, request.user)
        await db_session.commit()  # "autocommit" leaves redirects uncommitted
        return Redirect(f"/workspace/contracts/{contract_id}?saved=1", status_code=HTTP_303_SEE_OTHER)

    @post("/contracts/{contract_id:int}/commitments")
    async def add_commitment(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, contract_id: int
    ) -> Response[Any]:
        contract = await ContractService(session=db_session).get_or_404(contract_id)
        ensure_can_write_for(request.user, contract.buyer_id)
        form = await request.form()
        typed = {name: _field(form, name) for name in ("measure_id", "unit", "note")}
        targets_text = form.get("targets")
        typed["targets"] = targets_text[:4000] if isinstance(targets_text, str) else ""
        errors: dict[str, str] = {}
        if not typed["measure_id"].isdigit():
            errors["measure_id"] = "Choose the measure this commitment is counted in"
        try:
            targets = parse_targets(typed["targets"])
        except PeopleInputError as exc:
            errors["targets"] = str(exc)
            targets = []
        if not errors:
            try:
                data = msgspec.convert(
                    {
                        "measure_id": int(typed["measure_id"]),
                        "targets": [{"period": p, "quantity": str(q)} for p, q in targets],
                        "unit": typed["unit"] or None,
                        "note": typed["note"] or None,
                    },
                    CommitmentCreate,
                )
                await create_commitment(db_session, contract_id, data, request.user)
            except msgspec.ValidationError as exc:
                errors["targets"] = str(exc)
            except DomainError as exc:
                errors["unit" if "(unit)" in exc.detail else "targets"] = exc.detail
        if errors:
            return await _contract_template(request, db_session, contract, errors=errors, commitment_form=typed)
        await db_session.commit()
        return Redirect(f"/workspace/contracts/{contract_id}?saved=1#commitments", status_code=HTTP_303_SEE_OTHER)

    @get("/commitments/{commitment_id:int}/return", name="workspace-return-new")
    async def return_page(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, commitment_id: int
    ) -> Template:
        commitment, contract = await get_commitment(db_session, commitment_id)
        ensure_can_write_for(request.user, contract.buyer_id)
        return _return_form(request, commitment, contract, dict.fromkeys(RETURN_FIELDS, ""), {})

    @post("/commitments/{commitment_id:int}/return", request_max_body_size=MAX_EVIDENCE_BYTES + 65_536)
    async def return_submit(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, commitment_id: int
    ) -> Response[Any]:
        commitment, contract = await get_commitment(db_session, commitment_id)
        ensure_can_write_for(request.user, contract.buyer_id)
        form = await request.form()
        typed = {name: _field(form, name) for name in RETURN_FIELDS}
        errors, period, quantity = _read_return(typed)
        upload = form.get("evidence_file")
        evidence: tuple[bytes, str, str, str] | None = None
        if isinstance(upload, UploadFile) and upload.filename:
            content = await upload.read()
            try:
                evidence = (content, *checked_evidence(content, upload.filename))
            except ValueError as exc:
                errors["evidence_file"] = str(exc)
        if not errors and not (typed["evidence_note"] or typed["evidence_url"] or evidence):
            errors["evidence_note"] = "Give the evidence: a note, a link or a file"
        row = None
        if not errors:
            note = typed["evidence_note"] or (f"See the attached file {evidence[1]}." if evidence else None)
            try:
                data = msgspec.convert(
                    {
                        "period": period,
                        "quantity": str(quantity),
                        "evidence_note": note,
                        "evidence_url": typed["evidence_url"] or None,
                    },
                    ReturnCreate,
                )
                row = await enter_return(db_session, commitment_id, data, request.user)
            except msgspec.ValidationError as exc:
                if "evidence_url" in str(exc):
                    errors["evidence_url"] = (
                        "Enter a link starting with https://, for example https://example.org/report"
                    )
                else:
                    errors["quantity"] = str(exc)
            except DomainError as exc:
                errors["period"] = exc.detail
        if row is None:
            return _return_form(request, commitment, contract, typed, errors, status=HTTP_400_BAD_REQUEST)
        if evidence is not None:
            content, name, content_type, digest = evidence
            db_session.add(
                m.EvidenceFile(
                    return_id=row.id,
                    filename=name,
                    content_type=content_type,
                    size_bytes=len(content),
                    sha256=digest,
                    content=content,
                    uploaded_by=request.user.name,
                    uploaded_at=clock.now(),
                )
            )
        await db_session.commit()
        return Redirect(f"/workspace/contracts/{contract.id}?saved=1#commitments", status_code=HTTP_303_SEE_OTHER)

    @get("/evidence/{file_id:int}", name="workspace-evidence")
    async def evidence_file(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, file_id: int
    ) -> Response[bytes]:
        stored = await db_session.get(m.EvidenceFile, file_id)
        returned = await db_session.get(m.DeliveryReturn, stored.return_id) if stored else None
        if stored is None or returned is None:
            raise NotFound(f"No evidence file {file_id}.")
        _commitment, contract = await get_commitment(db_session, returned.commitment_id)
        if not request.user.may_act_for(contract.buyer_id):
            raise Forbidden("Only the organisation's editors and its reviewers can open its evidence.")
        # Always a download, never rendered: a file that claims to be a page cannot run in this site's origin.
        return Response(
            stored.content,
            media_type=stored.content_type,
            headers={
                "Content-Disposition": f'attachment; filename="{stored.filename}"',
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'none'; sandbox",
            },
        )

    @get("/suppliers", name="workspace-suppliers")
    async def suppliers_page(
        self,
        request: Request[Principal, Any, Any],
        db_session: AsyncSession,
        q: str = Parameter(default="", max_length=200),
    ) -> Template:
        found = await search_suppliers(db_session, q)
        classified = await classifications_of(db_session, [s.id for s in found])
        # htmx asks for the results alone (search as you type); without JavaScript the whole page comes back.
        partial = request.headers.get("HX-Request") == "true"
        return Template(
            template_name="procure/supplier_results.html" if partial else "procure/suppliers.html",
            context=page_context(
                request,
                "/workspace/suppliers",
                q=q,
                found=found,
                classified=classified,
                category_names=CATEGORY_NAMES,
            ),
        )

    @get("/suppliers/new", name="workspace-supplier-new")
    async def new_supplier(self, request: Request[Principal, Any, Any]) -> Template:
        _ensure_keeper(request.user)
        return _supplier_form(request, dict.fromkeys(SUPPLIER_FIELDS, ""), {}, [])

    @post("/suppliers/new")
    async def new_supplier_submit(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession
    ) -> Response[Any]:
        _ensure_keeper(request.user)
        form = await request.form()
        typed = {name: _field(form, name) for name in SUPPLIER_FIELDS}
        errors, data = read_supplier_form(typed)
        if errors or data is None:
            return _supplier_form(request, typed, errors, [], status=HTTP_400_BAD_REQUEST)
        duplicates = await likely_duplicates(db_session, data.name, data.postcode)
        if duplicates and form.get("not_a_duplicate") != "yes":
            return _supplier_form(request, typed, {}, duplicates)
        try:
            supplier = await SupplierService(session=db_session).create_supplier(data, request.user)
        except DomainError as exc:
            return _supplier_form(request, typed, {"coh": exc.detail}, [], status=HTTP_400_BAD_REQUEST)
        await db_session.commit()
        return Redirect(
            f"/workspace/suppliers?q=%23{supplier.id}&created={supplier.id}", status_code=HTTP_303_SEE_OTHER
        )


RETURN_FIELDS = ("period", "quantity", "evidence_note", "evidence_url")


def _read_return(typed: dict[str, str]) -> tuple[dict[str, str], str | None, Decimal | None]:
    errors: dict[str, str] = {}
    period = quantity = None
    try:
        period = parse_quarter(typed["period"], field="the quarter")
    except PeopleInputError as exc:
        errors["period"] = str(exc)
    try:
        quantity = Decimal(typed["quantity"].replace(",", "")) if typed["quantity"] else None
    except InvalidOperation:
        quantity = None
    if quantity is None or not quantity.is_finite() or quantity < 0:
        errors["quantity"] = "Enter what was delivered as a number, for example 12 or 2.5"
    return errors, period, quantity


def _return_form(
    request: Request[Principal, Any, Any],
    commitment: m.Commitment,
    contract: m.Contract,
    typed: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
) -> Template:
    return Template(
        template_name="procure/return_form.html",
        context=page_context(
            request,
            "/workspace/contracts",
            commitment=commitment,
            contract=contract,
            typed=typed,
            errors=errors,
            max_mb=MAX_EVIDENCE_BYTES // 1_000_000,
        ),
        status_code=status,
    )


async def _contract_template(
    request: Request[Principal, Any, Any],
    session: AsyncSession,
    contract: m.Contract,
    *,
    saved: bool = False,
    errors: dict[str, str] | None = None,
    commitment_form: dict[str, str] | None = None,
) -> Template:
    commitments = await list_commitments(session, contract.id)
    measures = await list_measures(session, organisation_id=contract.buyer_id)
    return_ids = [r.id for c in commitments for r in c.returns]
    files: dict[int, list[Any]] = {}
    if return_ids:
        rows = await session.execute(
            select(m.EvidenceFile.id, m.EvidenceFile.return_id, m.EvidenceFile.filename, m.EvidenceFile.sha256).where(
                m.EvidenceFile.return_id.in_(return_ids)
            )
        )
        for row in rows.all():
            files.setdefault(row.return_id, []).append(row)
    return Template(
        template_name="procure/contract.html",
        context=page_context(
            request,
            "/workspace/contracts",
            contract=contract,
            saved=saved,
            history=await contract_history(session, contract.id),
            errors=errors or {},
            commitments=commitments,
            measures=measures,
            measure_names={x.id: x.name for x in measures},
            files=files,
            commitment_form=commitment_form or {"measure_id": "", "targets": "", "unit": "", "note": ""},
        ),
        status_code=HTTP_400_BAD_REQUEST if errors else 200,
    )


def _ensure_keeper(principal: Principal) -> None:
    if principal.role not in (m.Role.EDITOR, m.Role.ADMIN):
        raise Forbidden("Only editors and admins add suppliers.")


def _field(form: Any, name: str) -> str:
    value = form.get(name)
    return value.strip()[:500] if isinstance(value, str) else ""


def _supplier_form(
    request: Request[Principal, Any, Any],
    typed: dict[str, str],
    errors: dict[str, str],
    duplicates: list[Any],
    status: int = 200,
) -> Template:
    return Template(
        template_name="procure/supplier_form.html",
        context=page_context(request, "/workspace/suppliers", typed=typed, errors=errors, duplicates=duplicates),
        status_code=status,
    )


def _form_page(
    request: Request[Principal, Any, Any],
    read: ContractForm,
    contract: m.Contract | None,
    organisation: int | None,
    status: int = 200,
) -> Template:
    return Template(
        template_name="procure/contract_form.html",
        context=page_context(
            request,
            "/workspace/contracts",
            typed=read.raw,
            errors=read.errors,
            contract=contract,
            action=_action(contract, organisation),
        ),
        status_code=status,
    )


def _confirm_page(
    request: Request[Principal, Any, Any], read: ContractForm, contract: m.Contract | None, organisation: int | None
) -> Template:
    return Template(
        template_name="procure/contract_confirm.html",
        context=page_context(
            request,
            "/workspace/contracts",
            typed=read.raw,
            values=read.values,
            suppliers=read.suppliers,
            contract=contract,
            action=_action(contract, organisation),
        ),
    )


def _action(contract: m.Contract | None, organisation: int | None) -> str:
    if contract is not None:
        return f"/workspace/contracts/{contract.id}/edit"
    return "/workspace/contracts/new" + (f"?organisation={organisation}" if organisation else "")
