"""a token for the stored tiers and the supplier names read with them, changed by the database on every write

``data_version.tiers_token`` is set to a new random value by triggers on ``anchor_supplier_tier`` (any insert,
update, delete or truncate) and on ``supplier`` (insert, delete, truncate, and an update of its id or name: the
only columns read beside a tier), in the writing transaction, whoever writes. A columnar copy of the stored tiers
on disk is keyed by it (``procurement.metrics.linecache``), as the lines are by ``lines_token`` (0010_lines_token:
the same scheme, with its own per-transaction settings on PostgreSQL).

Revision ID: 0011_tiers_token
Revises: 0011_raw_text
Create Date: 2026-12-09 10:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_tiers_token"
down_revision: str | None = "0011_raw_text"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The table and the row events that move the token (an update of ``supplier`` only when it touches these columns).
TIER_TABLES = {"anchor_supplier_tier": "UPDATE", "supplier": "UPDATE OF id, name"}

_PG_FUNCTIONS = (
    """
CREATE FUNCTION localvalue_tiers_queued() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('localvalue.tiers_queued', '1', true);
    RETURN NULL;
END $$""",
    """
CREATE FUNCTION localvalue_tiers_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('localvalue.tiers_changed', true) IS DISTINCT FROM '1' THEN
        PERFORM set_config('localvalue.tiers_changed', '1', true);
        UPDATE data_version SET tiers_token = replace(gen_random_uuid()::text, '-', '') WHERE id = 1;
    END IF;
    RETURN NULL;
END $$""",
)


def _pg_triggers(table: str, update: str) -> tuple[str, ...]:
    # As for the lines: rows are queued for the commit-time trigger only until the transaction is marked.
    marked = "WHEN (current_setting('localvalue.tiers_queued', true) IS DISTINCT FROM '1')"
    events = f"INSERT OR {update} OR DELETE"
    return (
        f"CREATE CONSTRAINT TRIGGER localvalue_tiers_{table} AFTER {events} ON {table} "
        f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW {marked} EXECUTE FUNCTION localvalue_tiers_changed()",
        f"CREATE TRIGGER localvalue_tiers_{table}_queued AFTER {events} ON {table} "
        f"FOR EACH ROW {marked} EXECUTE FUNCTION localvalue_tiers_queued()",
        f"CREATE TRIGGER localvalue_tiers_{table}_truncated AFTER TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION localvalue_tiers_changed()",
    )


def upgrade() -> None:
    # Added and dropped in place: a batch rebuild of data_version fails on SQLite while the triggers of
    # 0010_lines_token name it.
    op.add_column("data_version", sa.Column("tiers_token", sa.String(length=32), nullable=True))
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("UPDATE data_version SET tiers_token = replace(gen_random_uuid()::text, '-', '')")
        triggers = (ddl for table, update in TIER_TABLES.items() for ddl in _pg_triggers(table, update))
        for statement in (*_PG_FUNCTIONS, *triggers):
            op.execute(statement)
        return
    op.execute("UPDATE data_version SET tiers_token = lower(hex(randomblob(16)))")
    for table, update in TIER_TABLES.items():
        for what in ("INSERT", update, "DELETE"):
            op.execute(
                f"CREATE TRIGGER localvalue_tiers_{table}_{what.split()[0].lower()} AFTER {what} ON {table} BEGIN "
                "UPDATE data_version SET tiers_token = lower(hex(randomblob(16))) WHERE id = 1; END"
            )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for table in TIER_TABLES:
            for name in (f"localvalue_tiers_{table}", f"localvalue_tiers_{table}_queued",
                         f"localvalue_tiers_{table}_truncated"):  # fmt: skip
                op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        op.execute("DROP FUNCTION IF EXISTS localvalue_tiers_changed()")
        op.execute("DROP FUNCTION IF EXISTS localvalue_tiers_queued()")
    else:
        for table in TIER_TABLES:
            for what in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS localvalue_tiers_{table}_{what}")
    op.execute("ALTER TABLE data_version DROP COLUMN tiers_token")
