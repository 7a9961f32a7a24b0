"""Backups and restores of the whole database, in each database's own format.

SQLite: the online backup API (``sqlite3.Connection.backup``) copies a live database page by page under a read
lock, so writers never leave it half-copied; the backup is an ordinary SQLite file. Restoring runs the same API
the other way, into the live file, so open connections see the restored data (replacing the file under them
would not).

PostgreSQL: ``pg_dump --format=custom`` (a consistent snapshot, compressed, restorable table by table with
``pg_restore`` by anyone who knows PostgreSQL and not Local Value). The client tools come with the server; a
portable logical dump of our own would have to re-implement types, sequences and constraints for nothing.
Restoring turns the dump into SQL (``pg_restore --clean``), drops tables the dump does not have, and runs it
all with ``psql --single-transaction``, so a failed restore leaves the database as it was.

Both formats carry the ``alembic_version`` table, so the schema revision of a backup is read from the backup
itself; a restore into a database at another revision is refused unless forced, and a restore over data unless
confirmed.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from procurement.db import VERSION_TABLE
from procurement.errors import ConflictError, InvalidInput
from procurement.imports.locks import current_holder
from procurement.imports.service import FEED_SOURCES

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"


@dataclass(frozen=True)
class Backup:
    path: Path
    dialect: str
    revision: str | None
    size: int


def _kind(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            head = handle.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PG_DUMP_MAGIC):
        return "postgresql"
    raise InvalidInput(f"{path} is not a Local Value backup (neither a SQLite database nor a pg_dump custom archive)")


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise ConflictError(f"{name} not found: install the PostgreSQL client tools (Debian: postgresql-client)")
    return found


def _run(args: list[str], env: dict[str, str], *, stdin: int | None = None) -> str:
    done = subprocess.run(args, env=env, stdin=stdin, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        detail = " ".join((done.stderr or done.stdout).split())[:500]
        raise ConflictError(f"{Path(args[0]).name} failed: {detail}")
    return done.stdout


def _libpq(engine: AsyncEngine) -> tuple[str, dict[str, str]]:
    """A libpq connection URI for the engine's database; the password goes in the environment, not argv."""
    url = engine.url.set(drivername="postgresql", query={})
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    return url.set(password=None).render_as_string(hide_password=False), env


def _sqlite_path(engine: AsyncEngine) -> Path:
    database = engine.url.database
    if not database or database == ":memory:":
        raise InvalidInput("an in-memory database cannot be backed up or restored; set DATABASE_URL to a file")
    return Path(database).resolve()


def _sqlite_revision(path: Path) -> str | None:
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        row = conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchone()  # noqa: S608
        return str(row[0]) if row else None
    except sqlite3.DatabaseError:
        return None
    finally:
        conn.close()


def _pg_dump_revision(path: Path, env: dict[str, str]) -> str | None:
    listing = _run([_tool("pg_restore"), "--data-only", f"--table={VERSION_TABLE}", "--file=-", str(path)], env)
    lines = listing.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("COPY ") and f"{VERSION_TABLE} " in line and i + 1 < len(lines):
            value = lines[i + 1].strip()
            return None if value == "\\." else value
    return None


def _pg_dump_tables(path: Path, env: dict[str, str]) -> set[str]:
    listing = _run([_tool("pg_restore"), "--list", str(path)], env)
    # TOC lines read "123; 1259 16390 TABLE public supplier owner".
    return {parts[5] for line in listing.splitlines() if len(parts := line.split()) > 5 and parts[3] == "TABLE"}


