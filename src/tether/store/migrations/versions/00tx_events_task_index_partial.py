"""events by task: index only the events that belong to a task

``ix_events_task_at`` serves one query, the events of some tasks (``task_id IN (...)``),
which SQLite and PostgreSQL both answer from an index holding only rows with a task. Cloud
audit events never carry one, so the full index took a write per stored event for nothing.

Revision ID: 00tx
Revises: 0009 (the index)
"""

import sqlalchemy as sa
from alembic import op

revision = "00tx"
down_revision = "0009"
branch_labels = None
depends_on = None

_WITH_TASK = sa.text("task_id IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_events_task_at", table_name="events")
    op.create_index(
        "ix_events_task_at",
        "events",
        ["task_id", "at"],
        sqlite_where=_WITH_TASK,
        postgresql_where=_WITH_TASK,
    )


def downgrade() -> None:
    op.drop_index("ix_events_task_at", table_name="events")
    op.create_index("ix_events_task_at", "events", ["task_id", "at"])
