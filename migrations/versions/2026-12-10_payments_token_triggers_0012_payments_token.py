"""a token for the lean payment lines, changed by the database on every write to what they are read from

``data_version.payments_token`` is set to a new random value by triggers on ``payment_line``, ``spend_file`` and
``payee_match`` (any insert, update, delete or truncate: the lean read of the paid basis reads lines, their file's
status and anchor, and a stand-in payee's match), in the writing transaction, whoever writes. A columnar copy of
every lean payment line on disk is keyed by it (``procurement.metrics.linecache``), as the stored tiers are by
``tiers_token`` (0011_tiers_token: the same scheme, with its own per-transaction settings on PostgreSQL).

Revision ID: 0012_payments_token
Revises: 0011_changes
Create Date: 2026-12-10 10:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_payments_token"
down_revision: str | None = "0011_changes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PAYMENT_TABLES = ("payment_line", "spend_file", "payee_match")

_PG_FUNCTIONS = (
    """
CREATE FUNCTION localvalue_payments_queued() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('localvalue.payments_queued', '1', true);
    RETURN NULL;
END $$""",
    """
CREATE FUNCTION localvalue_payments_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('localvalue.payments_changed', true) IS DISTINCT FROM '1' THEN
        PERFORM set_config('localvalue.payments_changed', '1', true);
        UPDATE data_version SET payments_token = replace(gen_random_uuid()::text, '-', '') WHERE id = 1;
    END IF;
    RETURN NULL;
END $$""",
)


def _pg_triggers(table: str) -> tuple[str, ...]:
    # As for the lines and tiers: rows are queued for the commit-time trigger only until the transaction is marked.
    marked = "WHEN (current_setting('localvalue.payments_queued', true) IS DISTINCT FROM '1')"
    events = "INSERT OR UPDATE OR DELETE"
    return (
        f"CREATE CONSTRAINT TRIGGER localvalue_payments_{table} AFTER {events} ON {table} "
        f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW {marked} EXECUTE FUNCTION localvalue_payments_changed()",
        f"CREATE TRIGGER localvalue_payments_{table}_queued AFTER {events} ON {table} "
        f"FOR EACH ROW {marked} EXECUTE FUNCTION localvalue_payments_queued()",
        f"CREATE TRIGGER localvalue_payments_{table}_truncated AFTER TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION localvalue_payments_changed()",
    )


def upgrade() -> None:
    # Added and dropped in place: a batch rebuild of data_version fails on SQLite while the triggers of
    # 0010_lines_token and 0011_tiers_token name it.
    op.add_column("data_version", sa.Column("payments_token", sa.String(length=32), nullable=True))
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("UPDATE data_version SET payments_token = replace(gen_random_uuid()::text, '-', '')")
        for statement in (*_PG_FUNCTIONS, *(ddl for table in PAYMENT_TABLES for ddl in _pg_triggers(table))):
            op.execute(statement)
        return
    op.execute("UPDATE data_version SET payments_token = lower(hex(randomblob(16)))")
    for table in PAYMENT_TABLES:
        for what in ("INSERT", "UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER localvalue_payments_{table}_{what.lower()} AFTER {what} ON {table} BEGIN "
                "UPDATE data_version SET payments_token = lower(hex(randomblob(16))) WHERE id = 1; END"
            )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for table in PAYMENT_TABLES:
            for name in (f"localvalue_payments_{table}", f"localvalue_payments_{table}_queued",
                         f"localvalue_payments_{table}_truncated"):  # fmt: skip
                op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        op.execute("DROP FUNCTION IF EXISTS localvalue_payments_changed()")
        op.execute("DROP FUNCTION IF EXISTS localvalue_payments_queued()")
    else:
        for table in PAYMENT_TABLES:
            for what in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS localvalue_payments_{table}_{what}")
    op.execute("ALTER TABLE data_version DROP COLUMN payments_token")
