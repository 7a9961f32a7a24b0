"""`localvalue classify` (incremental, --full, show) and `localvalue geo build`, run as real subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.organisations.seed import seed_anchors
from socialvalue.geography import DATA_DIR
from tests.support.api import bearer, make_supplier, make_token
from tests.support.cli import localvalue
from tests.support.paths import REPO_DIR


@pytest.mark.slow
async def test_classify_is_incremental_and_overrides_survive_reimport(
    app_client: Any, session: AsyncSession, db: Any
) -> None:
    await seed_anchors(session)
    await session.commit()
    walsall = (await session.scalars(select(m.Organisation).where(m.Organisation.name == "Walsall Council"))).one()
    walsall_id = walsall.id
    token = await make_token(session, "editor", walsall_id, name="pat@walsall")
    acme = await make_supplier(session, "Acme Widgets Ltd", postcode="B15 2GW", declared_scale="large")
    hope = await make_supplier(session, "Hope Kitchen CIC", postcode="WS1 1TP")
    acme_id, hope_id = acme.id, hope.id
    await make_supplier(session, "No Address Ltd")

    first = localvalue("classify", database_url=db.url)
    assert "suppliers: 3; classified 3, unchanged 0, overridden 0" in first.stdout
    again = localvalue("classify", database_url=db.url)
    assert "classified 0, unchanged 3" in again.stdout

    override = await app_client.post(
        f"/suppliers/{acme_id}/overrides",
        json={"flag": "sme", "value": "true", "reason": "Companies House accounts: 40 staff"},
        headers=bearer(token),
    )
    assert override.status_code == 201, override.text
    delivery = await app_client.post(
        f"/suppliers/{acme_id}/overrides",
        json={"flag": "delivery_postcode", "value": "WS1 1TP", "reason": "Services come from the Walsall branch"},
        headers=bearer(token),
    )
    assert delivery.status_code == 201, delivery.text

    # A re-import rewrites the supplier's registered details from the feed (as the importer's upsert does).
    await session.execute(
        update(m.Supplier)
        .where(m.Supplier.id == acme_id)
        .values(
            name="ACME WIDGETS LIMITED", postcode="B91 3QB", street_address="1 Station Road", declared_scale="large"
        )
    )
    await session.commit()
    after_import = localvalue("classify", database_url=db.url)
    assert "classified 1, unchanged 2, overridden 1" in after_import.stdout
    full = localvalue("classify", "--full", database_url=db.url)
    assert "suppliers: 3; classified 3, unchanged 0, overridden 1" in full.stdout

    body = (
        await app_client.get(
            f"/suppliers/{acme_id}/classification", params={"anchor_id": walsall_id}, headers=bearer(token)
        )
    ).json()
    assert body["sme"] is True
    assert body["place"]["postcode_used"] == "WS1 1TP"
    assert body["tier"]["tier"] == "local"
    assert [o["flag"] for o in body["overrides"]] == ["sme", "delivery_postcode"]

    shown = localvalue("classify", "show", str(acme_id), "--anchor", str(walsall_id), database_url=db.url)
    assert "supplier" in shown.stdout
    assert "ACME WIDGETS LIMITED" in shown.stdout
    assert "sme=true: override, override #" in shown.stdout
    assert "Companies House accounts: 40 staff" in shown.stdout
    assert "sme=false [overruled]: feed_declared" in shown.stdout
    assert "tier for Walsall Council (Walsall (own LAD)): local" in shown.stdout
    assert "Open Government Licence" in shown.stdout
    # The one decision comes first: the category and every flag read off it (no declared VCSE: status unknown).
    assert "decision: category unknown: not established; vcse unknown (own evidence), sme true (own evidence)" in (
        shown.stdout
    )
    cic = localvalue("classify", "show", str(hope_id), database_url=db.url)
    assert "category=cic: legal_name_pattern" in cic.stdout
    assert (
        "decision: category cic: a community interest company; vcse true (implied), sme unknown (own evidence),"
        " social_enterprise true (implied)"
    ) in cic.stdout
    missing = localvalue("classify", "show", "999999", database_url=db.url, check=False)
    assert missing.returncode == 1
    assert missing.stderr.strip() == "Error: No supplier with id 999999."


def test_geo_build_from_an_onspd_file(tmp_path: Path) -> None:
    # An ONSPD-shaped extract of real postcodes: every unit in the B15 and WS1 districts, one terminated.
    units = pl.read_parquet(DATA_DIR / "units.parquet").filter(
        pl.col("postcode").str.starts_with("B15 ") | pl.col("postcode").str.starts_with("WS1 ")
    )
    onspd = units.select(
        pcds=pl.col("postcode"),
        laua=pl.col("lad_code"),
        doterm=pl.when(pl.col("live")).then(pl.lit("")).otherwise(pl.lit("202001")),
        osgrdind=pl.lit("1"),
    )
    source = tmp_path / "ONSPD_TEST.csv"
    onspd.write_csv(source)
    out = tmp_path / "geo"
    result = localvalue(
        "geo", "build", str(source), "--out", str(out), "--data-version", "test extract", database_url=""
    )
    assert f"units {units.height}" in result.stdout
    built = pl.read_parquet(out / "units.parquet")
    assert built.height == units.height
    partials = pl.read_parquet(out / "partials.parquet")
    assert set(partials.filter(pl.col("level") == "district")["key"].to_list()) == {"B15", "WS1"}
    assert json.loads((out / "meta.json").read_text())["data_version"] == "test extract"
    assert (out / "lad_reference_uk.csv").exists()
    # The rebuilt tables work with the locator (in a fresh process, so this one keeps the shipped tables).
    probe = (
        "from pathlib import Path; from socialvalue import geography as g; "
        f"g.load_tables(Path({str(out)!r})); p = g.locate('b15 2gw'); q = g.locate('SW1A 1AA'); "
        "print(p.lad_code, p.method, q.method, g.locate_many(['WS1 1TP'])['data_version'][0])"
    )
    printed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO_DIR, check=True)
    assert printed.stdout.split(maxsplit=3) == ["E08000025", "unit", "not_found", "test extract\n"]
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    refused = localvalue("geo", "build", str(bad), "--out", str(out), database_url="", check=False, COLUMNS="500")
    assert refused.returncode != 0
    assert "need a postcode column" in refused.stderr
