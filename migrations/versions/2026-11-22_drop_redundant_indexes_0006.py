"""drop indexes that repeat the first column of another index

Each one cost an index entry per imported contract, CPV code and supplier share for no query that the
wider index (ix_contract_buyer_award_date, and the two unique constraints on contract_id) does not serve.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 23:10:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DROPPED = (
    ("ix_contract_buyer_id", "contract", "buyer_id"),
    ("ix_contract_cpv_contract_id", "contract_cpv", "contract_id"),
    ("ix_contract_supplier_contract_id", "contract_supplier", "contract_id"),
)


def upgrade() -> None:
    for name, table, _column in _DROPPED:
        op.drop_index(name, table_name=table)


def downgrade() -> None:
    for name, table, column in _DROPPED:
        op.create_index(name, table, [column], unique=False)
