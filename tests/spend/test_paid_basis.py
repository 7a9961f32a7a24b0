"""Payments end to end: real spend files imported with the CLI, the paid basis in /metrics and CSV, a published
paid statement read back from its PDF, re-imports, corrected files, payee review remembered, notes.

Expected figures come from tests/fixtures/spend/expected.csv (computed by a separate stdlib script), never from
the code under test.
"""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from procurement import models as m
from tests.conftest import Database
from tests.support.api import bearer, fingerprint, make_org, make_supplier, make_token
from tests.support.cli import localvalue
from tests.support.paths import FIXTURES_DIR

SPEND = FIXTURES_DIR / "spend"
ROYAL_FREE = SPEND / "nhs_royal-free-ft_2020-Q1_over25k_with_VATreg.csv"
CHELSEA = SPEND / "nhs_chelsea-westminster-ft_2020-04_over25k.csv"
MANCHESTER = SPEND / "council_manchester_2022-05_over500.csv"


def _expected(path: Path) -> dict[str, int]:
    with (SPEND / "expected.csv").open(encoding="utf-8") as handle:
        row = next(r for r in csv.DictReader(handle) if r["file"] == path.name)
    return {k: int(v) for k, v in row.items() if k != "file"}


def _pounds(pence: int) -> str:
    return f"£{Decimal(pence) / 100:,.2f}"


def _whole_pounds(pence: int) -> str:
    return f"£{(Decimal(pence) / 100).quantize(Decimal(1)):,}"


def _pdf_text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return re.sub(r"\s+", " ", " ".join(page.extract_text() or "" for page in reader.pages))


async def _anchor(session: Any, ods: str) -> int:
    return int((await session.scalars(select(m.Organisation.id).where(m.Organisation.ods_code == ods))).one())


@pytest.mark.slow
async def test_paid_basis_from_a_real_file_to_a_published_statement(
    db: Database, session: Any, app_client: Any, tmp_path: Path
) -> None:
    url = db.url
    localvalue("seed", "anchors", "--list", "spend-demo", database_url=url)
    expected = _expected(ROYAL_FREE)
    first = localvalue("import", "spend", str(ROYAL_FREE), "--anchor", "RAL", database_url=url)
    summary = first.stdout.strip()
    assert summary.startswith(f"lines {expected['lines']:,}, total {_pounds(expected['total_pence'])}, ")
    assert "redacted 0 lines £0.00" in summary
    assert re.search(r"payees matched \d+ / to review \d+ / new \d+, notes [1-9]", summary), summary

    # The same bytes again change nothing at all.
    before = await fingerprint(db.engine)
    again = localvalue("import", "spend", str(ROYAL_FREE), "--anchor", "RAL", database_url=url)
    assert again.stdout.startswith("unchanged (already imported): ")
    assert await fingerprint(db.engine) == before

    rf = await _anchor(session, "RAL")
    token = bearer(await make_token(session, "reviewer"))
    every = (await app_client.get(f"/metrics?anchor_id={rf}&basis=paid", headers=token)).json()
    (paid,) = every["bases"]
    assert paid["basis"] == "paid"
    assert "Paid basis" in paid["label"]
    periods = {p["period"]: p for p in paid["periods"]}
    # Every parsed amount lands in some quarter: the file's total, to the penny, from its independent reference.
    assert sum(p["headline"]["total_pence"] for p in periods.values()) == expected["total_pence"]
    excluded = sum(p["coverage"]["excluded_no_value_lines"] for p in periods.values())
    assert sum(p["headline"]["lines"] for p in periods.values()) + excluded == expected["lines"]
    files = (await app_client.get(f"/spend/files?anchor_id={rf}", headers=token)).json()["items"]
    assert [(f["line_count"], f["total_pence"], f["transaction_count"]) for f in files] == [
        (expected["lines"], expected["total_pence"], expected["transactions"])
    ]

    q1 = (await app_client.get(f"/metrics?anchor_id={rf}&basis=paid&period=2020Q1", headers=token)).json()
    head = q1["bases"][0]["periods"][0]["headline"]
    facts = q1["bases"][0]["paid"][0]
    assert facts["months"] == ["2020-04", "2020-05", "2020-06"]
    assert facts["lines"] == head["lines"]
    # Unmatched to any located supplier: the location is unknown for all of it, and the coverage says so.
    assert q1["bases"][0]["periods"][0]["coverage"]["tier_known_share"] == "0.0000"

    csv_text = (await app_client.get(f"/metrics.csv?anchor_id={rf}&basis=paid&period=2020Q1", headers=token)).text
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert {r["basis"] for r in rows} == {"paid"}
    assert sum(int(r["allocated_pence"]) for r in rows if r["allocated_pence"]) == head["total_pence"]

    localvalue(
        "statements", "publish", "--anchor", "RAL", "--quarter", "2020Q1", "--basis", "paid", "--by", "test",
        database_url=url,
    )  # fmt: skip
    statement = (await session.scalars(select(m.Statement).where(m.Statement.organisation_id == rf))).one()
    text = _pdf_text(statement.pdf)
    assert f"Total paid {_whole_pounds(head['total_pence'])}" in text
    assert f"Payment lines {head['lines']:,}" in text
    assert "Paid basis" in text
    assert f"Transactions (split lines of one transaction counted once) {facts['transactions']:,}" in text
    assert "Redacted payee (0 lines, never named) £0" in text
    assert ROYAL_FREE.name in text
    assert "PART OF A QUARTER" not in text  # April, May and June are all loaded
    assert '"bases":["paid"]' in statement.snapshot_json
    verified = localvalue("statements", "verify", database_url=url)
    assert "1 statements, 0 with problems" in verified.stdout
    # Staleness compares a paid statement with today's payments, never with contract awards.
    checked = localvalue("statements", "check", database_url=url)
    assert f"statement {statement.id}: current" in checked.stdout


