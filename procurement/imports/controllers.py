"""HTTP for import runs and their notes (JSON and CSV)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any, Literal

from litestar import Controller, Request, get
from litestar.params import Parameter
from litestar.response import Stream
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.auth import requires_token
from procurement.db import ALCHEMY_STATE_KEY
from procurement.exports import SafeCsvWriter
from procurement.imports.runs import get_run, note_counts, note_filter, note_schema, run_schema, stopped_runs
from procurement.imports.schemas import ImportNote, ImportRun
from procurement.paging import DEFAULT_LIMIT, Limit, Offset
from procurement.schemas import IdParam, Page

_CSV_CHUNK = 1000


NoteLevel = Literal["info", "warning", "error"]


class ImportController(Controller):
    path = "/imports"
    tags = ["imports"]
    guards = [requires_token]

    @get("/", summary="List import runs, newest first")
    async def list_runs(
        self,
        db_session: AsyncSession,
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
        source: m.ContractSource | None = None,
        status: Literal["running", "completed", "failed", "interrupted"] | None = None,
    ) -> Page[ImportRun]:
        """Import runs newest first, with their counts; paged. A run recorded as running whose process has died is
        shown (and filtered) as interrupted, with when it last made progress and the command that resumes it."""
        stopped = await stopped_runs(db_session)
        conditions = []
        if source is not None:
            conditions.append(m.ImportRun.source == source.value)
        if status == "running":
            conditions += [m.ImportRun.status == status, m.ImportRun.id.not_in(stopped)]
        elif status == "interrupted":
            conditions.append(or_(m.ImportRun.status == status, m.ImportRun.id.in_(stopped)))
        elif status is not None:
            conditions.append(m.ImportRun.status == status)
        total = await db_session.scalar(select(func.count()).select_from(m.ImportRun).where(*conditions)) or 0
        runs = list(
            await db_session.scalars(
                select(m.ImportRun).where(*conditions).order_by(m.ImportRun.id.desc()).limit(limit).offset(offset)
            )
        )
        counts = await note_counts(db_session, [r.id for r in runs])
        items = [run_schema(r, counts.get(r.id, 0), stopped) for r in runs]
        return Page(items=items, total=total, limit=limit, offset=offset)

    @get("/{run_id:int}", summary="One import run with its counts and checkpoint")
    async def get_run(self, db_session: AsyncSession, run_id: IdParam) -> ImportRun:
        """An import run: source, window, status, counts (new, changed, unchanged, skipped, failed) and where it got
        to. A run whose process died while it was running is shown interrupted, as in the list."""
        run = await get_run(db_session, run_id)
        counts = await note_counts(db_session, [run.id])
        stopped = await stopped_runs(db_session) if run.status == m.RunStatus.RUNNING else {}
        return run_schema(run, counts.get(run.id, 0), stopped)

    @get("/{run_id:int}/notes", summary="The notes of one run (one per problem)")
    async def list_notes(
        self,
        db_session: AsyncSession,
        run_id: IdParam,
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
        level: NoteLevel | None = None,
        ocid: str | None = Parameter(default=None, max_length=200),
    ) -> Page[ImportNote]:
        """What went wrong in one run, release by release, optionally only errors or warnings; paged."""
        await get_run(db_session, run_id)
        conditions = note_filter(run_id, level)
        if ocid:
            conditions.append(m.ImportNote.ocid == ocid)
        total = await db_session.scalar(select(func.count()).select_from(m.ImportNote).where(*conditions)) or 0
        notes = await db_session.scalars(
            select(m.ImportNote).where(*conditions).order_by(m.ImportNote.id).limit(limit).offset(offset)
        )
        return Page(items=[note_schema(n) for n in notes], total=total, limit=limit, offset=offset)

    @get("/{run_id:int}/notes.csv", summary="All notes of one run as CSV (streamed)", media_type="text/csv")
    async def notes_csv(
        self, request: Request[Any, Any, Any], db_session: AsyncSession, run_id: IdParam, level: NoteLevel | None = None
    ) -> Stream:
        """Every note of one run as CSV, streamed row by row (any size)."""
        await get_run(db_session, run_id)
        config = request.app.state[ALCHEMY_STATE_KEY]

        async def rows() -> AsyncIterator[str]:
            buffer = io.StringIO()
            writer = SafeCsvWriter(buffer)
            writer.writerow(["id", "level", "ocid", "release_id", "path", "value", "message"])
            yield buffer.getvalue()
            last_id = 0
            # Its own session and keyset pages: the request's session is closed before the body is sent.
            async with config.get_session() as session:
                while True:
                    notes = list(
                        await session.scalars(
                            select(m.ImportNote)
                            .where(*note_filter(run_id, level), m.ImportNote.id > last_id)
                            .order_by(m.ImportNote.id)
                            .limit(_CSV_CHUNK)
                        )
                    )
                    if not notes:
                        return
                    buffer.seek(0)
                    buffer.truncate()
                    for n in notes:
                        writer.writerow([n.id, n.level, n.ocid, n.release_id, n.path, n.value, n.message])
                    last_id = notes[-1].id
                    yield buffer.getvalue()

        return Stream(
            rows(),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="import-{run_id}-notes.csv"'},
        )
