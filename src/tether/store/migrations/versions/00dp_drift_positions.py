"""how far live detection has examined the stored events, so a restart resumes there

Revision ID: 00dp
Revises: 00rt
"""

import sqlalchemy as sa
from alembic import op

revision = "00dp"
down_revision = "00rt"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drift_positions",
        sa.Column("reader", sa.String(40), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("drift_positions")
