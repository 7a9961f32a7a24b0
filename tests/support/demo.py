"""The `make demo` data, loaded with the real commands: anchors, the sample, classification, one statement."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from tests.support.cli import localvalue_steps
from tests.support.imports import CF_FILES

# The sample's Birmingham City Council award (a Dudley contractor, June 2022) makes the demo statement.
DEMO_ANCHOR = "E08000025"
DEMO_QUARTER = "2022Q1"


def load_demo(database_url: str) -> None:
    """Seed, import, classify and publish as `make demo-data` does, into a migrated database."""
    steps: list[tuple[str, ...]] = [
        ("seed", "anchors"),
        ("import", "file", *(str(p) for p in CF_FILES)),
        ("seed", "measures"),
        ("seed", "groups"),
        ("classify",),
        ("statements", "publish", "--anchor", DEMO_ANCHOR, "--quarter", DEMO_QUARTER, "--by", "demo"),
    ]
    localvalue_steps(*steps, database_url=database_url)


def table_rows(connection: Connection, columns: dict[str, list[str]] | None = None) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (but Alembic's), sorted; only the given columns of each table when asked."""
    found = inspect(connection).get_table_names()
    out: dict[str, list[tuple[Any, ...]]] = {}
    for table in sorted(found):
        if table == "alembic_version" or (columns is not None and table not in columns):
            continue
        names = columns[table] if columns is not None else [c["name"] for c in inspect(connection).get_columns(table)]
        quote = connection.dialect.identifier_preparer.quote
        rows = connection.execute(text(f"SELECT {', '.join(map(quote, names))} FROM {quote(table)}"))
        out[table] = sorted((_comparable(table, names, r) for r in rows), key=repr)
    return out


def _comparable(table: str, names: list[str], row: Any) -> tuple[Any, ...]:
    """The row, with the raw archive's JSON as values: below revision 0011 PostgreSQL kept it as jsonb, whose text
    lays the same JSON out differently from the canonical text stored since."""
    if table != "raw_release" or "data" not in names:
        return tuple(row)
    at = names.index("data")
    value = row[at]
    data = json.loads(value) if isinstance(value, str) else value  # as the driver reads jsonb: floats
    return (*row[:at], data, *row[at + 1 :])


def table_columns(connection: Connection) -> dict[str, list[str]]:
    found = inspect(connection)
    return {t: [c["name"] for c in found.get_columns(t)] for t in found.get_table_names() if t != "alembic_version"}


def revision(connection: Connection) -> str | None:
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
