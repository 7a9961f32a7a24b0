"""A contracts register uploaded as a spreadsheet, through the real app on both databases: the template (CSV and
XLSX) reads back as one valid row; a 50-row sheet in the organisation's own columns is matched once (best guesses
chosen) and its choice remembered; its three bad rows are shown and the 47 valid ones saved in one go; the
corrected sheet saves the three; the same sheet again changes nothing; a changed row updates its contract with the
file named as the reason; size, type, heading and row limits say what is wrong. A remembered mapping is the
organisation's own; a needed field left unmatched is refused by name; drafts are listed, resumed and discarded;
files go when saved or discarded and abandoned ones are pruned (on upload and by `localvalue uploads prune`)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.contracts.register_sheet import (
    MAX_ROWS,
    SheetError,
    check_mapping,
    guess_mapping,
    header_key,
    read_rows,
    read_sheet,
    template,
)
from procurement.organisations.seed import seed_anchors
from procurement.web.frame import SETTINGS_STATE_KEY
from tests.conftest import Database
from tests.support.cli import localvalue
from tests.support.people import csrf_of, form_token, make_person, sign_in

# The register()'s own headings, field by field: what the mapping page should guess and what the tests choose.
OWN_COLUMNS = {
    "reference": "Contract reference",
    "title": "Contract title",
    "value": "Value (£)",
    "award_date": "Award date",
    "cpv_codes": "CPV",
    "supplier_name": "Supplier name",
    "supplier_postcode": "Postcode",
}


@pytest.fixture
async def client(app_client: Any, tmp_path: Path) -> AsyncIterator[Any]:
    """The shared client, with uploads kept under this test's own folder (not the working directory)."""
    state = app_client.app.state
    settings = state[SETTINGS_STATE_KEY]
    state[SETTINGS_STATE_KEY] = dataclasses.replace(settings, work_dir=tmp_path)
    app_client.cookies.clear()
    app_client.follow_redirects = False
    yield app_client
    app_client.follow_redirects = True
    app_client.cookies.clear()
    state[SETTINGS_STATE_KEY] = settings


def register(rows: int = 50, bad: bool = True) -> pl.DataFrame:
    """The organisation's own headings (not the template's), 50 rows; rows 11, 22 and 33 bad if asked."""
    frame = pl.DataFrame(
        {
            "Contract reference": [f"BCC-{i:04d}" for i in range(1, rows + 1)],
            "Contract title": [f"Service {i}" for i in range(1, rows + 1)],
            "Value (£)": [f"£{i * 1000:,}.00" for i in range(1, rows + 1)],
            "Award date": [f"{(i % 28) + 1}/05/2025" for i in range(1, rows + 1)],
            "CPV": ["85100000-0"] * rows,
            "Supplier name": [f"Supplier {i % 5} Ltd" for i in range(1, rows + 1)],
            "Postcode": ["B15 2GW"] * rows,
        }
    )
    if bad:
        frame = frame.with_columns(
            pl.when(pl.int_range(pl.len()) == 10)
            .then(pl.lit("£80k"))
            .otherwise(pl.col("Value (£)"))
            .alias("Value (£)"),
            pl.when(pl.int_range(pl.len()) == 21)
            .then(pl.lit("31/02/2025"))
            .otherwise(pl.col("Award date"))
            .alias("Award date"),
            pl.when(pl.int_range(pl.len()) == 32)
            .then(pl.lit(""))
            .otherwise(pl.col("Contract reference"))
            .alias("Contract reference"),
        )
    return frame