async def backup(engine: AsyncEngine, path: Path) -> Backup:
    """Copy the whole database to ``path`` (absolute; replaced atomically if it exists)."""
    tmp = path.with_name(path.name + ".partial")
    if engine.dialect.name == "postgresql":
        uri, env = _libpq(engine)
        args = [_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", f"--file={tmp}", uri]
        try:
            await asyncio.to_thread(_run, args, env)
            revision = await asyncio.to_thread(_pg_dump_revision, tmp, env)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    else:
        source = _sqlite_path(engine)
        if not source.exists():
            raise InvalidInput(f"there is no database at {source}")
        if source == path:
            raise InvalidInput("the backup would overwrite the database itself; give another path")
        await asyncio.to_thread(_sqlite_copy, source, tmp, read_only=True)
        revision = await asyncio.to_thread(_sqlite_revision, tmp)
    size = await asyncio.to_thread(_move, tmp, path)
    return Backup(path, engine.dialect.name, revision, size)


def _move(tmp: Path, path: Path) -> int:
    tmp.replace(path)
    return path.stat().st_size


def _sqlite_copy(source: Path, target: Path, *, read_only: bool) -> None:
    src = sqlite3.connect(f"{source.as_uri()}?mode=ro", uri=True) if read_only else sqlite3.connect(source)
    try:
        dst = sqlite3.connect(target, timeout=30)
        try:
            src.backup(dst)  # one step: the whole database under one read lock, so it is consistent
        finally:
            dst.close()
    finally:
        src.close()


def _has_rows(conn: Connection) -> tuple[str | None, bool]:
    """(revision, holds data) of the connected database; no tables at all is (None, False)."""
    tables = [t for t in inspect(conn).get_table_names() if t != VERSION_TABLE]
    revision = None
    if VERSION_TABLE in inspect(conn).get_table_names():
        revision = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()  # noqa: S608
    quote = conn.dialect.identifier_preparer.quote
    filled = any(conn.execute(text(f"SELECT 1 FROM {quote(t)} LIMIT 1")).first() for t in tables)  # noqa: S608
    return revision, filled


async def restore(engine: AsyncEngine, path: Path, *, yes: bool, force: bool) -> Backup:
    """Replace the database's contents with the backup at ``path``.

    Refused while an import runs, into a database at another schema revision unless ``force``, and over data
    unless ``yes``. ``path`` is absolute.
    """
    kind = _kind(path)
    if kind != engine.dialect.name:
        raise InvalidInput(f"{path} is a {kind} backup; DATABASE_URL points at a {engine.dialect.name} database")
    for source in FEED_SOURCES:
        holder = await current_holder(engine, source)
        if holder is not None:
            raise ConflictError(f"{holder.describe()} is importing {source}; restore when it has finished")
    if kind == "postgresql":
        uri, env = _libpq(engine)
        revision = await asyncio.to_thread(_pg_dump_revision, path, env)
    else:
        revision = await asyncio.to_thread(_sqlite_revision, path)
        if not _sqlite_path(engine).exists():
            _sqlite_path(engine).touch()
    async with engine.connect() as conn:
        current, filled = await conn.run_sync(_has_rows)
    if current is not None and current != revision and not force:
        raise ConflictError(
            f"the backup is at schema revision {revision}, this database at {current}; restore into a database at "
            f"{revision} (or an empty one), or add --force and then run `localvalue database upgrade`"
        )
    if filled and not yes:
        raise ConflictError("this database holds data that the restore would replace; add --yes to replace it")
    await engine.dispose()  # no pooled connection of ours holds the tables while they are replaced
    if kind == "postgresql":
        await asyncio.to_thread(_pg_restore, path, uri, env)
    else:
        await asyncio.to_thread(_sqlite_copy, path, _sqlite_path(engine), read_only=False)
    return Backup(path, kind, revision, await asyncio.to_thread(lambda: path.stat().st_size))


def _pg_restore(path: Path, uri: str, env: dict[str, str]) -> None:
    psql = [_tool("psql"), "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1"]
    present = _run(
        [
            *psql,
            "--tuples-only",
            "--no-align",
            "--command=SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
            uri,
        ],
        env,
    )
    # Tables of another revision, which the dump would not recreate, are dropped in the same transaction.
    extra = sorted(set(present.split()) - _pg_dump_tables(path, env))
    drops = [f'--command=DROP TABLE IF EXISTS public."{t}" CASCADE' for t in extra]
    quiet = {**env, "PGOPTIONS": "-c client_min_messages=warning"}
    with tempfile.TemporaryDirectory() as work:  # private (0700): the script holds all the data
        script = Path(work) / "restore.sql"
        _run(
            [
                _tool("pg_restore"),
                "--clean",
                "--if-exists",
                "--no-owner",
                "--no-privileges",
                f"--file={script}",
                str(path),
            ],
            env,
        )
        _run([*psql, "--single-transaction", *drops, f"--file={script}", uri], quiet)
