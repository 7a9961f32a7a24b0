"""Pages for uploading a contracts register: the template, the file, its columns, the preview, save or discard.

A checked sheet is a draft (``procurement.procure.drafts``) until it is saved or discarded, so it can be left
and resumed from "My organisation". A sheet in the template's columns goes straight to its preview; any other
gets a mapping step (each field, a select of the sheet's headings, the best guess chosen), and the choice is
remembered for that organisation and heading set, so the next upload of the same register is previewed at once
with the columns shown and a link to change them. Every page works without JavaScript.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import QueryParameter
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER, HTTP_400_BAD_REQUEST
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.auth import Principal, ensure_can_write_for, requires_token
from procurement.contracts.register_sheet import (
    FIELD_LABELS,
    MAX_ROWS,
    MAX_UPLOAD_BYTES,
    REQUIRED,
    TEMPLATE_COLUMNS,
    XLSX,
    SheetError,
    check_mapping,
    column_map,
    guess_mapping,
    is_template,
    read_rows,
    read_sheet,
    read_table,
    template,
)
from procurement.errors import NotFound
from procurement.procure.drafts import (
    delete_file,
    finish_draft,
    get_draft,
    load_file,
    prune_uploads,
    remember_mapping,
    remembered_mapping,
    save_draft,
    store_file,
)
from procurement.procure.service import organisation_for
from procurement.procure.upload import PlannedRow, commit, lock_organisation, plan
from procurement.settings import Settings
from procurement.web.frame import NO_STORE, PAGE_EXCEPTION_HANDLERS, SETTINGS_STATE_KEY, page_context

OrganisationChoice = Annotated[
    int | None, QueryParameter(name="organisation", ge=1, description="Admins: the organisation to work on.")
]


class ProcurementUploadController(Controller):
    path = "/workspace/contracts"
    include_in_schema = False
    guards = [requires_token]
    exception_handlers = PAGE_EXCEPTION_HANDLERS
    response_headers = NO_STORE

    @get(["/template.csv", "/template.xlsx"], name="workspace-contracts-template")
    async def contracts_template(self, request: Request[Principal, Any, Any]) -> Response[bytes]:
        kind = request.url.path.rsplit(".", 1)[1]
        return Response(
            template(kind),
            media_type=XLSX if kind == "xlsx" else "text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="contracts-template.{kind}"'},
        )

    @get("/upload", name="workspace-contracts-upload")
    async def upload_page(
        self, request: Request[Principal, Any, Any], organisation: OrganisationChoice = None
    ) -> Template:
        organisation_for(request.user, organisation)
        return _upload_page(request, {}, organisation=organisation)

    @post("/upload", request_max_body_size=MAX_UPLOAD_BYTES + 65_536)
    async def upload_sheet(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, organisation: OrganisationChoice = None
    ) -> Template:
        organisation_id = organisation_for(request.user, organisation)
        form = await request.form()
        upload = form.get("sheet")
        if not isinstance(upload, UploadFile) or not upload.filename:
            return _upload_page(
                request, {"sheet": "Choose a CSV or XLSX file to upload"}, HTTP_400_BAD_REQUEST, organisation
            )
        data = await upload.read()
        try:
            frame = read_table(data, upload.filename)
        except SheetError as exc:
            return _upload_page(request, {"sheet": str(exc)}, HTTP_400_BAD_REQUEST, organisation)
        settings = _settings(request)
        await prune_uploads(db_session, settings.work_dir, dt.timedelta(hours=settings.upload_max_age_hours))
        key = store_file(settings.work_dir, organisation_id, data, upload.filename)
        headings = list(frame.columns)
        draft = await save_draft(
            db_session, organisation_id, key, upload.filename, headings, frame.height, request.user
        )
        remembered = False
        if is_template(headings):
            draft.mapping = column_map(headings)
        elif (saved := await remembered_mapping(db_session, organisation_id, headings)) is not None and not (
            check_mapping(saved.mapping, headings)
        ):
            draft.mapping, remembered = dict(saved.mapping), True
        if draft.mapping is None:
            return _columns_page(request, draft, guess_mapping(headings), {})
        return await _preview(request, db_session, draft, data, remembered=remembered)

    @get("/upload/drafts/{draft_id:int}", name="workspace-upload-draft")
    async def resume(self, request: Request[Principal, Any, Any], db_session: AsyncSession, draft_id: int) -> Template:
        draft, data = await _draft_and_file(request, db_session, draft_id)
        if draft.mapping is None:
            return _columns_page(request, draft, guess_mapping(draft.headings), {})
        return await _preview(request, db_session, draft, data)

    @get("/upload/drafts/{draft_id:int}/columns", name="workspace-upload-columns")
    async def columns_page(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, draft_id: int
    ) -> Template:
        draft, _data = await _draft_and_file(request, db_session, draft_id)
        return _columns_page(request, draft, draft.mapping or guess_mapping(draft.headings), {})

    @post("/upload/drafts/{draft_id:int}/columns")
    async def columns_submit(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, draft_id: int
    ) -> Template:
        draft, data = await _draft_and_file(request, db_session, draft_id)
        form = await request.form()
        chosen = {c: v for c in TEMPLATE_COLUMNS if isinstance(v := form.get(f"column-{c}"), str) and v}
        errors = check_mapping(chosen, draft.headings)
        if errors:
            return _columns_page(request, draft, chosen, errors, status=HTTP_400_BAD_REQUEST)
        await remember_mapping(db_session, draft.organisation_id, draft.headings, chosen, request.user)
        draft.mapping = chosen
        return await _preview(request, db_session, draft, data)

    @post("/upload/drafts/{draft_id:int}/commit")
    async def commit_draft(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, draft_id: int
    ) -> Template:
        draft, data = await _draft_and_file(request, db_session, draft_id)
        if draft.mapping is None:
            return _columns_page(request, draft, guess_mapping(draft.headings), {})
        # Planned again under the organisation's lock: what is saved is checked against the register as it is now.
        await lock_organisation(db_session, draft.organisation_id)
        if await db_session.scalar(select(m.UploadDraft.id).where(m.UploadDraft.id == draft_id)) is None:
            raise NotFound(f"{draft.filename} has just been saved or discarded (perhaps in another tab).")
        rows = read_rows(read_sheet(data, draft.file_key, draft.mapping))
        planned = await plan(db_session, draft.organisation_id, rows)
        done = await commit(db_session, draft.organisation_id, planned, request.user, draft.filename)
        filename, key = draft.filename, draft.file_key
        await finish_draft(db_session, draft, request.user, "saved")
        await db_session.commit()
        delete_file(_settings(request).work_dir, key)
        return Template(
            template_name="procure/upload_done.html",
            context=page_context(request, "/workspace/contracts", done=done, filename=filename),
        )

    @post("/upload/drafts/{draft_id:int}/discard")
    async def discard_draft(
        self, request: Request[Principal, Any, Any], db_session: AsyncSession, draft_id: int
    ) -> Response[Any]:
        draft = await get_draft(db_session, draft_id)
        ensure_can_write_for(request.user, draft.organisation_id)
        key = draft.file_key
        await finish_draft(db_session, draft, request.user, "discarded")
        await db_session.commit()  # "autocommit" leaves redirects uncommitted
        delete_file(_settings(request).work_dir, key)
        where = (
            "" if request.user.organisation_id == draft.organisation_id else f"?organisation={draft.organisation_id}"
        )
        return Redirect(f"/workspace/organisation{where}#drafts", status_code=HTTP_303_SEE_OTHER)


def _settings(request: Request[Any, Any, Any]) -> Settings:
    settings: Settings = request.app.state[SETTINGS_STATE_KEY]
    return settings


async def _draft_and_file(
    request: Request[Principal, Any, Any], session: AsyncSession, draft_id: int
) -> tuple[m.UploadDraft, bytes]:
    draft = await get_draft(session, draft_id)
    ensure_can_write_for(request.user, draft.organisation_id)
    data = load_file(_settings(request).work_dir, draft.file_key)
    if data is None:
        await finish_draft(session, draft, request.user, "file_gone")
        await session.commit()
        raise NotFound(
            f"The uploaded file {draft.filename} is no longer kept (unsaved uploads are deleted after a while): "
            "upload it again"
        )
    return draft, data


async def _preview(
    request: Request[Principal, Any, Any],
    session: AsyncSession,
    draft: m.UploadDraft,
    data: bytes,
    *,
    remembered: bool = False,
) -> Template:
    assert draft.mapping is not None
    planned = await plan(session, draft.organisation_id, read_rows(read_sheet(data, draft.file_key, draft.mapping)))
    return _preview_page(request, planned, draft, remembered=remembered)


def _upload_page(
    request: Request[Principal, Any, Any], errors: dict[str, str], status: int = 200, organisation: int | None = None
) -> Template:
    return Template(
        template_name="procure/upload.html",
        context=page_context(
            request,
            "/workspace/contracts",
            errors=errors,
            max_rows=MAX_ROWS,
            max_mb=MAX_UPLOAD_BYTES // 1_000_000,
            columns=TEMPLATE_COLUMNS,
            action="/workspace/contracts/upload" + (f"?organisation={organisation}" if organisation else ""),
        ),
        status_code=status,
    )


def _columns_page(
    request: Request[Principal, Any, Any],
    draft: m.UploadDraft,
    chosen: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
) -> Template:
    return Template(
        template_name="procure/upload_columns.html",
        context=page_context(
            request,
            "/workspace/contracts",
            draft=draft,
            chosen=chosen,
            errors={f"column-{k}": v for k, v in errors.items()},
            fields=[(c, FIELD_LABELS[c], c in REQUIRED) for c in TEMPLATE_COLUMNS],
            template_columns=is_template(draft.headings),
        ),
        status_code=status,
    )


def _preview_page(
    request: Request[Principal, Any, Any], planned: list[PlannedRow], draft: m.UploadDraft, *, remembered: bool
) -> Template:
    counts = {a: sum(1 for p in planned if p.action == a) for a in ("create", "update", "unchanged", "error")}
    mapping = draft.mapping or {}
    return Template(
        template_name="procure/upload_preview.html",
        context=page_context(
            request,
            "/workspace/contracts",
            planned=planned,
            counts=counts,
            draft=draft,
            filename=draft.filename,
            remembered=remembered,
            draft_hours=_settings(request).upload_max_age_hours,
            template_columns=is_template(draft.headings),
            columns=[(FIELD_LABELS[c], mapping.get(c)) for c in TEMPLATE_COLUMNS],
            new_suppliers=len({p.row.supplier_name for p in planned if p.new_supplier and p.action != "error"}),
        ),
    )
