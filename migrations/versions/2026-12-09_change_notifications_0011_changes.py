"""every committed change to any table notifies the workers (PostgreSQL), so they know when a cached read is stale

A statement-level trigger on every table calls ``pg_notify('localvalue_changes', '')`` on any insert, update,
delete or truncate, whoever writes (the ORM, bulk SQL, cascades, psql). PostgreSQL sends a transaction's
notifications only when it commits, one per transaction however many statements, in commit order; each worker
counts them on a listening connection (``procurement.pgchanges``). SQLite needs nothing: its file has a change
counter of its own (``PRAGMA data_version``).

A later migration that creates a table adds the same trigger to it::

    CREATE TRIGGER localvalue_changes AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON <table>
    FOR EACH STATEMENT EXECUTE FUNCTION localvalue_changed()

(tests/service/test_change_counter.py fails for a table without it).

Revision ID: 0011_changes
Revises: 0011_tiers_token
Create Date: 2026-12-09 16:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_changes"
down_revision: str | None = "0011_tiers_token"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FUNCTION = """
CREATE FUNCTION localvalue_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('localvalue_changes', '');
    RETURN NULL;
END $$"""


def _tables() -> list[str]:
    return sorted(sa.inspect(op.get_bind()).get_table_names())


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_FUNCTION)
    for table in _tables():
        op.execute(
            f"CREATE TRIGGER localvalue_changes AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION localvalue_changed()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in _tables():
        op.execute(f"DROP TRIGGER IF EXISTS localvalue_changes ON {table}")
    op.execute("DROP FUNCTION IF EXISTS localvalue_changed()")
