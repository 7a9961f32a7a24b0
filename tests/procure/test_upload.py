"""A contracts register uploaded as a spreadsheet, through the real app on both databases: the template (CSV and
XLSX) reads back as one valid row; a 50-row sheet with three bad rows previews every row and saves the 47 valid
ones in one go; the corrected sheet saves the three; the same sheet again changes nothing; a changed row updates
its contract with the file named as the reason; size, type, heading and row limits say what is wrong."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.contracts.register_sheet import MAX_ROWS, SheetError, read_rows, read_sheet, template
from procurement.organisations.seed import seed_anchors
from procurement.web.frame import SETTINGS_STATE_KEY
from tests.support.people import form_token, make_person, sign_in


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


async def _commit(client: Any, preview: Any) -> Any:
    import re

    key = re.search(r'name="key" value="([^"]+)"', preview.text)
    assert key, preview.text
    token = re.search(r'name="_csrf_token" value="([^"]+)"', preview.text)
    assert token
    return await client.post(
        "/workspace/contracts/upload/commit",
        data={"_csrf_token": token.group(1), "key": key.group(1), "filename": "register.csv"},
    )


async def _count(session: AsyncSession, model: Any) -> int:
    session.expire_all()
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
async def test_upload_preview_commit_fix_and_reupload(session: AsyncSession, client: Any, kind: str) -> None:
    await seed_anchors(session)
    await session.commit()
    await make_person(session, "editor@bcc.example", "editor", "E08000025")
    await sign_in(client, "editor@bcc.example")
    encode = csv_bytes if kind == "csv" else xlsx_bytes
    name = f"register.{kind}"

    preview = await _upload(client, encode(register()), name)
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

    fixed = register(bad=False)
    preview = await _upload(client, encode(fixed), name)
    assert "<strong>3</strong> new contracts" in preview.text
    assert "<strong>47</strong> unchanged" in preview.text
    assert "<strong>0</strong> new suppliers" in preview.text
    await _commit(client, preview)
    assert await _count(session, m.Contract) == 50
    audit_before = await _count(session, m.AuditEvent)

    again = await _upload(client, encode(fixed), name)
    assert "<strong>50</strong> unchanged" in again.text
    assert "Nothing in this sheet would change your register." in again.text
    assert await _count(session, m.AuditEvent) == audit_before

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
    assert audit.reason == "Spreadsheet upload register.csv"


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
