"""column mappings remembered per organisation, and spreadsheet uploads in progress

New tables only; existing data is untouched.

Revision ID: 0009_mappings
Revises: 0008_procure
Create Date: 2026-12-07 07:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

sa.DateTimeUTC = DateTimeUTC  # type: ignore[attr-defined]

revision: str = "0009_mappings"
down_revision: str | None = "0008_procure"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine:  # type: ignore[type-arg]
    return (
        sa.JSON()
        .with_variant(postgresql.JSONB(astext_type=Text()), "cockroachdb")
        .with_variant(sa.ORA_JSONB(), "oracle")  # type: ignore[attr-defined]
        .with_variant(postgresql.JSONB(astext_type=Text()), "postgresql")
    )


def _id() -> sa.types.TypeEngine:  # type: ignore[type-arg]
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "column_mapping",
        sa.Column("id", _id(), nullable=False),
        sa.Column("organisation_id", _id(), nullable=False),
        sa.Column("header_key", sa.String(length=64), nullable=False),
        sa.Column("headings", _json(), nullable=False),
        sa.Column("mapping", _json(), nullable=False),
        sa.Column("updated_at", sa.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_column_mapping_organisation_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_column_mapping")),
        sa.UniqueConstraint("organisation_id", "header_key", name=op.f("uq_column_mapping_organisation_id")),
    )
    op.create_table(
        "upload_draft",
        sa.Column("id", _id(), nullable=False),
        sa.Column("organisation_id", _id(), nullable=False),
        sa.Column("file_key", sa.String(length=100), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("headings", _json(), nullable=False),
        sa.Column("mapping", _json(), nullable=True),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_by_user_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_upload_draft_organisation_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_upload_draft")),
        sa.UniqueConstraint("organisation_id", "file_key", name=op.f("uq_upload_draft_organisation_id")),
    )
    with op.batch_alter_table("upload_draft", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_upload_draft_created_at"), ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("upload_draft", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_upload_draft_created_at"))
    op.drop_table("upload_draft")
    op.drop_table("column_mapping")
