"""Time is respected and cash is money: no statement for a quarter that has not ended, targets only within the
contract, returns only for ended quarters with a target, one commitment per contract, measure and supplier, and
cash in pounds (existing pence migrated by 0007_figures)."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.errors import DomainError
from procurement.metrics.lines import resolve_scope
from procurement.metrics.measures import seed_measures
from procurement.organisations.seed import seed_anchors
from procurement.statements.service import publish
from tests.conftest import Database, alembic_upgrade
from tests.support.api import bearer, make_supplier, make_token
from tests.support.cli import localvalue


def _downgrade(url: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    from procurement.db import MIGRATIONS_DIR

    cfg = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url)
    command.downgrade(cfg, revision)


async def _world(session: AsyncSession, client: Any) -> dict[str, Any]:
    await seed_measures(session)
    await seed_anchors(session)
    await session.commit()
    bcc = (await session.scalars(select(m.Organisation).where(m.Organisation.gss_code == "E08000025"))).one()
    supplier = await make_supplier(session, "Brum Community Meals CIC", postcode="B15 2GW", postcode_source="manual")
    editor = await make_token(session, "editor", bcc.id, name="jo@bcc")
    reviewer = await make_token(session, "reviewer", name="rev@bcc", reviews=[bcc.id])
    created = await client.post(
        "/contracts",
        json={
            "buyer_id": bcc.id,
            "title": "Patient meals",
            "value": "125000.00",
            "award_date": "2025-04-14",
            "start_date": "2025-05-01",
            "end_date": "2035-04-30",
            "suppliers": [{"supplier_id": supplier.id}],
        },
        headers=bearer(editor),
    )
    assert created.status_code == 201, created.text
    cash = (await session.scalars(select(m.Measure).where(m.Measure.code == "LV-SPEND-LOCAL-VCSE"))).one()
    jobs = (await session.scalars(select(m.Measure).where(m.Measure.code == "LV-LOCAL-JOBS"))).one()
    return {
        "bcc": bcc,
        "supplier": supplier,
        "editor": bearer(editor),
        "reviewer": bearer(reviewer),
        "contract": created.json()["id"],
        "cash": cash,
        "jobs": jobs,
    }


async def test_commitment_and_return_rules(app_client: Any, session: AsyncSession) -> None:
    w = await _world(session, app_client)
    url = f"/contracts/{w['contract']}/commitments"

    before = await app_client.post(
        url, json={"measure_id": w["jobs"].id, "targets": [{"period": "2024Q4", "quantity": 1}]}, headers=w["editor"]
    )
    assert before.status_code == 422
    assert before.json()["detail"].startswith("target 2024Q4 is outside the contract period (1 May 2025 to 30 April")
    after = await app_client.post(
        url, json={"measure_id": w["jobs"].id, "targets": [{"period": "2035Q2", "quantity": 1}]}, headers=w["editor"]
    )
    assert after.status_code == 422

    body = {
        "measure_id": w["cash"].id,
        "supplier_id": w["supplier"].id,
        "targets": [{"period": "2025Q1", "quantity": "5000.00"}, {"period": "2034Q1", "quantity": "250.50"}],
    }
    created = await app_client.post(url, json=body, headers=w["editor"])
    assert created.status_code == 201, created.text
    commitment = created.json()
    assert [t["quantity"] for t in commitment["targets"]] == ["5000.00", "250.50"]
    assert commitment["unit"] == "pounds"
    again = await app_client.post(url, json=body, headers=w["editor"])
    assert again.status_code == 409
    assert f"already has commitment {commitment['id']}" in again.json()["detail"]

    returns = f"/commitments/{commitment['id']}/returns"
    future = await app_client.post(
        returns, json={"period": "2034Q1", "quantity": "10.00", "evidence_note": "invoice"}, headers=w["editor"]
    )
    assert future.status_code == 422
    assert future.json()["detail"] == (
        "period 2034Q1 has not ended: it ends on 30 June 2034 (UK time); enter its return once the quarter is over."
    )
    untargeted = await app_client.post(
        returns, json={"period": "2025Q2", "quantity": "10.00", "evidence_note": "invoice"}, headers=w["editor"]
    )
    assert untargeted.status_code == 422
    assert "has no target" in untargeted.json()["detail"]
    entered = await app_client.post(
        returns, json={"period": "2025Q1", "quantity": "4999.99", "evidence_note": "invoice"}, headers=w["editor"]
    )
    assert entered.status_code == 201, entered.text
    assert entered.json()["quantity"] == "4999.99"
    verified = await app_client.post(f"/returns/{entered.json()['id']}/verify", headers=w["reviewer"])
    assert verified.json()["quantity"] == "4999.99"
    figures = (
        await app_client.get(
            "/commitments", params={"anchor_id": w["bcc"].id, "period": "2025Q1"}, headers=w["reviewer"]
        )
    ).json()
    (row,) = figures["figures"]
    assert (row["committed"], row["verified"], row["verified_cash_pence"], row["verified_cash"]) == (
        "5000.00",
        "4999.99",
        499999,
        "4999.99",
    )


async def test_no_statement_for_a_quarter_that_has_not_ended(
    app_client: Any, session: AsyncSession, db: Database
) -> None:
    w = await _world(session, app_client)
    for period in ("2030Q1", "2099Q4"):
        refused = await app_client.post(
            "/statements", json={"anchor_id": w["bcc"].id, "period": period}, headers=w["reviewer"]
        )
        assert refused.status_code == 422
        assert f"{period} has not ended" in refused.json()["detail"]
    draft = await app_client.get(
        "/statements/preview", params={"anchor_id": w["bcc"].id, "period": "2030Q1"}, headers=w["reviewer"]
    )
    assert draft.status_code == 200
    assert (await app_client.get("/public/statements")).json()["total"] == 0

    # The service takes the day as an argument: a quarter is over the day after it ends, in UK time.
    scope = await resolve_scope(session, anchor_id=w["bcc"].id)
    with pytest.raises(DomainError, match="2025Q1 has not ended: it ends on 30 June 2025"):
        await publish(session, scope, "2025Q1", actor=None, actor_name="test", today=dt.date(2025, 6, 30))
    published = await publish(session, scope, "2025Q1", actor=None, actor_name="test", today=dt.date(2025, 7, 1))
    assert published.version == 1
    await session.commit()

    cli = localvalue(
        "statements", "publish", "--anchor", "E08000025", "--quarter", "2030Q1", database_url=db.url, check=False
    )
    assert cli.returncode != 0
    assert "2030Q1 has not ended: it ends on 30 June 2030" in " ".join(cli.stderr.split())
    assert "Traceback" not in cli.stderr


async def test_cash_pence_are_migrated_to_pounds_and_back(app_client: Any, session: AsyncSession, db: Database) -> None:
    w = await _world(session, app_client)
    created = await app_client.post(
        f"/contracts/{w['contract']}/commitments",
        json={"measure_id": w["cash"].id, "targets": [{"period": "2025Q1", "quantity": "12.34"}]},
        headers=w["editor"],
    )
    assert created.status_code == 201, created.text
    jobs = await app_client.post(
        f"/contracts/{w['contract']}/commitments",
        json={"measure_id": w["jobs"].id, "targets": [{"period": "2025Q1", "quantity": "2.5"}]},
        headers=w["editor"],
    )
    assert jobs.status_code == 201

    async def stored() -> list[tuple[str, Decimal, str]]:
        async with db.engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT commitment.unit, commitment_target.quantity, measure.unit FROM commitment_target "
                    "JOIN commitment ON commitment.id = commitment_target.commitment_id "
                    "JOIN measure ON measure.id = commitment.measure_id ORDER BY commitment.id"
                )
            )
            return [(u, Decimal(str(q)), mu) for u, q, mu in rows.all()]

    assert await stored() == [("pounds", Decimal("12.34"), "pounds"), ("FTE", Decimal("2.5"), "FTE")]
    # The session's transaction (it read the measures) would hold a lock the downgrade's DDL waits for, for ever.
    await session.close()
    try:
        # Down: what the data looked like before (pence); up again: pounds, to the penny, other units untouched.
        await asyncio.to_thread(_downgrade, db.url, "0006")
        assert await stored() == [("pence", Decimal("1234"), "pence"), ("FTE", Decimal("2.5"), "FTE")]
    finally:
        await asyncio.to_thread(alembic_upgrade, db.url, "head")
    assert await stored() == [("pounds", Decimal("12.34"), "pounds"), ("FTE", Decimal("2.5"), "FTE")]
