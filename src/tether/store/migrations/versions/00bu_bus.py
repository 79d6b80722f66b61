"""event bus: what drift workers examined, by event hash (branch: bus)

Revision ID: 00bu
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "00bu"
down_revision = "0001"
branch_labels = ("bus",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bus_examined",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("event_hash", sa.String(length=64), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("stream_seq", sa.BigInteger(), nullable=False),
        sa.Column("worker", sa.String(length=80), nullable=False),
        sa.Column("examined_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("event_hash"),
    )
    op.create_index("ix_bus_examined_partition_seq", "bus_examined", ["partition", "seq"])


def downgrade() -> None:
    op.drop_index("ix_bus_examined_partition_seq", table_name="bus_examined")
    op.drop_table("bus_examined")
