"""Every CSV and XLSX export neutralises text a spreadsheet would run as a formula (OWASP CSV injection).

A supplier named like a formula goes through every export: the metrics CSV and XLSX, the supplier CSV, an
import run's notes (HTTP and CLI) and the public statement CSV. The XLSX is read back with openpyxl: no formula
cells, and money cells are numbers in pounds.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from typing import Any

import polars as pl
from openpyxl import load_workbook
from sqlalchemy import select

from procurement import clock
from procurement import models as m
from procurement.exports import POUNDS_FORMAT, safe_cell, safe_frame, write_xlsx
from procurement.organisations.seed import seed_anchors
from procurement.suppliers.classification import classify
from tests.conftest import Database
from tests.support.api import bearer, make_supplier, make_token
from tests.support.cli import localvalue

EVIL = '=HYPERLINK("https://evil.example","Click")'
NEUTRALISED = "'" + EVIL
PERIOD = "2025Q1"


def test_the_cell_rule() -> None:
    for risky in (EVIL, "+1+2", "-2+3", "@SUM(A1:A2)", "\tTab", "\rCR", "-", "=", "-1e5"):
        assert safe_cell(risky) == "'" + risky
    for plain in ("Acme Ltd", "", "50.00", "-50.00", "-7", "B1 1BB", " =not first"):
        assert safe_cell(plain) == plain
    for number in (-50, -50.0, Decimal("-50.00"), 0, None, True):
        assert safe_cell(number) == number
    frame = pl.DataFrame({"text": [EVIL, "-50.00", "-1+1", "ok", None], "n": [-50, 1, 2, 3, 4]})
    out = safe_frame(frame)
    assert out["text"].to_list() == [NEUTRALISED, "-50.00", "'-1+1", "ok", None]
    assert out["n"].to_list() == [-50, 1, 2, 3, 4]


def test_xlsx_keeps_credit_notes_numeric() -> None:
    frame = pl.DataFrame(
        {"supplier_name": [EVIL, "Refund Ltd"], "value": [1234.5, -50.0], "day": [dt.date(2025, 4, 1)] * 2}
    )
    sheet = load_workbook(io.BytesIO(write_xlsx({"lines": frame}, money=("value",))))["lines"]
    rows = list(sheet.iter_rows(min_row=2))
    assert [r[0].value for r in rows] == [NEUTRALISED, "Refund Ltd"]
    assert [r[0].data_type for r in rows] == ["s", "s"]
    assert [r[1].value for r in rows] == [1234.5, -50.0]
    assert all(r[1].data_type == "n" and r[1].number_format == POUNDS_FORMAT for r in rows)
    assert rows[0][2].is_date


def _csv(body: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body)))


def _cells(rows: list[list[str]]) -> set[str]:
    return {cell for row in rows for cell in row}


def _assert_safe(rows: list[list[str]]) -> None:
    cells = _cells(rows)
    assert NEUTRALISED in cells
    assert EVIL not in cells
    risky = [c for c in cells if (c[:1] and c[0] in "=+@\t\r") or (c.startswith("-") and not _is_number(c))]
    assert risky == [], f"cells a spreadsheet would run: {risky}"


def _is_number(text: str) -> bool:
    try:
        Decimal(text)
    except ArithmeticError:
        return False
    return True


async def test_a_formula_named_supplier_goes_through_every_export(db: Database, session: Any, app_client: Any) -> None:
    await seed_anchors(session)
    await session.commit()
    bcc = (await session.scalars(select(m.Organisation).where(m.Organisation.gss_code == "E08000025"))).one()
    evil = await make_supplier(session, EVIL, postcode="B5 5RS", postcode_source="manual")
    plain = await make_supplier(session, "Solihull Care Ltd", postcode="B91 3QB", postcode_source="manual")
    admin = bearer(await make_token(session, "admin"))
    for supplier, value in ((evil, "60000.00"), (plain, "25000.50")):
        created = await app_client.post(
            "/contracts",
            json={
                "buyer_id": bcc.id,
                "title": f"Meals from {supplier.name}",
                "value": value,
                "award_date": "2025-04-10",
                "suppliers": [{"supplier_id": supplier.id}],
            },
            headers=admin,
        )
        assert created.status_code == 201, created.text
    await classify(session, full=True)
    run = m.ImportRun(source="contracts_finder", kind="file", status="completed", started_at=clock.now())
    session.add(run)
    await session.flush()
    session.add(
        m.ImportNote(
            run_id=run.id,
            level="warning",
            ocid="ocds-1",
            path="parties/0/name",
            value=EVIL,
            message="@odd",
            created_at=clock.now(),
        )
    )
    await session.commit()
    query = f"anchor_id={bcc.id}&period={PERIOD}&basis=awarded"

    metrics_csv = await app_client.get(f"/metrics.csv?{query}", headers=admin)
    assert metrics_csv.status_code == 200, metrics_csv.text
    _assert_safe(_csv(metrics_csv.text))

    suppliers_csv = await app_client.get("/suppliers.csv", headers=admin)
    assert suppliers_csv.status_code == 200
    _assert_safe(_csv(suppliers_csv.text))

    notes_csv = await app_client.get(f"/imports/{run.id}/notes.csv", headers=admin)
    assert notes_csv.status_code == 200
    notes = _csv(notes_csv.text)
    _assert_safe(notes)
    assert "'@odd" in _cells(notes)
    cli_notes = localvalue("import", "notes", str(run.id), "--csv", database_url=db.url).stdout
    _assert_safe(_csv(cli_notes))

    published = await app_client.post("/statements", json={"anchor_id": bcc.id, "period": PERIOD}, headers=admin)
    assert published.status_code == 201, published.text
    public_csv = await app_client.get(f"/public/statements/{published.json()['id']}.csv")
    assert public_csv.status_code == 200
    _assert_safe(_csv(public_csv.text))

    xlsx = await app_client.get(f"/metrics.xlsx?{query}", headers=admin)
    assert xlsx.status_code == 200
    book = load_workbook(io.BytesIO(xlsx.content))
    cells = [c for sheet in book.worksheets for row in sheet.iter_rows() for c in row]
    assert [c.coordinate for c in cells if c.data_type == "f"] == []
    assert NEUTRALISED in {c.value for c in cells}
    assert EVIL not in {c.value for c in cells}
    lines = book["lines"]
    header = [c.value for c in lines[1]]
    money = {header.index("value"), header.index("allocated")}
    values = [row[i] for row in lines.iter_rows(min_row=2) for i in money]
    assert values
    assert all(c.data_type == "n" and c.number_format == POUNDS_FORMAT for c in values if c.value is not None)
    assert sorted(c.value for c in values if c.value is not None) == [25000.5, 25000.5, 60000.0, 60000.0]
    pence = header.index("value_pence")
    assert {row[pence].value for row in lines.iter_rows(min_row=2)} == {2_500_050, 6_000_000}