def csv_bytes(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_csv(buffer)
    return buffer.getvalue()


def xlsx_bytes(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_excel(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_template_reads_back_as_one_valid_row(kind: str) -> None:
    rows = read_rows(read_sheet(template(kind), f"contracts-template.{kind}"))
    assert len(rows) == 1
    assert rows[0].errors == []
    assert rows[0].value_pence == 8_000_000
    assert rows[0].supplier_postcode == "B15 2GW"


def test_sheet_level_refusals() -> None:
    with pytest.raises(SheetError, match="is not a CSV or XLSX file"):
        read_sheet(b"x", "register.pdf")
    with pytest.raises(SheetError, match="upload a file of 5 MB or less"):
        read_sheet(b"x" * 5_000_001, "register.csv")
    with pytest.raises(SheetError, match="has no column for reference, supplier name"):
        read_sheet(b"Title,Value\nA,1\n", "register.csv")
    too_many = csv_bytes(register(MAX_ROWS + 1, bad=False))
    with pytest.raises(SheetError, match="has 10,001 rows: upload 10,000 rows or fewer"):
        read_sheet(too_many, "register.csv")


async def _upload(client: Any, data: bytes, name: str) -> Any:
    token = await form_token(client, "/workspace/contracts/upload")
    return await client.post(
        "/workspace/contracts/upload", data={"_csrf_token": token}, files={"sheet": (name, data, "text/csv")}
    )


def _draft(page: Any) -> int:
    found = re.search(r"/workspace/contracts/upload/drafts/(\d+)/", page.text)
    assert found, page.text
    return int(found.group(1))


def _chosen(page: Any) -> dict[str, str]:
    """What the mapping page has selected for each field."""
    chosen = {}
    for field, body in re.findall(r'<select[^>]*name="column-(\w+)"[^>]*>(.*?)</select>', page.text, re.S):
        if picked := re.search(r'<option value="([^"]+)" selected>', body):
            chosen[field] = picked.group(1)
    return chosen


async def _map(client: Any, page: Any, mapping: dict[str, str]) -> Any:
    assert "Match your columns" in page.text, page.text
    data = {"_csrf_token": csrf_of(page.text), **{f"column-{k}": v for k, v in mapping.items()}}
    return await client.post(f"/workspace/contracts/upload/drafts/{_draft(page)}/columns", data=data)


async def _commit(client: Any, preview: Any) -> Any:
    return await client.post(
        f"/workspace/contracts/upload/drafts/{_draft(preview)}/commit", data={"_csrf_token": csrf_of(preview.text)}
    )


async def _count(session: AsyncSession, model: Any) -> int:
    session.expire_all()
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _register_audit(session: AsyncSession) -> int:
    """Audit events about the register itself (a sheet waiting as a draft is audited too, but changes nothing)."""
    session.expire_all()
    query = select(func.count()).select_from(m.AuditEvent).where(m.AuditEvent.entity_type != "upload_draft")
    return int(await session.scalar(query) or 0)


async def _draft_actions(session: AsyncSession) -> list[str]:
    session.expire_all()
    rows = await session.scalars(
        select(m.AuditEvent.action).where(m.AuditEvent.entity_type == "upload_draft").order_by(m.AuditEvent.id)
    )
    return list(rows.all())


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
async def test_upload_preview_commit_fix_and_reupload(session: AsyncSession, client: Any, kind: str) -> None:
    await seed_anchors(session)
    await session.commit()
    await make_person(session, "editor@bcc.example", "editor", "E08000025")
    await sign_in(client, "editor@bcc.example")
    encode = csv_bytes if kind == "csv" else xlsx_bytes
    name = f"register.{kind}"

    columns = await _upload(client, encode(register()), name)
    assert columns.status_code == 200, columns.text
    assert _chosen(columns) == OWN_COLUMNS, "the best guesses are chosen"
    preview = await _map(client, columns, OWN_COLUMNS)
    assert preview.status_code == 200, preview.text
    text = preview.text
    assert "<strong>47</strong> new contracts" in text
    assert "<strong>3</strong> rows with problems" in text
    assert "<strong>5</strong> new suppliers" in text
    assert "Row 12 (BCC-0011): Write the value in full: &#39;£80k&#39; uses shorthand" in text
    assert "Row 23 (BCC-0022): The award date &#39;31/02/2025&#39; is not a real date" in text
    assert "Row 34: Enter a reference" in text
    assert await _count(session, m.Contract) == 0, "a preview saves nothing"

    done = await _commit(client, preview)
    assert done.status_code == 200, done.text
    assert "47 added, 0 changed, 0 unchanged, 3 not saved" in done.text
    assert await _count(session, m.Contract) == 47
    assert await _count(session, m.Supplier) == 5
    # Written set-based, audited row by row as the forms and the API audit them.
    actions = (
        await session.execute(
            select(m.AuditEvent.action, m.AuditEvent.actor_name).where(
                m.AuditEvent.entity_type.in_(["contract", "supplier"])
            )
        )
    ).all()
    assert sorted(set(actions)) == [
        ("contract.create", "editor@bcc.example"),
        ("supplier.create", "editor@bcc.example"),
    ]
    assert [a for a, _ in actions].count("contract.create") == 47
    assert [a for a, _ in actions].count("supplier.create") == 5
    first = (await session.scalars(select(m.Contract).where(m.Contract.source_id == "BCC-0001"))).one()
    assert (first.title, first.value_pence, first.award_date) == ("Service 1", 100_000, dt.date(2025, 5, 2))
    assert [c.code for c in first.cpv] == ["85100000"]
    assert [(s.share_pence, s.share_basis) for s in first.suppliers] == [(100_000, "stated")]
    assert first.suppliers[0].supplier.name == "Supplier 1 Ltd"

    fixed = register(bad=False)
    preview = await _upload(client, encode(fixed), name)
    assert "Your columns were matched as you chose before" in preview.text, "the mapping is remembered"
    assert "<strong>3</strong> new contracts" in preview.text
    assert "<strong>47</strong> unchanged" in preview.text
    assert "<strong>0</strong> new suppliers" in preview.text
    await _commit(client, preview)
    assert await _count(session, m.Contract) == 50
    audit_before = await _register_audit(session)

    again = await _upload(client, encode(fixed), name)
    assert "<strong>50</strong> unchanged" in again.text
    assert "Nothing in this sheet would change your register." in again.text
    assert await _register_audit(session) == audit_before

    changed = fixed.with_columns(
        pl.when(pl.col("Contract reference") == "BCC-0005")
        .then(pl.lit("5,500"))
        .otherwise(pl.col("Value (£)"))
        .alias("Value (£)")
    )
    preview = await _upload(client, encode(changed), name)
    assert "<strong>1</strong> contract changed" in preview.text
    assert "change value" in preview.text
    await _commit(client, preview)
    session.expire_all()
    contract = (await session.scalars(select(m.Contract).where(m.Contract.source_id == "BCC-0005"))).one()
    assert contract.value_pence == 550_000
    audit = (
        await session.scalars(
            select(m.AuditEvent).where(
                m.AuditEvent.action == "contract.update", m.AuditEvent.entity_id == str(contract.id)
            )
        )
    ).one()
    assert audit.reason == f"Spreadsheet upload {name}"


async def test_upload_refusals_are_pages(session: AsyncSession, client: Any) -> None:
    await seed_anchors(session)
    await session.commit()
    await make_person(session, "editor@bcc.example", "editor", "E08000025")
    await sign_in(client, "editor@bcc.example")
    refused = await _upload(client, b"%PDF-1.4", "register.pdf")
    assert refused.status_code == 400
    assert "is not a CSV or XLSX file" in refused.text
    for kind, media in (("csv", "text/csv"), ("xlsx", "application/vnd.openxmlformats")):
        got = await client.get(f"/workspace/contracts/template.{kind}")
        assert got.status_code == 200
        assert got.headers["content-type"].startswith(media)
        assert got.headers["content-disposition"] == f'attachment; filename="contracts-template.{kind}"'


def test_guesses_and_checks_of_columns() -> None:
    headings = ["Ref no", "Service description", "Annual cost", "Vendor", "Vendor postcode", "Notes"]
    guess = guess_mapping(headings)
    assert guess["reference"] == "Ref no"
    assert guess["title"] == "Service description"
    assert guess["supplier_postcode"] == "Vendor postcode"
    assert "Notes" not in guess.values()
    assert check_mapping({"title": "Service description", "supplier_name": "Vendor"}, headings) == {
        "reference": "Choose the column that holds the contract reference: every row needs one"
    }
    assert check_mapping({"reference": "Ref no", "title": "Ref no", "supplier_name": "Vendor"}, headings) == {
        "title": "The column 'Ref no' is already chosen for the contract reference: choose a different column, or none"
    }
    assert header_key(["A", "b"]) == header_key(["B ", "a"]), "the heading set, whatever its order and case"


async def _two_editors(session: AsyncSession, client: Any) -> None:
    await seed_anchors(session)
    await session.commit()
    await make_person(session, "editor@bcc.example", "editor", "E08000025")
    await make_person(session, "editor@walsall.example", "editor", "RBK")


async def test_mapping_is_remembered_for_the_organisation_only(session: AsyncSession, client: Any) -> None:
    await _two_editors(session, client)
    sheet = csv_bytes(register(5, bad=False))
    await sign_in(client, "editor@bcc.example")
    mine = dict(OWN_COLUMNS)
    preview = await _map(client, await _upload(client, sheet, "register.csv"), mine)
    assert "<strong>5</strong> new contracts" in preview.text
    assert await _count(session, m.ColumnMapping) == 1

    again = await _upload(client, sheet, "register-q2.csv")
    assert "Check the upload" in again.text
    assert "Your columns were matched as you chose before" in again.text
    # Changeable: the columns page shows the remembered choice; a new choice replaces it (audited).
    change = await client.get(f"/workspace/contracts/upload/drafts/{_draft(again)}/columns")
    assert _chosen(change) == mine
    without_value = {k: v for k, v in mine.items() if k != "value"}
    changed = await _map(client, change, without_value)
    assert changed.status_code == 200
    session.expire_all()
    saved = (await session.scalars(select(m.ColumnMapping))).one()
    assert saved.mapping == without_value
    events = (await session.scalars(select(m.AuditEvent).where(m.AuditEvent.action == "column_mapping.save"))).all()
    assert [e.actor_name for e in events] == ["editor@bcc.example", "editor@bcc.example"]

    # Another organisation uploading the very same sheet is asked afresh: nothing of Birmingham's is shown.
    client.cookies.clear()
    await sign_in(client, "editor@walsall.example")
    theirs = await _upload(client, sheet, "register.csv")
    assert "Match your columns" in theirs.text
    assert _chosen(theirs) == OWN_COLUMNS, "their own best guesses, not Birmingham's choice (which left out value)"
    bcc_draft = (await session.scalars(select(m.UploadDraft).where(m.UploadDraft.filename == "register-q2.csv"))).one()
    for path in (
        f"/workspace/contracts/upload/drafts/{bcc_draft.id}",
        f"/workspace/contracts/upload/drafts/{bcc_draft.id}/columns",
    ):
        assert (await client.get(path)).status_code == 403, path


async def test_a_needed_field_left_unmatched_is_refused_plainly(session: AsyncSession, client: Any) -> None:
    await _two_editors(session, client)
    await sign_in(client, "editor@bcc.example")
    page = await _upload(client, csv_bytes(register(5, bad=False)), "register.csv")
    refused = await _map(client, page, {k: v for k, v in OWN_COLUMNS.items() if k != "supplier_name"})
    assert refused.status_code == 400
    assert refused.text.count("Choose the column that holds the supplier name: every row needs one") == 2
    assert "<title>Error: Match your columns" in refused.text
    twice = await _map(client, page, {**OWN_COLUMNS, "title": "Contract reference"})
    assert twice.status_code == 400
    assert "The column &#39;Contract reference&#39; is already chosen for the contract reference" in twice.text
    assert await _count(session, m.ColumnMapping) == 0
    assert await _count(session, m.Contract) == 0


async def test_drafts_are_listed_resumed_and_discarded(session: AsyncSession, client: Any, tmp_path: Path) -> None:
    await _two_editors(session, client)
    await sign_in(client, "editor@bcc.example")
    overview = await client.get("/workspace/organisation")
    assert "No drafts in progress." in overview.text
    waiting = await _map(client, await _upload(client, csv_bytes(register(5, bad=False)), "spring.csv"), OWN_COLUMNS)
    unmatched = await _upload(client, csv_bytes(register(4, bad=False).rename({"CPV": "CPV code"})), "summer.csv")
    assert "Match your columns" in unmatched.text
    assert len(list((tmp_path / "uploads").iterdir())) == 2

    overview = await client.get("/workspace/organisation")
    drafts = overview.text.split('id="drafts"')[1].split("<h2")[0]
    assert "<strong>spring.csv</strong>: 5 rows, uploaded by editor@bcc.example" in drafts
    assert "<strong>summer.csv</strong>: 4 rows" in drafts
    assert "(columns not yet matched)" in drafts
    spring, summer = _draft(waiting), _draft(unmatched)
    assert f'href="/workspace/contracts/upload/drafts/{spring}"' in drafts

    resumed = await client.get(f"/workspace/contracts/upload/drafts/{spring}")
    assert "<strong>5</strong> new contracts" in resumed.text
    assert "Match your columns" in (await client.get(f"/workspace/contracts/upload/drafts/{summer}")).text

    # Nobody else's to resume or discard.
    client.cookies.clear()
    await sign_in(client, "editor@walsall.example")
    token = await form_token(client, "/workspace/contracts/upload")
    refused = await client.post(f"/workspace/contracts/upload/drafts/{spring}/discard", data={"_csrf_token": token})
    assert refused.status_code == 403
    assert "No drafts in progress." in (await client.get("/workspace/organisation")).text

    client.cookies.clear()
    await sign_in(client, "editor@bcc.example")
    token = await form_token(client, "/workspace/organisation")
    gone = await client.post(f"/workspace/contracts/upload/drafts/{summer}/discard", data={"_csrf_token": token})
    assert gone.status_code == 303
    assert gone.headers["location"] == "/workspace/organisation#drafts"
    overview = await client.get("/workspace/organisation")
    assert "summer.csv" not in overview.text
    assert "spring.csv" in overview.text
    assert len(list((tmp_path / "uploads").iterdir())) == 1, "the discarded file is deleted"
    missing = await client.get(f"/workspace/contracts/upload/drafts/{summer}")
    assert missing.status_code == 404
    assert "no longer waiting" in missing.text

    saved = await _commit(client, await client.get(f"/workspace/contracts/upload/drafts/{spring}"))
    assert "5 added" in saved.text
    assert list((tmp_path / "uploads").iterdir()) == [], "the saved file is deleted"
    assert await _count(session, m.UploadDraft) == 0
    assert "No drafts in progress." in (await client.get("/workspace/organisation")).text
    # Every draft's life is in the audit trail: two waited, one was discarded, one saved.
    actions = await _draft_actions(session)
    assert sorted(actions) == sorted(["upload_draft.create"] * 2 + ["upload_draft.discarded", "upload_draft.saved"])


def _age(path: Path, hours: float) -> None:
    then = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours)).timestamp()
    os.utime(path, (then, then))


@pytest.mark.slow
async def test_abandoned_uploads_are_pruned(session: AsyncSession, client: Any, tmp_path: Path, db: Database) -> None:
    await _two_editors(session, client)
    await sign_in(client, "editor@bcc.example")
    old_page = await _upload(client, csv_bytes(register(3, bad=False)), "old.csv")
    old_draft = _draft(old_page)
    folder = tmp_path / "uploads"
    (old_file,) = folder.iterdir()
    stray = folder / f"7-{'a' * 64}.csv"  # a file whose draft never committed
    stray.write_bytes(b"reference\n")
    not_ours = folder / "notes.txt"
    not_ours.write_text("left alone: not an upload's name")
    for path in (old_file, stray, not_ours):
        _age(path, 30)
    await session.execute(
        m.UploadDraft.__table__.update()
        .where(m.UploadDraft.__table__.c.id == old_draft)
        .values(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=30))
    )
    await session.commit()

    # A new upload prunes what is older than the setting (24 hours): the old draft, its file and the stray file.
    await _upload(client, csv_bytes(register(2, bad=False)), "new.csv")
    names = sorted(p.name for p in folder.iterdir())
    assert old_file.name not in names
    assert stray.name not in names
    assert "notes.txt" in names
    assert len(names) == 2
    session.expire_all()
    assert (await session.scalars(select(m.UploadDraft.filename))).all() == ["new.csv"]

    # The command line does the same with its own limit; a fresh draft stays unless the limit is 0.
    kept = localvalue("uploads", "prune", database_url=db.url, LOCALVALUE_WORK_DIR=str(tmp_path))
    assert kept.stdout.strip() == f"0 drafts and 0 files older than 24 hours deleted from {folder}"
    pruned = localvalue(
        "uploads", "prune", "--older-than-hours", "0", database_url=db.url, LOCALVALUE_WORK_DIR=str(tmp_path)
    )
    assert pruned.stdout.strip() == f"1 draft and 1 file older than 0 hours deleted from {folder}"
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    assert await _count(session, m.UploadDraft) == 0
