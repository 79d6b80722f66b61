"""events by task, for access paths (branch: paths)

Revision ID: 0009
Revises: 0005 (the events table)
"""

from alembic import op

revision = "0009"
down_revision = "0005"
branch_labels = ("paths",)
depends_on = None


def upgrade() -> None:
    # A path reads every event of the identity's tasks, whoever acted in them (a
    # sub-agent's calls are attributed to the sub-agent): by task, in time order.
    op.create_index("ix_events_task_at", "events", ["task_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_events_task_at", table_name="events")