@pytest.mark.slow
async def test_redacted_value_influenceable_view_and_partial_quarter(
    db: Database, session: Any, app_client: Any
) -> None:
    url = db.url
    localvalue("seed", "anchors", "--list", "spend-demo", database_url=url)
    expected = _expected(MANCHESTER)
    out = localvalue("import", "spend", str(MANCHESTER), "--anchor", "RAL", database_url=url).stdout
    assert f"total {_pounds(expected['total_pence'])}" in out
    assert f"lines £{Decimal(expected['redacted_pence']) / 100:,.2f}" in out
    rf = await _anchor(session, "RAL")
    token = bearer(await make_token(session, "reviewer"))
    body = (await app_client.get(f"/metrics?anchor_id={rf}&basis=paid&period=2022Q1", headers=token)).json()
    basis = body["bases"][0]
    head, facts = basis["periods"][0]["headline"], basis["paid"][0]
    assert head["total_pence"] == expected["total_pence"]
    assert facts["redacted_pence"] == expected["redacted_pence"]
    assert facts["transactions"] == expected["transactions"]
    # Redacted payments are never a named supplier.
    assert all(s["supplier_id"] != 0 for s in basis["periods"][0]["top_suppliers"])
    unknown = next(t for t in basis["periods"][0]["by_tier"] if t["tier"] == "unknown")
    assert unknown["value_pence"] >= expected["redacted_pence"]

    view = (
        await app_client.get(f"/metrics?anchor_id={rf}&basis=paid&period=2022Q1&influenceable=true", headers=token)
    ).json()["bases"][0]
    left = view["paid"][0]
    assert view["influenceable_only"] is True
    assert "Influenceable spend only" in view["label"]
    assert left["left_out_lines"] > 0
    assert view["periods"][0]["headline"]["total_pence"] == expected["total_pence"] - left["left_out_pence"]
    assert sum(left["left_out_by_rule"].values()) == left["left_out_pence"]
    rows = (
        await app_client.get(f"/metrics.csv?anchor_id={rf}&basis=paid&period=2022Q1&influenceable=true", headers=token)
    ).text
    assert {r["basis"] for r in csv.DictReader(io.StringIO(rows))} == {"paid (influenceable spend only)"}
    refused = await app_client.get(f"/metrics?anchor_id={rf}&basis=awarded&influenceable=true", headers=token)
    assert refused.status_code == 400
    assert refused.headers["content-type"].startswith("application/problem+json")

    cli = localvalue(
        "metrics", "--anchor", "RAL", "--period", "2022Q1", "--basis", "paid", "--influenceable", database_url=url
    ).stdout
    assert "Influenceable spend only" in cli
    assert f"left out: {left['left_out_lines']} lines" in cli

    localvalue(
        "statements", "publish", "--anchor", "RAL", "--quarter", "2022Q1", "--basis", "paid", "--by", "test",
        database_url=url,
    )  # fmt: skip
    statement = (await session.scalars(select(m.Statement).where(m.Statement.organisation_id == rf))).one()
    text = _pdf_text(statement.pdf)
    assert "PART OF A QUARTER" in text
    assert "2022-04, 2022-06 not loaded" in text
    assert (
        f"Redacted payee ({facts['redacted_lines']:,} lines, never named) {_whole_pounds(expected['redacted_pence'])}"
        in text
    )


