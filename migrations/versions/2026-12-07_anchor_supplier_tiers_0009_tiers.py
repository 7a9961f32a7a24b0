"""stored anchor x supplier tiers, and the data version that cached figures are keyed by

Two new tables. The tiers start empty and unusable (no rules recorded): figures are read from scratch until
the first write that changes figures, or `localvalue classify`, rebuilds them all.

Revision ID: 0009_tiers
Revises: 0009_mappings
Create Date: 2026-12-06 07:40:00+00:00
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_tiers"
down_revision: str | None = "0009_mappings"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "anchor_supplier_tier",
        sa.Column("id", _ID, nullable=False),
        sa.Column("anchor_id", _ID, nullable=False),
        sa.Column("supplier_id", _ID, nullable=False),
        sa.Column("effective_supplier_id", sa.BigInteger(), nullable=False),
        sa.Column("tier", sa.String(length=16), nullable=True),
        sa.Column("tier_confidence", sa.Float(), nullable=True),
        sa.Column("tier_method", sa.String(length=32), nullable=True),
        sa.Column("tier_reason", sa.String(length=2000), nullable=True),
        sa.Column("category", sa.String(length=32), nullable=True),
        sa.Column("sme", sa.Boolean(), nullable=True),
        sa.Column("vcse", sa.Boolean(), nullable=True),
        sa.Column("social_enterprise", sa.Boolean(), nullable=True),
        sa.ForeignKeyConstraint(
            ["anchor_id"],
            ["organisation.id"],
            name=op.f("fk_anchor_supplier_tier_anchor_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["supplier_id"],
            ["supplier.id"],
            name=op.f("fk_anchor_supplier_tier_supplier_id_supplier"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_anchor_supplier_tier")),
        sa.UniqueConstraint("anchor_id", "supplier_id", name=op.f("uq_anchor_supplier_tier_anchor_id")),
    )
    with op.batch_alter_table("anchor_supplier_tier", schema=None) as batch_op:
        batch_op.create_index("ix_anchor_supplier_tier_supplier_id", ["supplier_id"], unique=False)
    data_version = op.create_table(
        "data_version",
        sa.Column("id", _ID, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("epoch", sa.String(length=32), nullable=False),
        sa.Column("tiers_rules", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_version")),
    )
    op.bulk_insert(data_version, [{"id": 1, "version": 0, "epoch": uuid.uuid4().hex, "tiers_rules": None}])


def downgrade() -> None:
    op.drop_table("data_version")
    with op.batch_alter_table("anchor_supplier_tier", schema=None) as batch_op:
        batch_op.drop_index("ix_anchor_supplier_tier_supplier_id")
    op.drop_table("anchor_supplier_tier")
