"""people sign in: email and password hash on users, one-time set-password links, server-side sessions

Existing users (API-token users) keep their rows and tokens; the new columns are empty for them.

Revision ID: 0007_users
Revises: 0007_roles
Create Date: 2026-12-07 09:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

revision: str = "0007_users"
down_revision: str | None = "0007_roles"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email", sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column("password_hash", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("password_set_at", DateTimeUTC(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("invite_token_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("invite_expires_at", DateTimeUTC(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_sign_in_at", DateTimeUTC(timezone=True), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_app_user_email"), ["email"])
        batch_op.create_unique_constraint(batch_op.f("uq_app_user_invite_token_hash"), ["invite_token_hash"])

    op.create_table(
        "session",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("last_seen_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("expires_at", DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_session_user_id_app_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session")),
        sa.UniqueConstraint("id_hash", name=op.f("uq_session_id_hash")),
    )
    with op.batch_alter_table("session", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_session_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_session_user_id"))
    op.drop_table("session")
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_app_user_invite_token_hash"), type_="unique")
        batch_op.drop_constraint(batch_op.f("uq_app_user_email"), type_="unique")
        for column in (
            "last_sign_in_at",
            "invite_expires_at",
            "invite_token_hash",
            "password_set_at",
            "password_hash",
            "email",
        ):
            batch_op.drop_column(column)
