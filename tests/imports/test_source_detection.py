"""`import file` tells Contracts Finder from Find a Tender per release (ocid prefix, else the package's publisher)
and records which; `--source` overrides, with a note where a release looks otherwise. Before: every file was
stored as Contracts Finder, including the Find a Tender package."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from importers.files import CONTRACTS_FINDER, FIND_A_TENDER, package_source, release_source
from procurement import models as m
from tests.conftest import BACKENDS, Database, dispose_database, new_database
from tests.support.cli import localvalue
from tests.support.imports import CF_FILES
from tests.support.paths import FEEDS_DIR

FTS_FILE = FEEDS_DIR / "find-a-tender" / "release-package-032703-2026-tender.json"
LEGACY_CF = sorted((FEEDS_DIR / "contracts-finder" / "legacy-2019-2020-bluetail").glob("*.json"))[0]


def _releases(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_bytes(), parse_float=Decimal)
    return list(data["releases"] if isinstance(data, dict) else data)


def test_detection_by_ocid_prefix_and_package_publisher(tmp_path: Path) -> None:
    assert package_source(FTS_FILE) == FIND_A_TENDER
    assert package_source(CF_FILES[1]) == CONTRACTS_FINDER
    assert release_source("ocds-h6vhtk-04fd2c", None) == FIND_A_TENDER
    assert release_source("ocds-b5fd17-8af6ed71-be4a-4cf4-bb4b-bbb35e04cbfa", FIND_A_TENDER) == CONTRACTS_FINDER
    assert release_source("ocds-b5fd17raw-0054a4e6-0715-42c6-9109-e219fe9d3289", None) == CONTRACTS_FINDER
    # An ocid of neither prefix falls back on the package; without a package, nothing is claimed.
    assert release_source("ocds-xxxxxx-1", FIND_A_TENDER) == FIND_A_TENDER
    assert release_source("ocds-xxxxxx-1", None) is None
    bare = tmp_path / "array.json"
    bare.write_text(json.dumps([{"ocid": "ocds-h6vhtk-1", "id": "1"}]))
    assert package_source(bare) is None


def _mixed_file(tmp_path: Path) -> tuple[Path, int, int]:
    fts = _releases(FTS_FILE)
    cf = _releases(CF_FILES[0])[:20]
    path = tmp_path / "mixed.json"
    # Interleaved, in one plain JSON array (no package to go by): the ocid prefix decides each release.
    path.write_text(json.dumps([*cf[:10], *fts, *cf[10:]], default=str))
    return path, len(fts), len(cf)


async def _stored(db: Database) -> dict[str, int]:
    async with db.engine.connect() as conn:
        # Distinct releases: a release whose bytes changed is a new version of the same release.
        rows = await conn.execute(
            select(m.RawRelease.source, func.count(m.RawRelease.release_id.distinct())).group_by(m.RawRelease.source)
        )
        return dict(rows.tuples().all())


async def _ocid_sources(db: Database) -> set[tuple[str, str]]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(select(m.RawRelease.ocid, m.RawRelease.source))
        return {(ocid[:11], source) for ocid, source in rows.all()}


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
async def test_import_file_labels_each_release(backend: str, tmp_path: Path) -> None:
    url, name = await new_database(backend, tmp_path, "sources")
    try:
        localvalue("database", "upgrade", "--no-prompt", database_url=url)
        fts = localvalue("import", "file", str(FTS_FILE), database_url=url)
        assert "failed 0" in fts.stdout, fts.stdout + fts.stderr
        runs = localvalue("import", "runs", database_url=url).stdout
        assert "find_a_tender" in runs
        assert "contracts_finder" not in runs

        mixed, n_fts, n_cf = _mixed_file(tmp_path)
        legacy = localvalue("import", "file", str(mixed), str(LEGACY_CF), database_url=url)
        assert "failed 0" in legacy.stdout, legacy.stdout + legacy.stderr
        runs = localvalue("import", "runs", database_url=url).stdout
        assert "contracts_finder+find_a_tender" in runs

        from procurement.db import make_engine

        engine = make_engine(url)
        try:
            db = Database(backend, url, engine)
            stored = await _stored(db)
            assert stored[FIND_A_TENDER] == n_fts
            assert stored[CONTRACTS_FINDER] == n_cf + len(_releases(LEGACY_CF))
            assert await _ocid_sources(db) == {
                ("ocds-h6vhtk", FIND_A_TENDER),
                ("ocds-b5fd17", CONTRACTS_FINDER),
            }
        finally:
            await engine.dispose()
    finally:
        await dispose_database(backend, name)


async def test_explicit_source_overrides_with_a_note(db: Database) -> None:
    from procurement.imports.runs import run_file_import

    result = await run_file_import(db.engine, CONTRACTS_FINDER, [FTS_FILE])
    assert result.status == "completed"
    assert await _stored(db) == {CONTRACTS_FINDER: len(_releases(FTS_FILE))}
    async with db.engine.connect() as conn:
        run = (await conn.execute(select(m.ImportRun.source, m.ImportRun.parameters))).one()
        notes = (await conn.execute(select(m.ImportNote.level, m.ImportNote.message))).all()
    assert run.source == CONTRACTS_FINDER
    assert run.parameters["source"] == CONTRACTS_FINDER
    n = len(_releases(FTS_FILE))
    expected = (
        f"{n} release{'s' if n != 1 else ''} look{'s' if n == 1 else ''} like Find a Tender (ocid prefix or package "
        f"publisher) but --source contracts_finder was given; stored as contracts_finder"
    )
    assert ("warning", expected) in [(level, message) for level, message in notes]


async def test_detected_run_on_the_real_samples(db: Database, tmp_path: Path) -> None:
    from procurement.imports.runs import run_file_import

    result = await run_file_import(db.engine, None, [*CF_FILES, FTS_FILE])
    assert result.status == "completed"
    stored = await _stored(db)
    assert stored[FIND_A_TENDER] == len(_releases(FTS_FILE))
    assert stored[CONTRACTS_FINDER] == sum(len(_releases(p)) for p in CF_FILES)
    async with db.engine.connect() as conn:
        run = (await conn.execute(select(m.ImportRun.source))).scalar_one()
        sources = {s for (s,) in await conn.execute(select(m.Contract.source).distinct())}
    assert run == "contracts_finder+find_a_tender"
    assert CONTRACTS_FINDER in sources
