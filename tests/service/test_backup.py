"""`localvalue backup` and `restore` on the demo data: backup, wipe, restore, every row back, statements verify."""

from __future__ import annotations

from pathlib import Path

import pytest

from procurement.db import make_engine
from tests.conftest import BACKENDS, create_pg_database, dispose_database, drop_pg_database, new_database
from tests.support.cli import localvalue
from tests.support.demo import load_demo, revision, table_rows


async def _rows(url: str) -> dict[str, list[tuple[object, ...]]]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(table_rows)
    finally:
        await engine.dispose()


async def _revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(revision)
    finally:
        await engine.dispose()


def _one_line_refusal(*args: str, url: str) -> str:
    refused = localvalue(*args, database_url=url, check=False)
    assert refused.returncode == 1, refused.stdout
    assert "Traceback" not in refused.stderr
    [line] = refused.stderr.strip().splitlines()
    return line


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
async def test_backup_wipe_restore_gives_every_row_back(backend: str, tmp_path: Path) -> None:
    url, name = await new_database(backend, tmp_path, "backup")
    try:
        localvalue("database", "upgrade", "--no-prompt", database_url=url)
        load_demo(url)
        before = await _rows(url)
        head = await _revision(url)
        assert len(before["statement"]) == 1
        assert len(before["contract"]) > 100

        backup = tmp_path / "nightly.backup"
        made = localvalue("backup", str(backup), database_url=url)
        assert made.stdout.startswith(f"backed up the {backend} database at schema revision {head} to {backup} (")

        # Over live data: refused, nothing changed.
        line = _one_line_refusal("restore", str(backup), url=url)
        assert line == "Error: this database holds data that the restore would replace; add --yes to replace it"
        assert await _rows(url) == before

        # Wipe: the database is gone and comes back empty, at an older schema revision.
        if backend == "postgresql":
            await drop_pg_database(name)
            await create_pg_database(name)
        else:
            Path(name).unlink()
        localvalue("database", "upgrade", "0004", "--no-prompt", database_url=url)
        line = _one_line_refusal("restore", str(backup), url=url)
        assert line.startswith(f"Error: the backup is at schema revision {head}, this database at 0004; ")
        assert "add --force" in line

        restored = localvalue("restore", str(backup), "--force", database_url=url)
        assert restored.stdout.startswith(f"restored {backup} (schema revision {head})")
        assert await _revision(url) == head
        assert await _rows(url) == before
        verified = localvalue("statements", "verify", database_url=url)
        assert verified.stdout.strip().splitlines()[-1] == "verified 1 statements, 0 with problems"

        # The restored database is live: a new write gets a fresh id (PostgreSQL sequences came back too).
        localvalue(
            "statements",
            "publish",
            "--anchor",
            "E08000025",
            "--quarter",
            "2022Q2",
            database_url=url,
        )
        assert len((await _rows(url))["statement"]) == 2
    finally:
        await dispose_database(backend, name)
