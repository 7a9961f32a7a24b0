"""the raw archive keeps each release's canonical JSON as text, exactly as hashed

``raw_release.data`` was jsonb on PostgreSQL: the server parsed every release on the way in (the largest single
cost of an import there) and kept a re-ordered copy, so ``content_hash`` could not be checked against it. It is
now text on both databases, the bytes the hash was taken of. Rows archived before this revision keep the text
PostgreSQL renders for their jsonb: the same JSON values, laid out differently from the hashed bytes.

Revision ID: 0011_raw_text
Revises: 0010_lines_token
Create Date: 2026-12-08 16:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from advanced_alchemy.types import JsonB
from alembic import op

revision: str = "0011_raw_text"
down_revision: str | None = "0010_lines_token"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("raw_release", schema=None) as batch_op:
        batch_op.alter_column(
            "data", existing_type=JsonB, type_=sa.Text(), existing_nullable=False, postgresql_using="data::text"
        )


def downgrade() -> None:
    with op.batch_alter_table("raw_release", schema=None) as batch_op:
        batch_op.alter_column(
            "data", existing_type=sa.Text(), type_=JsonB, existing_nullable=False, postgresql_using="data::jsonb"
        )