@pytest.mark.slow
async def test_corrected_file_replaces_with_an_audit_record(
    db: Database, session: Any, app_client: Any, tmp_path: Path
) -> None:
    url = db.url
    localvalue("seed", "anchors", "--list", "spend-demo", database_url=url)
    localvalue("import", "spend", str(CHELSEA), "--anchor", "RAL", database_url=url)
    original = CHELSEA.read_bytes()  # cp1252 bytes, as published
    assert b'"67,132.60"' in original
    corrected = tmp_path / "chelsea-corrected.csv"
    corrected.write_bytes(original.replace(b'"67,132.60"', b'"67,232.60"', 1))

    refused = localvalue("import", "spend", str(corrected), "--anchor", "RAL", database_url=url, check=False)
    assert refused.returncode == 1
    assert "--reason" in refused.stderr
    localvalue(
        "import", "spend", str(corrected), "--anchor", "RAL", "--reason", "trust republished April", database_url=url
    )
    files = (await session.scalars(select(m.SpendFile).order_by(m.SpendFile.id))).all()
    assert [(f.status, f.replaced_by_id) for f in files] == [("replaced", files[1].id), ("active", None)]
    assert files[1].total_pence == _expected(CHELSEA)["total_pence"] + 10000
    audit = (await session.scalars(select(m.AuditEvent).where(m.AuditEvent.action == "spend_file.replace"))).one()
    assert audit.reason == "trust republished April"
    assert audit.entity_id == str(files[0].id)
    lines = (await session.scalars(select(m.PaymentLine.file_id))).all()
    assert set(lines) == {files[1].id}
    rf = await _anchor(session, "RAL")
    token = bearer(await make_token(session, "reviewer"))
    body = (await app_client.get(f"/metrics?anchor_id={rf}&basis=paid&period=2020Q1", headers=token)).json()
    assert body["bases"][0]["periods"][0]["headline"]["total_pence"] == files[1].total_pence


