"""Overrides survive a real re-import of a changed release and a full reclassification."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select

from procurement import models as m
from procurement.imports.runs import run_file_import
from procurement.imports.service import CONTRACTS_FINDER
from procurement.organisations.seed import seed_anchors
from procurement.suppliers.classification import classify
from tests.conftest import Database
from tests.support.api import bearer, make_token
from tests.support.paths import FEEDS_DIR

PAGE = FEEDS_DIR / "contracts-finder" / "ocds-search-page-2022-10-20.json"
SUPPLIER = "Building Services NOW"


def _with_supplier_address(address: str, target: Path) -> Path:
    package = json.loads(PAGE.read_bytes(), parse_float=Decimal)
    for release in package["releases"]:
        for party in release.get("parties", []):
            if party.get("name") == SUPPLIER:
                party["address"]["streetAddress"] = address
    target.write_text(json.dumps(package, default=str), encoding="utf-8")
    return target


async def test_override_survives_reimport_and_reclassification(
    db: Database, session: Any, app_client: Any, tmp_path: Path
) -> None:
    await seed_anchors(session)
    await session.commit()
    first = await run_file_import(db.engine, CONTRACTS_FINDER, [PAGE])
    assert first.counts.new == 100
    await classify(session, full=True)
    await session.commit()
    supplier = (await session.scalars(select(m.Supplier).where(m.Supplier.name == SUPPLIER))).one()
    assert supplier.postcode == "DY5 1XN"
    bcc_id = (await session.scalars(select(m.Organisation.id).where(m.Organisation.gss_code == "E08000025"))).one()
    supplier_id = supplier.id
    reviewer = bearer(await make_token(session, "cross_reviewer"))

    async def tier() -> str:
        r = await app_client.get(f"/suppliers/{supplier_id}/classification?anchor_id={bcc_id}", headers=reviewer)
        assert r.status_code == 200, r.text
        return str(r.json()["tier"]["tier"])

    assert await tier() == "regional"  # Dudley is in the region, not in Birmingham
    refused = await app_client.post(
        f"/suppliers/{supplier_id}/overrides",
        json={"flag": "delivery_postcode", "value": "B1 1BB", "reason": ""},
        headers=reviewer,
    )
    assert refused.status_code in {400, 422}
    override = await app_client.post(
        f"/suppliers/{supplier_id}/overrides",
        json={"flag": "delivery_postcode", "value": "B1 1BB", "reason": "Delivers from its Birmingham depot"},
        headers=reviewer,
    )
    assert override.status_code == 201, override.text
    assert await tier() == "local"

    # The feed republishes the release with the supplier's registered address moved to Wolverhampton.
    changed = _with_supplier_address(
        "1 Civic Centre, St Peter's Square, Wolverhampton, WV1 1SH", tmp_path / "page.json"
    )
    again = await run_file_import(db.engine, CONTRACTS_FINDER, [changed])
    assert again.counts.changed >= 1
    session.expire_all()
    supplier = (await session.scalars(select(m.Supplier).where(m.Supplier.name == SUPPLIER))).one()
    assert supplier.postcode == "WV1 1SH"
    await classify(session, full=True)
    await session.commit()

    assert await tier() == "local"
    body = (await app_client.get(f"/suppliers/{supplier_id}/classification", headers=reviewer)).json()
    assert "Delivers from its Birmingham depot" in json.dumps(body)
