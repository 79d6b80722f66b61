"""findings awaiting their live response, found by an index on `response` (branch: responses)

A live finding that calls for a response is stored as `pending` and its response replaces
that once carried out, so a process that dies in between leaves a row another finds.

Revision ID: 00fr
Revises: 0006
"""

from alembic import op

revision = "00fr"
down_revision = "0006"
branch_labels = ("responses",)
depends_on = None


def upgrade() -> None:
    op.create_index("ix_findings_response", "findings", ["response"])


def downgrade() -> None:
    op.drop_index("ix_findings_response", table_name="findings")
