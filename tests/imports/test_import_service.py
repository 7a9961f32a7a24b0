"""The import service on the real Contracts Finder samples: raw archive, compile, mapping, idempotency."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from importers.ocds import compile_procurement, compile_releases_with_notes, map_compiled
from procurement import models as m
from procurement.imports import service
from procurement.imports.runs import run_file_import
from procurement.imports.service import CONTRACTS_FINDER
from tests.conftest import Database, _empty_tables
from tests.support.api import fingerprint
from tests.support.imports import CF_FILES, snapshot

# An award first published at £1,350 and amended to £4,050 by an awardUpdate (2022 page).
AMENDED = ("ocds-b5fd17-9acd68ad-792b-4018-834f-ae3b047c8a7d", "ocds-b5fd17-9acd68ad-792b-4018-834f-ae3b047c8a7d-1")
# Warwickshire day opportunities: value 0, 17 suppliers.
WARWICKSHIRE = (
    "ocds-b5fd17-0d7a6907-8595-4413-9a4e-746f8a1313a0",
    "ocds-b5fd17-0d7a6907-8595-4413-9a4e-746f8a1313a0-1",
)
# ESPO framework: £400m, 35 supplier references of which 34 distinct ids (one supplier listed twice).
ESPO = ("ocds-b5fd17-8d84c691-fc64-4f64-b240-443a0af1ba82", "ocds-b5fd17-8d84c691-fc64-4f64-b240-443a0af1ba82-1")


def _releases() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in CF_FILES:
        data = json.loads(path.read_bytes(), parse_float=Decimal)
        out.extend(data["releases"] if isinstance(data, dict) else data)
    return out


async def _count(db: Database, stmt: Any) -> int:
    async with db.engine.connect() as conn:
        return int((await conn.execute(stmt)).scalar_one())


async def _contract(db: Database, key: tuple[str, str]) -> tuple[Any, list[Any]]:
    async with db.engine.connect() as conn:
        contract = (
            await conn.execute(select(m.Contract).where(m.Contract.source_id == key[0], m.Contract.award_id == key[1]))
        ).one()
        shares = (
            await conn.execute(
                select(m.ContractSupplier)
                .where(m.ContractSupplier.contract_id == contract.id)
                .order_by(m.ContractSupplier.position)
            )
        ).all()
    return contract, list(shares)


def test_fast_compile_path_agrees_with_ocdsmerge_on_every_real_release() -> None:
    releases = _releases()
    for release in releases:
        fast, _ = compile_procurement([release])
        full, _ = compile_releases_with_notes([release])
        assert map_compiled(CONTRACTS_FINDER, fast) == map_compiled(CONTRACTS_FINDER, full), release["id"]


async def test_real_samples_counts(db: Database) -> None:
    result = await run_file_import(db.engine, CONTRACTS_FINDER, list(CF_FILES))
    assert result.status == "completed"
    releases = await _count(db, select(func.count()).select_from(m.RawRelease))
    contracts = await _count(db, select(func.count()).select_from(m.Contract))
    suppliers = await _count(db, select(func.count()).select_from(m.Supplier))
    with_postcode = await _count(
        db, select(func.count()).select_from(m.Supplier).where(m.Supplier.postcode.is_not(None))
    )
    print(
        f"\nreal CF samples ({db.backend}): releases {releases}, awards {contracts}, suppliers {suppliers}, "
        f"suppliers with a postcode {with_postcode}; {result.counts.summary()}"
    )
    # 180 + 100 releases; 175 distinct (ocid, award id) pairs across them (several awardUpdates repeat an award).
    assert (releases, contracts) == (280, 175)
    assert result.counts.new == 280
    # Not hand-counted one by one: pinned from this run, and cross-checked against the SOURCES.md figures
    # (300 supplier parties, of which 274 have a postcode in the address text) minus the GB-COH/name merges.
    assert (suppliers, with_postcode) == (247, 231)

    contract, shares = await _contract(db, AMENDED)
    assert contract.value_pence == 405_000  # the awardUpdate's £4,050 replaced the award's £1,350
    assert [(s.share_pence, s.share_basis) for s in shares] == [(405_000, "stated")]

    contract, shares = await _contract(db, WARWICKSHIRE)
    assert contract.value_pence == 0
    assert len(shares) == 17
    assert {(s.share_pence, s.share_basis) for s in shares} == {(0, "equal_split")}

    contract, shares = await _contract(db, ESPO)
    assert contract.value_pence == 40_000_000_000
    assert len(shares) == 34  # the supplier listed twice is kept once
    assert sum(s.share_pence for s in shares) == 40_000_000_000
    assert {s.share_basis for s in shares} == {"equal_split"}

    async with db.engine.connect() as conn:
        # GB-COH 7689604 in the feed (leading zero lost) is stored in its 8-character form.
        holder = (
            await conn.execute(
                select(m.Supplier.name)
                .join(m.SupplierIdentifier, m.SupplierIdentifier.supplier_id == m.Supplier.id)
                .where(m.SupplierIdentifier.scheme == "GB-COH", m.SupplierIdentifier.value == "07689604")
            )
        ).scalar_one()
        assert holder == "WCL UK Ltd t/a Everything ICT"
        # GB-CFS ids are per notice: no supplier is keyed by one, and name matches are recorded as such.
        assert not (
            await conn.execute(select(m.SupplierIdentifier).where(m.SupplierIdentifier.scheme == "GB-CFS"))
        ).first()
        methods = dict(
            (await conn.execute(select(m.SupplierMatch.method, func.count()).group_by(m.SupplierMatch.method)))
            .tuples()
            .all()
        )
        assert set(methods) == {"identifier", "name", "new"}
        assert methods["new"] == suppliers
        # Birmingham City Council buys in both samples under per-notice ids: one organisation.
        birmingham = (
            await conn.execute(
                select(func.count())
                .select_from(m.Organisation)
                .where(m.Organisation.name_key == "birmingham city council")
            )
        ).scalar_one()
        assert birmingham == 1


async def test_importing_the_same_files_twice_changes_nothing(db: Database) -> None:
    first = await run_file_import(db.engine, CONTRACTS_FINDER, list(CF_FILES))
    before = await fingerprint(db.engine)
    second = await run_file_import(db.engine, CONTRACTS_FINDER, list(CF_FILES))
    after = await fingerprint(db.engine)
    assert second.counts.summary() == "new 0, changed 0, unchanged 280, skipped 0, failed 0"
    assert first.counts.new == 280
    # Every domain row is byte-for-byte the same, updated_at included; only the run's own records are new.
    run_tables = {"import_run", "import_note", "audit_event"}
    assert {k: v for k, v in before.items() if k not in run_tables} == {
        k: v for k, v in after.items() if k not in run_tables
    }
    assert len(after["import_note"]) == len(before["import_note"])  # nothing was compiled again


async def test_changed_release_is_a_new_version_and_withdrawal_keeps_the_contract(db: Database, tmp_path: Path) -> None:
    await run_file_import(db.engine, CONTRACTS_FINDER, list(CF_FILES))
    release = next(r for r in _releases() if r["ocid"] == AMENDED[0] and r["tag"] == ["awardUpdate"])
    release["awards"][0]["value"]["amount"] = 5000
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps([release], default=str))
    result = await run_file_import(db.engine, CONTRACTS_FINDER, [changed])
    assert result.counts.summary() == "new 0, changed 1, unchanged 0, skipped 0, failed 0"
    async with db.engine.connect() as conn:
        versions = (
            (
                await conn.execute(
                    select(m.RawRelease.version)
                    .where(m.RawRelease.release_id == release["id"])
                    .order_by(m.RawRelease.version)
                )
            )
            .scalars()
            .all()
        )
    assert versions == [1, 2]
    contract, shares = await _contract(db, AMENDED)
    assert contract.value_pence == 500_000
    assert shares[0].share_pence == 500_000

    release["awards"][0]["status"] = "cancelled"
    release["id"] = release["id"] + "-cancel"
    release["date"] = "2022-10-21T09:00:00+01:00"
    cancelled = tmp_path / "cancelled.json"
    cancelled.write_text(json.dumps([release], default=str))
    result = await run_file_import(db.engine, CONTRACTS_FINDER, [cancelled])
    assert result.counts.new == 1
    contract, shares = await _contract(db, AMENDED)
    assert contract.status == "withdrawn"
    assert contract.withdrawn_reason is not None
    assert len(shares) == 1  # kept, not deleted


async def test_manual_postcode_is_not_overwritten_by_the_feed(db: Database) -> None:
    await run_file_import(db.engine, CONTRACTS_FINDER, [CF_FILES[1]])
    async with db.engine.begin() as conn:
        supplier_id, postcode = (
            await conn.execute(
                select(m.Supplier.id, m.Supplier.postcode).where(m.Supplier.postcode.is_not(None)).limit(1)
            )
        ).one()
        await conn.execute(
            m.Supplier.__table__.update()
            .where(m.Supplier.id == supplier_id)
            .values(postcode="B15 2GW", postcode_source="manual")
        )
        ocid = (
            (await conn.execute(select(m.SupplierMatch.ocid).where(m.SupplierMatch.supplier_id == supplier_id)))
            .scalars()
            .first()
        )
        # Without its stored releases, the next import sees them as new and compiles that procurement again.
        await conn.execute(m.RawRelease.__table__.delete().where(m.RawRelease.ocid == ocid))
    await run_file_import(db.engine, CONTRACTS_FINDER, [CF_FILES[1]])
    async with db.engine.connect() as conn:
        row = (
            await conn.execute(
                select(m.Supplier.postcode, m.Supplier.postcode_source).where(m.Supplier.id == supplier_id)
            )
        ).one()
    assert postcode != "B15 2GW"
    assert tuple(row) == ("B15 2GW", "manual")


async def test_snapshot_of_two_clean_runs_is_equal(db: Database, tmp_path: Path) -> None:
    # The comparison helper used by the fault and resume tests must see a difference when there is one.
    await run_file_import(db.engine, CONTRACTS_FINDER, [CF_FILES[0]])
    one = await snapshot(db.engine)
    await run_file_import(db.engine, CONTRACTS_FINDER, [CF_FILES[1]])
    two = await snapshot(db.engine)
    assert one != two
    assert len(two["raw"]) == 280


async def test_reading_in_a_child_process_gives_the_same_database(db: Database) -> None:
    """The child process reads, hashes and compiles each batch from that batch alone. Batches of 37 split
    ocids across batches, so the service must also compile some again from the archive (its fallback)."""
    for batch_size in (1000, 37):
        results = []
        for parallel in (False, True):
            result = await run_file_import(
                db.engine, CONTRACTS_FINDER, list(CF_FILES), batch_size=batch_size, parallel=parallel
            )
            results.append((result.status, result.counts.summary(), await snapshot(db.engine)))
            await _empty_tables(db)
        assert results[0][:2] == ("completed", "new 280, changed 0, unchanged 0, skipped 0, failed 0")
        assert results[1] == results[0]


async def test_a_missing_file_fails_the_run_in_the_child_process_too(db: Database, tmp_path: Path) -> None:
    for parallel in (False, True):
        result = await run_file_import(db.engine, CONTRACTS_FINDER, [tmp_path / "absent.json"], parallel=parallel)
        assert result.status == "failed"
        assert "absent.json" in (result.error or "")


async def test_a_release_back_to_earlier_content_promotes_that_version(db: Database, tmp_path: Path) -> None:
    """A -> B -> A: the old row becomes the newest version again (on PostgreSQL by a write still running while the
    batch compiles the ocid, which counts it from memory), and the contract follows it back."""
    await run_file_import(db.engine, CONTRACTS_FINDER, list(CF_FILES))
    original = next(r for r in _releases() if r["ocid"] == AMENDED[0] and r["tag"] == ["awardUpdate"])
    changed = json.loads(json.dumps(original, default=str), parse_float=Decimal)
    changed["awards"][0]["value"]["amount"] = 5000
    for name, release, value in (("changed.json", changed, 500_000), ("back.json", original, 405_000)):
        path = tmp_path / name
        path.write_text(json.dumps([release], default=str))
        result = await run_file_import(db.engine, CONTRACTS_FINDER, [path])
        assert result.counts.summary() == "new 0, changed 1, unchanged 0, skipped 0, failed 0"
        contract, shares = await _contract(db, AMENDED)
        assert (contract.value_pence, shares[0].share_pence) == (value, value)
    async with db.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(m.RawRelease.version, m.RawRelease.data)
                .where(m.RawRelease.release_id == original["id"])
                .order_by(m.RawRelease.version)
            )
        ).all()
    assert [(v, json.loads(d)["awards"][0]["value"]["amount"]) for v, d in rows] == [(2, 5000), (3, 4050)]
    again = await run_file_import(db.engine, CONTRACTS_FINDER, [tmp_path / "back.json"])
    assert again.counts.summary() == "new 0, changed 0, unchanged 1, skipped 0, failed 0"


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)  # the planner's statistics are PostgreSQL's
async def test_import_analyses_its_lookup_columns(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """An import analyses the columns it looks rows up by once a table has grown (here: has any page, whatever the
    tables held before); a run that adds nothing analyses nothing again."""
    monkeypatch.setattr(service, "ANALYSE_FROM_PAGES", 1)
    monkeypatch.setattr(service, "ANALYSE_GROWTH", 0)

    async def analysed() -> dict[str, int]:
        async with db.engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT relname, analyze_count FROM pg_stat_user_tables WHERE relname = ANY(:tables)"),
                {"tables": ["raw_release", "contract", "supplier_match"]},
            )
            return {name: int(count) for name, count in rows}

    before = await analysed()
    await run_file_import(db.engine, CONTRACTS_FINDER, list(CF_FILES))
    after = await analysed()
    assert all(after[t] > before[t] for t in before), (before, after)
    async with db.engine.connect() as conn:
        columns = await conn.execute(
            text("SELECT attname FROM pg_stats WHERE tablename = 'raw_release' AND attname = ANY(:columns)"),
            {"columns": list(service.LOOKUP_COLUMNS["raw_release"])},
        )
        assert sorted(c for (c,) in columns) == sorted(service.LOOKUP_COLUMNS["raw_release"])
    monkeypatch.setattr(service, "ANALYSE_GROWTH", 4)
    await run_file_import(db.engine, CONTRACTS_FINDER, list(CF_FILES))
    assert await analysed() == after


async def test_a_lone_surrogate_escape_is_stored_as_the_replacement_character(db: Database, tmp_path: Path) -> None:
    # Before, its release could not be hashed: the whole file stopped, and resuming stopped there again.
    release = next(r for r in _releases() if r["ocid"] == WARWICKSHIRE[0])
    supplier = release["awards"][0]["suppliers"][0]["name"]
    text = json.dumps([release, *_releases()[:3]], default=str).replace(
        json.dumps(supplier), json.dumps(supplier)[:-1] + r' \udc00"'
    )
    path = tmp_path / "surrogate.json"
    path.write_text(text, "utf-8")
    result = await run_file_import(db.engine, CONTRACTS_FINDER, [path])
    assert result.counts.summary() == "new 4, changed 0, unchanged 0, skipped 0, failed 0"
    assert await _count(db, select(func.count()).where(m.Supplier.name == f"{supplier} \ufffd")) == 1
    again = await run_file_import(db.engine, CONTRACTS_FINDER, [path])
    assert again.counts.summary() == "new 0, changed 0, unchanged 4, skipped 0, failed 0"
