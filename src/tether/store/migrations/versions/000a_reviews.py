"""signed-off access reviews (branch: reviews)

Revision ID: 000a
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "000a"
down_revision = "0001"
branch_labels = ("reviews",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "access_reviews",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("signed_by", sa.String(length=200), nullable=False),
        sa.Column("scope", sa.JSON(), nullable=False),
        sa.Column("report_digest", sa.String(length=64), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_access_reviews_signed_at", "access_reviews", ["signed_at"])
    op.create_table(
        "access_review_decisions",
        sa.Column("review_id", sa.String(length=40), nullable=False),
        sa.Column("row_id", sa.String(length=1000), nullable=False),
        sa.Column("row_type", sa.String(length=80), nullable=False),
        sa.Column("identity_id", sa.String(length=200), nullable=True),
        sa.Column("decision", sa.String(length=10), nullable=False),
        sa.ForeignKeyConstraint(["review_id"], ["access_reviews.id"]),
        sa.PrimaryKeyConstraint("review_id", "row_id"),
    )


def downgrade() -> None:
    op.drop_table("access_review_decisions")
    op.drop_index("ix_access_reviews_signed_at", table_name="access_reviews")
    op.drop_table("access_reviews")
