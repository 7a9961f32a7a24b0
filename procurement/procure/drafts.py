"""Uploads in progress: the file kept under the work folder, its draft row, and the columns an organisation chose.

A checked sheet waits as ``<work dir>/uploads/<organisation>-<sha256>.<csv|xlsx>`` with an ``UploadDraft`` row
until it is saved or discarded (both delete the file and the row). Abandoned ones go after
``Settings.upload_max_age_hours``: pruned whenever a sheet is uploaded and by ``localvalue uploads prune``.
Column choices are kept per organisation and heading set (``ColumnMapping``) and never shown to another one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import clock
from procurement import models as m
from procurement.audit import record_audit
from procurement.auth import Principal
from procurement.contracts.register_sheet import header_key
from procurement.errors import NotFound

UPLOADS = "uploads"
_KEY = re.compile(r"\d+-[0-9a-f]{64}\.(csv|xlsx)")


def uploads_dir(work_dir: Path) -> Path:
    return work_dir / UPLOADS


def store_file(work_dir: Path, organisation_id: int, data: bytes, filename: str) -> str:
    """Keep the uploaded bytes until the draft is saved or discarded; the name to find them by."""
    suffix = ".xlsx" if filename.lower().endswith(".xlsx") else ".csv"
    key = f"{organisation_id}-{hashlib.sha256(data).hexdigest()}{suffix}"
    folder = uploads_dir(work_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / key).write_bytes(data)
    return key


def load_file(work_dir: Path, key: str) -> bytes | None:
    if not _KEY.fullmatch(key):
        return None
    path = uploads_dir(work_dir) / key
    return path.read_bytes() if path.is_file() else None


def delete_file(work_dir: Path, key: str) -> None:
    if _KEY.fullmatch(key):
        (uploads_dir(work_dir) / key).unlink(missing_ok=True)


async def save_draft(
    session: AsyncSession,
    organisation_id: int,
    key: str,
    filename: str,
    headings: list[str],
    row_count: int,
    actor: Principal,
) -> m.UploadDraft:
    """The draft for this file (the same sheet uploaded again is the same draft, started afresh)."""
    draft = await session.scalar(
        select(m.UploadDraft).where(m.UploadDraft.organisation_id == organisation_id, m.UploadDraft.file_key == key)
    )
    if draft is None:
        draft = m.UploadDraft(organisation_id=organisation_id, file_key=key)
        session.add(draft)
    draft.filename = filename[:255]
    draft.headings = headings
    draft.mapping = None
    draft.row_count = row_count
    draft.created_by = actor.name
    draft.created_by_user_id = actor.user_id
    draft.created_at = clock.now()
    await session.flush()
    await record_audit(
        session,
        actor=actor,
        action="upload_draft.create",
        entity_type="upload_draft",
        entity_id=draft.id,
        organisation_id=organisation_id,
        changes={"filename": (None, draft.filename), "row_count": (None, row_count)},
    )
    return draft


async def get_draft(session: AsyncSession, draft_id: int) -> m.UploadDraft:
    """The draft; the caller checks the person may act for its organisation."""
    draft = await session.get(m.UploadDraft, draft_id)
    if draft is None:
        raise NotFound("That upload is no longer waiting: it was saved, discarded or expired. Upload the file again.")
    return draft


async def list_drafts(session: AsyncSession, organisation_id: int) -> list[m.UploadDraft]:
    rows = await session.scalars(
        select(m.UploadDraft)
        .where(m.UploadDraft.organisation_id == organisation_id)
        .order_by(m.UploadDraft.created_at.desc(), m.UploadDraft.id.desc())
    )
    return list(rows.all())


async def finish_draft(session: AsyncSession, draft: m.UploadDraft, actor: Principal, outcome: str) -> None:
    """Saved, discarded or gone: the row goes in the caller's transaction (audited with what became of it); the
    caller deletes the file once committed."""
    await record_audit(
        session,
        actor=actor,
        action=f"upload_draft.{outcome}",
        entity_type="upload_draft",
        entity_id=draft.id,
        organisation_id=draft.organisation_id,
        changes={"filename": (draft.filename, None)},
    )
    await session.delete(draft)
    await session.flush()


async def remembered_mapping(
    session: AsyncSession, organisation_id: int, headings: list[str]
) -> m.ColumnMapping | None:
    saved: m.ColumnMapping | None = await session.scalar(
        select(m.ColumnMapping).where(
            m.ColumnMapping.organisation_id == organisation_id, m.ColumnMapping.header_key == header_key(headings)
        )
    )
    return saved


async def remember_mapping(
    session: AsyncSession, organisation_id: int, headings: list[str], mapping: dict[str, str], actor: Principal
) -> None:
    """Keep the organisation's choice for sheets with these headings (audited when it is new or changed)."""
    saved = await remembered_mapping(session, organisation_id, headings)
    old = dict(saved.mapping) if saved is not None else None
    if old == mapping:
        return
    if saved is None:
        saved = m.ColumnMapping(organisation_id=organisation_id, header_key=header_key(headings))
        session.add(saved)
    saved.headings = headings
    saved.mapping = mapping
    saved.updated_at = clock.now()
    saved.updated_by = actor.name
    await session.flush()
    await record_audit(
        session,
        actor=actor,
        action="column_mapping.save",
        entity_type="column_mapping",
        entity_id=saved.id,
        organisation_id=organisation_id,
        changes={"mapping": (old, mapping)},
    )


@dataclass(frozen=True)
class Pruned:
    drafts: int
    files: int


async def prune_uploads(session: AsyncSession, work_dir: Path, max_age: dt.timedelta) -> Pruned:
    """Drafts older than ``max_age`` and their files, then any file in the folder older than that with no draft.

    The caller commits. A file is judged by its modification time, so one whose draft row was lost (a crash
    between writing the file and committing) still goes.
    """
    cutoff = clock.now() - max_age
    old = (
        await session.execute(select(m.UploadDraft.id, m.UploadDraft.file_key).where(m.UploadDraft.created_at < cutoff))
    ).all()
    if old:
        await session.execute(delete(m.UploadDraft).where(m.UploadDraft.id.in_([r.id for r in old])))
    waiting = set((await session.scalars(select(m.UploadDraft.file_key))).all())
    folder = uploads_dir(work_dir)
    files = 0
    if folder.is_dir():
        for path in folder.iterdir():
            stale = dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.UTC) < cutoff
            if (
                _KEY.fullmatch(path.name)
                and path.name not in waiting
                and (stale or path.name in {r.file_key for r in old})
            ):
                path.unlink(missing_ok=True)
                files += 1
    return Pruned(drafts=len(old), files=files)
