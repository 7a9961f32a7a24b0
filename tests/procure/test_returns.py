"""Commitments and returns through the editors' pages on both databases: quarterly targets typed as people write
them, a return with an evidence file (allow-listed by its bytes, kept with its sha256, served only as a download
with nosniff), refused files and quarters in plain words, and the reviewer's decision and reason shown back."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.auth import Principal
from procurement.contracts.schemas import ContractCreate, ContractSupplierIn
from procurement.contracts.service import ContractService
from procurement.metrics.commitments import review_return
from procurement.metrics.measures import seed_measures
from procurement.organisations.seed import seed_anchors
from tests.support.people import csrf_of, make_person, sign_in

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
async def client(app_client: Any) -> AsyncIterator[Any]:
    app_client.cookies.clear()
    app_client.follow_redirects = False
    yield app_client
    app_client.follow_redirects = True
    app_client.cookies.clear()


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#39;", "'").replace("&amp;", "&")


async def test_commitment_return_and_evidence_file(session: AsyncSession, client: Any) -> None:
    await seed_anchors(session)
    await seed_measures(session)
    await session.commit()
    bcc = (await session.scalars(select(m.Organisation).where(m.Organisation.gss_code == "E08000025"))).one()
    measure = (
        await session.scalars(select(m.Measure).where(m.Measure.kind == "output").order_by(m.Measure.id))
    ).first()
    assert measure is not None
    supplier = m.Supplier(name="Edgbaston Catering Ltd", name_key="edgbaston catering")
    session.add(supplier)
    await session.flush()
    editor = Principal(user_id=0, name="setup", role=m.Role.EDITOR, organisation_id=bcc.id)
    contract = await ContractService(session=session).create_contract(
        ContractCreate(
            buyer_id=bcc.id, title="Community meals", suppliers=[ContractSupplierIn(supplier_id=supplier.id)]
        ),
        editor,
    )
    await session.commit()
    await make_person(session, "editor@bcc.example", "editor", "E08000025")
    await sign_in(client, "editor@bcc.example")
    path = f"/workspace/contracts/{contract.id}"

    page = await client.get(path)
    token = csrf_of(page.text)
    form = {"_csrf_token": token, "measure_id": str(measure.id), "unit": "meals", "note": ""}
    refused = await client.post(f"{path}/commitments", data=form | {"targets": "Q1 2025: 10"})
    assert refused.status_code == 400
    assert "could be a calendar or a financial year: write the financial year, as in Q1 2025/26" in _text(refused.text)
    saved = await client.post(f"{path}/commitments", data=form | {"targets": "Q1 2025/26: 10\n2025/26 Q2 12.5"})
    assert saved.status_code == 303, saved.text
    session.expire_all()
    commitment = (await session.scalars(select(m.Commitment))).one()
    assert [(t.period, f"{t.quantity.normalize():f}") for t in commitment.targets] == [
        ("2025Q1", "10"),
        ("2025Q2", "12.5"),
    ]

    return_path = f"/workspace/commitments/{commitment.id}/return"
    token = csrf_of((await client.get(return_path)).text)
    typed = {"_csrf_token": token, "period": "Q1 2025/26", "quantity": "9", "evidence_note": "", "evidence_url": ""}
    for name, content, message in (
        ("evidence.exe", b"MZ\x90\x00", "is not an accepted type: upload a PDF, PNG, JPEG"),
        ("evidence.pdf", b"<html><script>alert(1)</script>", "is not really a .pdf file"),
        ("evidence.txt", b"<html><script>alert(1)</script>", "looks like a web page, not TXT"),
    ):
        bad = await client.post(return_path, data=typed, files={"evidence_file": (name, content, "application/pdf")})
        assert bad.status_code == 400, name
        assert message in _text(bad.text), name
    no_evidence = await client.post(return_path, data=typed)
    assert "Give the evidence: a note, a link or a file" in _text(no_evidence.text)
    entered = await client.post(
        return_path, data=typed, files={"evidence_file": ("Meals delivered Q1.pdf", PDF, "application/pdf")}
    )
    assert entered.status_code == 303, entered.text

    session.expire_all()
    stored = (await session.scalars(select(m.EvidenceFile))).one()
    assert stored.sha256 == hashlib.sha256(PDF).hexdigest()
    assert stored.size_bytes == len(PDF)
    download = await client.get(f"/workspace/evidence/{stored.id}")
    assert download.status_code == 200
    assert download.content == PDF
    assert download.headers["content-disposition"] == 'attachment; filename="Meals delivered Q1.pdf"'
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-type"].startswith("application/pdf")

    reviewer = Principal(user_id=0, name="Rita Reviewer", role=m.Role.ADMIN, organisation_id=None)
    returned = (await session.scalars(select(m.DeliveryReturn))).one()
    await review_return(session, returned.id, reviewer, verify=False, reason="The count includes Q2 deliveries")
    await session.commit()
    shown = _text((await client.get(path)).text)
    assert "Return for Q1 2025/26: 9" in shown
    assert "rejected by Rita Reviewer, because: The count includes Q2 deliveries" in shown
    assert "Meals delivered Q1.pdf" in shown

    # Another organisation's editor cannot open the evidence.
    await make_person(session, "editor@sol.example", "editor", "E08000029")
    client.cookies.clear()
    await sign_in(client, "editor@sol.example")
    assert (await client.get(f"/workspace/evidence/{stored.id}")).status_code == 403
