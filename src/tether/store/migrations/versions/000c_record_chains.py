"""record chains: decisions and the admin audit log hash-chained, sealed heads (branch: records)

Revision ID: 000c
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "000c"
down_revision = "0001"
branch_labels = ("records",)
depends_on = None


def upgrade() -> None:
    for table in ("decisions", "audit_log"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
            batch.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
    heads = op.create_table(
        "record_chain_heads",
        sa.Column("chain", sa.String(length=40), nullable=False),
        sa.Column("first_seq", sa.BigInteger(), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.Column("hash", sa.String(length=64), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("signature", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("chain"),
    )
    op.bulk_insert(heads, [{"chain": "decisions"}, {"chain": "audit_log"}])


def downgrade() -> None:
    op.drop_table("record_chain_heads")
    for table in ("audit_log", "decisions"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("hash")
            batch.drop_column("prev_hash")
