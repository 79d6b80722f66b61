"""dashboard sessions and OIDC sign-in flows, by the hash of their id, sealed with a key of
that id (branch: dashboard)

Revision ID: 00ds
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "00ds"
down_revision = "0001"
branch_labels = ("dashboard",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dashboard_sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("person", sa.String(length=400), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id_hash"),
    )
    op.create_index("ix_dashboard_sessions_person", "dashboard_sessions", ["person", "opened_at"])
    op.create_index("ix_dashboard_sessions_expires", "dashboard_sessions", ["expires_at"])
    op.create_table(
        "dashboard_signin_flows",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id_hash"),
    )
    op.create_index("ix_dashboard_signin_flows_expires", "dashboard_signin_flows", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_dashboard_signin_flows_expires", table_name="dashboard_signin_flows")
    op.drop_table("dashboard_signin_flows")
    op.drop_index("ix_dashboard_sessions_expires", table_name="dashboard_sessions")
    op.drop_index("ix_dashboard_sessions_person", table_name="dashboard_sessions")
    op.drop_table("dashboard_sessions")
