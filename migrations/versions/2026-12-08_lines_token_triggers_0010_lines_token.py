"""a token for the contract lines, changed by the database itself on every write to them

``data_version.lines_token`` is set to a new random value by triggers on ``contract``, ``contract_supplier`` and
``contract_cpv`` (any insert, update, delete or truncate), in the writing transaction, so every writer is seen:
the ORM, bulk SQL, cascades, psql. A columnar copy of the lines on disk is keyed by it (``procurement.metrics.
linecache``). Random rather than a counter: a restored backup brings back its own token with its own lines, and
a later write never repeats a token that named other lines.

On PostgreSQL the token is written once per transaction at commit (a deferred constraint trigger queued by the
rows of a transaction's first statement that changes lines), so a long import does not hold the data-version row from its first line
to its end. On SQLite, which has one writer at a time, each changed row sets it.

Revision ID: 0010_lines_token
Revises: 0009_tiers
Create Date: 2026-12-08 13:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_lines_token"
down_revision: str | None = "0009_tiers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LINE_TABLES = ("contract", "contract_supplier", "contract_cpv")
_OPS = ("INSERT", "UPDATE", "DELETE")

_PG_FUNCTIONS = (
    """
CREATE FUNCTION localvalue_lines_queued() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('localvalue.lines_queued', '1', true);
    RETURN NULL;
END $$""",
    """
CREATE FUNCTION localvalue_lines_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('localvalue.lines_changed', true) IS DISTINCT FROM '1' THEN
        PERFORM set_config('localvalue.lines_changed', '1', true);
        UPDATE data_version SET lines_token = replace(gen_random_uuid()::text, '-', '') WHERE id = 1;
    END IF;
    RETURN NULL;
END $$""",
)


def _pg_triggers(table: str) -> tuple[str, ...]:
    # Rows are queued for the commit-time trigger only until the first changed row's own trigger (run at the end
    # of its statement) has marked the transaction: an import writing a million lines in chunks queues one chunk,
    # not a million events. A statement that changes no row marks nothing.
    marked = "WHEN (current_setting('localvalue.lines_queued', true) IS DISTINCT FROM '1')"
    return (
        f"CREATE CONSTRAINT TRIGGER localvalue_lines_{table} AFTER INSERT OR UPDATE OR DELETE ON {table} "
        f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW {marked} EXECUTE FUNCTION localvalue_lines_changed()",
        f"CREATE TRIGGER localvalue_lines_{table}_queued AFTER INSERT OR UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW {marked} EXECUTE FUNCTION localvalue_lines_queued()",
        f"CREATE TRIGGER localvalue_lines_{table}_truncated AFTER TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION localvalue_lines_changed()",
    )


def upgrade() -> None:
    with op.batch_alter_table("data_version", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lines_token", sa.String(length=32), nullable=True))
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("UPDATE data_version SET lines_token = replace(gen_random_uuid()::text, '-', '')")
        for statement in (*_PG_FUNCTIONS, *(ddl for table in LINE_TABLES for ddl in _pg_triggers(table))):
            op.execute(statement)
        return
    op.execute("UPDATE data_version SET lines_token = lower(hex(randomblob(16)))")
    for table in LINE_TABLES:
        for what in _OPS:
            op.execute(
                f"CREATE TRIGGER localvalue_lines_{table}_{what.lower()} AFTER {what} ON {table} BEGIN "
                "UPDATE data_version SET lines_token = lower(hex(randomblob(16))) WHERE id = 1; END"
            )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for table in LINE_TABLES:
            for name in (f"localvalue_lines_{table}", f"localvalue_lines_{table}_queued",
                         f"localvalue_lines_{table}_truncated"):  # fmt: skip
                op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        op.execute("DROP FUNCTION IF EXISTS localvalue_lines_changed()")
        op.execute("DROP FUNCTION IF EXISTS localvalue_lines_queued()")
    else:
        for table in LINE_TABLES:
            for what in _OPS:
                op.execute(f"DROP TRIGGER IF EXISTS localvalue_lines_{table}_{what.lower()}")
    with op.batch_alter_table("data_version", schema=None) as batch_op:
        batch_op.drop_column("lines_token")
