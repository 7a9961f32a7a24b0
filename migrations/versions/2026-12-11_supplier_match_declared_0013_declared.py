"""partial indexes of the supplier matches that declare a scale or a VCSE status, by supplier and id

Classification reads, for each supplier without a declaration of its own, the latest of its matches that declares
one. By ``supplier_id`` alone that reads every match of the supplier (all of them when none declares, the usual
case), so it grew with the database; these indexes hold only the declaring matches, and the latest is one probe.

Revision ID: 0013_declared
Revises: 0012_payments_token
Create Date: 2026-12-11 10:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_declared"
down_revision: str | None = "0012_payments_token"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("declared_scale", "declared_vcse")


def upgrade() -> None:
    for column in _COLUMNS:
        where = sa.text(f"{column} IS NOT NULL")
        op.create_index(
            f"ix_supplier_match_{column}",
            "supplier_match",
            ["supplier_id", "id"],
            unique=False,
            postgresql_where=where,
            sqlite_where=where,
        )


def downgrade() -> None:
    for column in _COLUMNS:
        op.drop_index(f"ix_supplier_match_{column}", table_name="supplier_match")
