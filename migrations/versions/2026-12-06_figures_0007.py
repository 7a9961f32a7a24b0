"""cash social-value measures in pounds, not pence

Cash commitments were entered and stored in pence (a target of 5000.00 meant to be pounds became 5,000 pence).
They are now pounds with two decimal places. Existing cash targets and returns are divided by 100, so a stored
1500000 (pence) becomes 15000.00 (pounds): the same money, now in the unit people enter and read. Quantities are
Numeric(18, 4), so the division is exact. Downgrade multiplies back.

Revision ID: 0007_figures
Revises: 0006
Create Date: 2026-12-06 09:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_figures"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CASH_COMMITMENTS = (
    "SELECT commitment.id FROM commitment JOIN measure ON measure.id = commitment.measure_id "
    "WHERE measure.kind = 'cash'"
)


def _convert(old_unit: str, new_unit: str, factor: str) -> None:
    for table in ("commitment_target", "delivery_return"):
        op.execute(
            sa.text(
                f"UPDATE {table} SET quantity = quantity {factor} WHERE commitment_id IN ({_CASH_COMMITMENTS})"  # noqa: S608 - fixed names
            )
        )
    op.execute(
        sa.text(f"UPDATE commitment SET unit = :new WHERE unit = :old AND id IN ({_CASH_COMMITMENTS})").bindparams(
            new=new_unit, old=old_unit
        )
    )
    op.execute(
        sa.text("UPDATE measure SET unit = :new WHERE kind = 'cash' AND unit = :old").bindparams(
            new=new_unit, old=old_unit
        )
    )


def upgrade() -> None:
    _convert("pence", "pounds", "/ 100.0")  # 100.0: SQLite would divide integers as integers


def downgrade() -> None:
    _convert("pounds", "pence", "* 100")
