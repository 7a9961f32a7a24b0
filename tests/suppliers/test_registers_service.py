"""Supplier registers end to end: `localvalue registers load|status`, matching in `classify`, the reviewers' API,
decisions that survive a re-load, and the share of value with known status before and after."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.organisations.seed import seed_anchors
from procurement.settings import get_settings
from tests.cores.registers_support import REGISTERS_DIR, one_file_zip
from tests.support.api import bearer, make_supplier, make_token
from tests.support.cli import localvalue
from tests.support.paths import FEEDS_DIR

# A real Contracts Finder release (Croydon voluntary-sector grants): 31 suppliers, names and addresses only.
FEED = FEEDS_DIR / "contracts-finder/legacy-2019-2020-bluetail/ocds-b5fd17raw-a4e7375e-d7be-4fd7-ae79-9801682a7acd.json"


@pytest.fixture
def registers_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """One store for the CLI subprocesses and the in-process app of this test."""
    store = tmp_path / "registers"
    monkeypatch.setenv("LOCALVALUE_REGISTERS_DIR", str(store))
    get_settings.cache_clear()
    yield store
    get_settings.cache_clear()


def _why(body: dict[str, Any], flag: str) -> list[dict[str, Any]]:
    return [w for w in body["why"] if w["flag"] == flag]


async def _supplier_id(session: AsyncSession, name: str) -> int:
    return (await session.scalars(select(m.Supplier.id).where(m.Supplier.name == name))).one()


@pytest.mark.slow
async def test_registers_load_match_review_and_decisions_survive_a_reload(
    app_client: Any, session: AsyncSession, db: Any, registers_dir: Path, tmp_path: Path
) -> None:
    env = {"LOCALVALUE_REGISTERS_DIR": str(registers_dir)}
    localvalue("import", "file", str(FEED), database_url=db.url)
    first = localvalue("classify", database_url=db.url, **env)
    # The import classified its suppliers (and stored their tiers) itself, so nothing is left to do here.
    assert "suppliers: 31; classified 0, unchanged 31" in first.stdout
    empty = localvalue("registers", "status", database_url=db.url, **env)
    assert "no register loaded yet" in empty.stdout

    ch_zip = one_file_zip(tmp_path)
    loaded = localvalue("registers", "load", "companies-house", str(ch_zip), database_url=db.url, **env)
    line = loaded.stdout.strip().splitlines()[-1]
    assert line.startswith("companies-house: 2,914 rows, version 2025-11-01 (file name)"), line
    assert "value with known status:" in line
    assert "[1/2] loading companies-house" in loaded.stderr
    charity = REGISTERS_DIR / "publicextract.charity.json"
    localvalue("registers", "load", "charity-commission", str(charity), database_url=db.url, **env)
    status = localvalue("registers", "status", database_url=db.url, **env).stdout
    assert "companies-house: version 2025-11-01, 2,914 rows (0 skipped), loaded at " in status
    assert "from BasicCompanyDataAsOneFile-2025-11-01.zip" in status
    assert "charity-commission: version 2025-11-01" in status
    assert "from publicextract.charity.json" in status
    versions = {r.kind: r.version for r in (await session.scalars(select(m.RegisterLoad))).all()}
    assert versions == {"companies_house": "2025-11-01", "ccew": "2025-11-01"}

    # A real feed supplier with a name and an address only becomes a charity on register evidence.
    reviewer = await make_token(session, "cross_reviewer", name="rita@review")
    age_uk = await _supplier_id(session, "Age UK Croydon")
    body = (await app_client.get(f"/suppliers/{age_uk}/classification", headers=bearer(reviewer))).json()
    assert (body["category"], body["vcse"]) == ("charity", True)
    winner = _why(body, "category")[0]
    assert winner["method"] == "register_entry"
    assert "Charity Commission for England and Wales register 2025-11-01, entry 205731" in winner["source"]
    assert "matched by name+postcode, score 100.0" in winner["source"]
    (match,) = _why(body, "register")
    assert (match["value"], match["method"]) == ("matched", "register_match: name+postcode")
    assert "Companies House Free Company Data Product 2025-11-01" in match["source"]

    # Ambiguous candidates wait for a reviewer, largest value at stake first.
    page = (await app_client.get("/suppliers/register-candidates", headers=bearer(reviewer))).json()
    assert page["total"] >= 2
    stakes = [item["value_at_stake_pence"] for item in page["items"]]
    assert stakes == sorted(stakes, reverse=True)
    to_reject, to_confirm = page["items"][0], page["items"][1]
    assert to_reject["candidates"]
    assert to_reject["reason"] == "similar name only: needs a reviewer"
    refused = await app_client.post(
        f"/suppliers/{to_reject['supplier_id']}/register-match",
        json={"decision": "reject", "register": "companies-house", "number": "1", "reason": "no"},
        headers=bearer(reviewer),
    )
    assert refused.status_code == 422
    assert "reason of at least 10 characters" in refused.json()["detail"]
    editor = await make_token(session, "editor", None, name="ed@nowhere")
    forbidden = await app_client.post(
        f"/suppliers/{to_reject['supplier_id']}/register-match",
        json={"decision": "reject", "register": "companies-house", "number": "1", "reason": "not the same body"},
        headers=bearer(editor),
    )
    assert forbidden.status_code == 403

    rejected = to_reject["candidates"][0]
    answer = await app_client.post(
        f"/suppliers/{to_reject['supplier_id']}/register-match",
        json={
            "decision": "reject",
            "register": rejected["register"],
            "number": rejected["number"],
            "reason": "a different company of a similar name, in another town",
        },
        headers=bearer(reviewer),
    )
    assert answer.status_code == 200, answer.text
    after_reject = answer.json()
    assert rejected["number"] not in [c["number"] for c in after_reject["candidates"]]
    assert after_reject["decisions"][0]["decision"] == "rejected"

    confirmed = to_confirm["candidates"][0]
    answer = await app_client.post(
        f"/suppliers/{to_confirm['supplier_id']}/register-match",
        json={
            "decision": "confirm",
            "register": confirmed["register"],
            "number": confirmed["number"],
            "reason": "same trading address on the invoice as the register",
        },
        headers=bearer(reviewer),
    )
    assert answer.status_code == 200, answer.text
    assert (answer.json()["status"], answer.json()["method"]) == ("confirmed", "reviewer")
    body = (
        await app_client.get(f"/suppliers/{to_confirm['supplier_id']}/classification", headers=bearer(reviewer))
    ).json()
    (match,) = _why(body, "register")
    assert match["value"] == "confirmed"
    assert "confirmed by rita@review" in match["evidence"]
    assert any(w["method"] == "register_entry" for w in body["why"] if w["flag"] in ("sme", "vcse", "category"))
    audit = (
        await session.scalars(select(m.AuditEvent.action).where(m.AuditEvent.action.like("supplier.register_match%")))
    ).all()
    assert sorted(audit) == ["supplier.register_match_confirmed", "supplier.register_match_rejected"]

    # A re-load (a new copy of the same month's file) re-matches everyone; the reviewers' word stands.
    again = tmp_path / "again"
    again.mkdir()
    shutil.copy(ch_zip, again / ch_zip.name)
    localvalue("registers", "load", "companies-house", str(again / ch_zip.name), database_url=db.url, **env)
    session.expire_all()
    matches = {
        r.supplier_id: r
        for r in (await session.scalars(select(m.SupplierRegisterMatch))).all()
        if r.supplier_id in (to_reject["supplier_id"], to_confirm["supplier_id"])
    }
    assert matches[to_confirm["supplier_id"]].status == "confirmed"
    assert matches[to_confirm["supplier_id"]].number == confirmed["number"]
    kept = matches[to_reject["supplier_id"]]
    assert rejected["number"] not in [c["number"] for c in kept.candidates]
    assert kept.number != rejected["number"] or kept.status not in ("matched", "confirmed")


@pytest.mark.slow
async def test_coverage_before_and_after_a_load_and_the_registered_postcode_fallback(
    session: AsyncSession, db: Any, registers_dir: Path, tmp_path: Path
) -> None:
    env = {"LOCALVALUE_REGISTERS_DIR": str(registers_dir)}
    await seed_anchors(session)
    await session.commit()
    walsall = (await session.scalars(select(m.Organisation).where(m.Organisation.name == "Walsall Council"))).one()
    # A supplier known by name only (no identifier, no address, no declared size), as most feed suppliers are.
    supplier = await make_supplier(session, "Summerfield Consultancy Distribution Ltd")
    contract = m.Contract(
        buyer_id=walsall.id,
        title="Clinical consultancy",
        value_pence=12_345_600,
        currency="GBP",
        award_date=dt.date(2025, 5, 1),
        start_date=dt.date(2025, 5, 1),
        end_date=dt.date(2026, 4, 30),
    )
    contract.suppliers.append(m.ContractSupplier(supplier_id=supplier.id, share_pence=12_345_600))
    session.add(contract)
    await session.commit()

    before = localvalue("classify", database_url=db.url, **env)
    assert "value with known status: 0.0% -> 0.0% (SME known 0.0% -> 0.0%" in before.stdout
    metrics_before = localvalue("metrics", "--anchor", str(walsall.id), "--period", "2025Q1", database_url=db.url)

    loaded = localvalue("registers", "load", "companies-house", str(one_file_zip(tmp_path)), database_url=db.url, **env)
    assert "value with known status: 0.0% -> 100.0% (SME known 0.0% -> 100.0%" in loaded.stdout
    metrics_after = localvalue("metrics", "--anchor", str(walsall.id), "--period", "2025Q1", database_url=db.url)
    assert metrics_before.stdout != metrics_after.stdout
    sme_before = next(line for line in metrics_before.stdout.splitlines() if line.strip().startswith("SME"))
    sme_after = next(line for line in metrics_after.stdout.splitlines() if line.strip().startswith("SME"))
    assert "share not known (judged on 0.0% of value)" in sme_before, metrics_before.stdout
    assert "judged on 100.0% of value" in sme_after, metrics_after.stdout

    bad = localvalue(
        "registers", "load", "mutuals", str(REGISTERS_DIR / "SocietyList.csv"), "--version", "2025-13-01",
        database_url=db.url, check=False, **env,
    )  # fmt: skip
    assert bad.returncode == 1
    assert "--version '2025-13-01' is not a date" in bad.stderr
    wrong = localvalue(
        "registers", "load", "companies-house", str(REGISTERS_DIR / "SocietyList.csv"), database_url=db.url,
        check=False, **env,
    )  # fmt: skip
    assert wrong.returncode == 1
    assert "not a BasicCompanyData file name" in wrong.stderr

    shown = localvalue("classify", "show", str(supplier.id), database_url=db.url, **env).stdout
    assert "decision: category sme: " in shown
    assert "sme true (implied)" in shown
    assert "Accounts.AccountCategory MICRO ENTITY" in shown
    # No address in the feed: the registered office's postcode stands in, at a lower confidence, and says so.
    assert "postcode TF2 6BB (register)" in shown
    assert "confidence 0.45" in shown
    assert "registered postcode in Companies House Free Company Data Product (no delivery address in the feed)" in shown
