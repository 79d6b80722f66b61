"""drift findings, baselines and exception uses (branch: drift)

Revision ID: 0006
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0001"
branch_labels = ("drift",)
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "findings",
        sa.Column("finding_id", sa.String(length=40), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("identity_id", sa.String(length=200), nullable=False),
        sa.Column("task_id", sa.String(length=40), nullable=True),
        sa.Column("detector", sa.String(length=80), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("deviation", sa.Float(), nullable=False),
        sa.Column("sensitivity", sa.Float(), nullable=False),
        sa.Column("blast_radius", sa.Float(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("resource", sa.Text(), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("frameworks", sa.JSON(), nullable=False),
        sa.Column("mode", sa.String(length=10), nullable=False),
        sa.Column("suppressed_by", sa.String(length=80), nullable=True),
        sa.Column("downgraded_from", sa.String(length=10), nullable=True),
        sa.Column("response", sa.String(length=20), nullable=True),
        sa.PrimaryKeyConstraint("finding_id"),
    )
    op.create_index("ix_findings_identity_at", "findings", ["identity_id", "at"])
    op.create_index("ix_findings_at", "findings", ["at"])
    op.create_table(
        "drift_baselines",
        sa.Column("identity_id", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("observations", sa.Integer(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("identity_id", "version"),
    )
    op.create_table(
        "exception_uses",
        sa.Column("seq", _SEQ, autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("exception_id", sa.String(length=80), nullable=False),
        sa.Column("finding_id", sa.String(length=40), nullable=False),
        sa.Column("identity_id", sa.String(length=200), nullable=False),
        sa.Column("effect", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index("ix_exception_uses_exception", "exception_uses", ["exception_id"])
    with op.batch_alter_table("exceptions") as batch:
        batch.add_column(sa.Column("downgrade_to", sa.String(length=10), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("exceptions") as batch:
        batch.drop_column("downgrade_to")
    op.drop_index("ix_exception_uses_exception", table_name="exception_uses")
    op.drop_table("exception_uses")
    op.drop_table("drift_baselines")
    op.drop_index("ix_findings_at", table_name="findings")
    op.drop_index("ix_findings_identity_at", table_name="findings")
    op.drop_table("findings")
