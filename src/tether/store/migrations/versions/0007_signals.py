"""shared signals transmitter: receivers, events and the delivery outbox (branch: signals)

Revision ID: 0007
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0001"
branch_labels = ("signals",)
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "signal_receivers",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("delivery", sa.String(length=10), nullable=False),
        sa.Column("endpoint_url", sa.Text(), nullable=True),
        sa.Column("poller", sa.String(length=200), nullable=True),
        sa.Column("audience", sa.Text(), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("auth_token_enc", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_signal_receivers_poller", "signal_receivers", ["poller"])
    op.create_table(
        "signal_events",
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("sub_id", sa.JSON(), nullable=False),
        sa.Column("txn", sa.Text(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("jti"),
    )
    op.create_index("ix_signal_events_issued_at", "signal_events", ["issued_at"])
    op.create_table(
        "signal_deliveries",
        sa.Column("id", _SEQ, autoincrement=True, nullable=False),
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("receiver_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("jti", "receiver_id", name="uq_signal_deliveries_jti_receiver"),
    )
    op.create_index("ix_signal_deliveries_due", "signal_deliveries", ["status", "next_attempt_at"])
    op.create_index("ix_signal_deliveries_receiver", "signal_deliveries", ["receiver_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_signal_deliveries_receiver", table_name="signal_deliveries")
    op.drop_index("ix_signal_deliveries_due", table_name="signal_deliveries")
    op.drop_table("signal_deliveries")
    op.drop_index("ix_signal_events_issued_at", table_name="signal_events")
    op.drop_table("signal_events")
    op.drop_index("ix_signal_receivers_poller", table_name="signal_receivers")
    op.drop_table("signal_receivers")
