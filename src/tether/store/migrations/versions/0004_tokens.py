"""tasks and task tokens (branch: tokens)

Revision ID: 0004
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0002"
branch_labels = ("tokens",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("identity_id", sa.String(length=200), nullable=False),
        sa.Column("identity_kind", sa.String(length=40), nullable=False),
        sa.Column("workload_class", sa.String(length=80), nullable=True),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("intent", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_by", sa.String(length=400), nullable=False),
        sa.Column("proof_id", sa.String(length=300), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.String(length=200), nullable=True),
        sa.Column("end_reason", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_tasks_identity_opened", "tasks", ["identity_id", "opened_at"])
    op.create_table(
        "issued_tokens",
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("task_id", sa.String(length=40), nullable=False),
        sa.Column("parent_jti", sa.String(length=64), nullable=True),
        sa.Column("chain", sa.JSON(), nullable=False),
        sa.Column("identity_id", sa.String(length=200), nullable=False),
        sa.Column("actor_id", sa.String(length=200), nullable=True),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("audience", sa.String(length=400), nullable=False),
        sa.Column("kid", sa.String(length=80), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_reason", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("jti"),
    )
    op.create_index("ix_issued_tokens_task", "issued_tokens", ["task_id"])
    op.create_index("ix_issued_tokens_expires", "issued_tokens", ["expires_at"])
    op.create_table(
        "revocations",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index("ix_revocations_until", "revocations", ["until"])
    version = op.create_table(
        "revocation_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(version, [{"id": 1, "version": 0}])


def downgrade() -> None:
    op.drop_table("revocation_version")
    op.drop_index("ix_revocations_until", table_name="revocations")
    op.drop_table("revocations")
    op.drop_index("ix_issued_tokens_expires", table_name="issued_tokens")
    op.drop_index("ix_issued_tokens_task", table_name="issued_tokens")
    op.drop_table("issued_tokens")
    op.drop_index("ix_tasks_identity_opened", table_name="tasks")
    op.drop_table("tasks")
