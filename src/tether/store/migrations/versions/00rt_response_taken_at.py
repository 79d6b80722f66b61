"""when a process took over an owed response, so a second crash does not strand it

A finding taken over (`recovering`) whose new process dies too is owed again once
`response_taken_at` is older than the take-over bound.

Revision ID: 00rt
Revises: 00fr
"""

import sqlalchemy as sa
from alembic import op

revision = "00rt"
down_revision = "00fr"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "findings", sa.Column("response_taken_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("findings") as batch:
        batch.drop_column("response_taken_at")
