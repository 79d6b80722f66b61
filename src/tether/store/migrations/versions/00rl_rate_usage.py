"""rate limits across replicas: requests admitted per caller, replica and second (branch: rates)

Revision ID: 00rl
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "00rl"
down_revision = "0001"
branch_labels = ("rates",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_usage",
        sa.Column("caller_key", sa.String(length=400), nullable=False),
        sa.Column("replica", sa.String(length=40), nullable=False),
        sa.Column("window_s", sa.BigInteger(), nullable=False),
        sa.Column("admitted", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("caller_key", "replica", "window_s"),
    )
    op.create_index("ix_rate_usage_window", "rate_usage", ["window_s"])


def downgrade() -> None:
    op.drop_index("ix_rate_usage_window", table_name="rate_usage")
    op.drop_table("rate_usage")
