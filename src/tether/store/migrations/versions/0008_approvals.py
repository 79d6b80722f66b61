"""human approvals for high-impact actions (branch: approvals)

Revision ID: 0008
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0001"
branch_labels = ("approvals",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "approvals",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("subject_type", sa.String(length=200), nullable=False),
        sa.Column("subject_id", sa.String(length=400), nullable=False),
        sa.Column("action", sa.String(length=400), nullable=False),
        sa.Column("resource_type", sa.String(length=200), nullable=False),
        sa.Column("resource_id", sa.String(length=1000), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("binding_hash", sa.String(length=64), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("decision_id", sa.String(length=40), nullable=False),
        sa.Column("parties", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("used_decision_id", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_approvals_status_created", "approvals", ["status", "created_at"])
    op.create_index("ix_approvals_requested_by", "approvals", ["requested_by"])


def downgrade() -> None:
    op.drop_index("ix_approvals_requested_by", table_name="approvals")
    op.drop_index("ix_approvals_status_created", table_name="approvals")
    op.drop_table("approvals")