@pytest.mark.slow
async def test_payee_review_is_remembered_and_notes_are_visible(
    db: Database, session: Any, app_client: Any, tmp_path: Path
) -> None:
    url = db.url
    localvalue("seed", "anchors", "--list", "spend-demo", database_url=url)
    rf = await _anchor(session, "RAL")
    # One letter from the payee "Jca Engineering Limited" (9 lines): a fuzzy candidate, never matched on its own.
    near_id = (await make_supplier(session, "JCA Engineerng Limited")).id
    first = localvalue("import", "spend", str(CHELSEA), "--anchor", "RAL", database_url=url).stdout
    assert "to review 1 " in first, first
    editor = bearer(await make_token(session, "editor", organisation_id=rf))
    queue = (await app_client.get(f"/spend/payees/review?anchor_id={rf}", headers=editor)).json()
    (item,) = queue["items"]
    assert item["payee_name"] == "Jca Engineering Limited"
    assert item["lines"] == 9
    assert item["candidates"][0]["supplier_id"] == str(near_id)

    elsewhere = await make_org(session, "Another Trust")
    other_org = bearer(await make_token(session, "editor", organisation_id=elsewhere.id))
    forbidden = await app_client.post(
        f"/spend/payees/{item['id']}/decision",
        json={"decision": "confirm", "supplier_id": near_id, "reason": "same firm, typo in our master"},
        headers=other_org,
    )
    assert forbidden.status_code == 403
    decided = await app_client.post(
        f"/spend/payees/{item['id']}/decision",
        json={"decision": "confirm", "supplier_id": near_id, "reason": "same firm, typo in our master"},
        headers=editor,
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "confirmed"
    session.expire_all()
    matched = (
        await session.scalars(select(m.PaymentLine.supplier_id).where(m.PaymentLine.payee_name == item["payee_name"]))
    ).all()
    assert matched == [near_id] * 9
    audit = (await session.scalars(select(m.AuditEvent).where(m.AuditEvent.action == "payee_match.confirm"))).one()
    assert audit.reason == "same firm, typo in our master"

    # The next month's file names the same payee: the decision is used, nothing goes back to review.
    may = tmp_path / "chelsea-2020-05.csv"
    may.write_text(
        "Department Family,Entity,Date Paid,Expense Type,Expense Area,Supplier Name,Transaction Reference,amount\n"
        "Department of Health,Chelsea & Westminster NHS Foundation Trust,05/05/2020,Building Expenditure,"
        'Works,Jca Engineering Limited,1500001,"41,000.00"\n'
        "Department of Health,Chelsea & Westminster NHS Foundation Trust,06/05/2020,Building Expenditure,"
        "Works,Jca Engineering Limited,1500002,not known\n",
        encoding="utf-8",
    )
    second = localvalue("import", "spend", str(may), "--anchor", "RAL", database_url=url)
    assert "to review 0 " in second.stdout
    assert "notes 1" in second.stdout
    may_line = (
        await session.scalars(select(m.PaymentLine.supplier_id).where(m.PaymentLine.transaction_number == "1500001"))
    ).one()
    assert may_line == near_id
    assert (await app_client.get(f"/spend/payees/review?anchor_id={rf}", headers=editor)).json()["total"] == 0

    run_id = re.search(r"run (\d+)", second.stderr)
    assert run_id is not None
    notes = (await app_client.get(f"/imports/{run_id.group(1)}/notes", headers=editor)).json()["items"]
    assert [(n["path"], n["value"], n["message"]) for n in notes] == [
        ("chelsea-2020-05.csv row 3, column amount", "not known", "not an amount in pounds and pence")
    ]
    cli_notes = localvalue("import", "notes", run_id.group(1), database_url=url).stdout
    assert "chelsea-2020-05.csv row 3, column amount: not an amount in pounds and pence [not known]" in cli_notes


@pytest.mark.slow
async def test_saved_mapping_is_plain_data_and_used_by_name(db: Database, session: Any, tmp_path: Path) -> None:
    url = db.url
    localvalue("seed", "anchors", "--list", "spend-demo", database_url=url)
    bad = localvalue(
        "spend", "mapping", "save", "brent", "--set", "Expense Area=expense_kind", database_url=url, check=False
    )
    assert bad.returncode == 1
    assert "expense_kind" in bad.stderr
    assert "expense_type" in bad.stderr
    localvalue(
        "spend", "mapping", "save", "brent", "--from-json", str(tmp_path / "m.json"), database_url=url, check=False
    )
    (tmp_path / "m.json").write_text('{"Expense Area": "expense_type", "Expense Type": "expense_area"}')
    localvalue("spend", "mapping", "save", "brent", "--from-json", str(tmp_path / "m.json"), database_url=url)
    brent = SPEND / "ccg_brent_2020-04_over25k_from-pdf.csv"
    out = localvalue("import", "spend", str(brent), "--anchor", "RAL", "--mapping", "brent", database_url=url)
    assert out.stdout.startswith(
        f"lines {_expected(brent)['lines']:,}, total {_pounds(_expected(brent)['total_pence'])}"
    )
    spend_file = (await session.scalars(select(m.SpendFile))).one()
    assert spend_file.mapping_name == "brent"
    missing = localvalue(
        "import", "spend", str(CHELSEA), "--anchor", "RAL", "--mapping", "nope", database_url=url, check=False
    )
    assert "no saved spend mapping 'nope'" in missing.stderr
