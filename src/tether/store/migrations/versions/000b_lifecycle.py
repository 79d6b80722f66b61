"""identity lifecycle: offboardings, third-party OAuth grants, metric snapshots (branch: lifecycle)

Revision ID: 000b
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "000b"
down_revision = "0001"
branch_labels = ("lifecycle",)
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "offboardings",
        sa.Column("identity_id", sa.String(length=200), nullable=False),
        sa.Column("offboarded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("offboarded_by", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.String(length=400), nullable=False),
        sa.Column("previous_status", sa.String(length=20), nullable=True),
        sa.Column("revoked", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("identity_id"),
    )
    op.create_table(
        "oauth_grants",
        sa.Column("app", sa.String(length=200), nullable=False),
        sa.Column("vendor", sa.String(length=200), nullable=False),
        sa.Column("identity_id", sa.String(length=200), nullable=True),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("scope_actions", sa.JSON(), nullable=False),
        sa.Column("granted_by", sa.String(length=200), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_vendor_review", sa.DateTime(timezone=True), nullable=True),
        sa.Column("source", sa.String(length=400), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("imported_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("app"),
    )
    op.create_table(
        "estate_metric_snapshots",
        sa.Column("seq", _SEQ, autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("identities", sa.Integer(), nullable=False),
        sa.Column("entitled", sa.Integer(), nullable=False),
        sa.Column("excessive", sa.Integer(), nullable=False),
        sa.Column("excessive_share", sa.Float(), nullable=True),
        sa.Column("rotation_governed", sa.Integer(), nullable=False),
        sa.Column("not_rotated", sa.Integer(), nullable=False),
        sa.Column("not_rotated_share", sa.Float(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
    )


def downgrade() -> None:
    op.drop_table("estate_metric_snapshots")
    op.drop_table("oauth_grants")
    op.drop_table("offboardings")
