"""Tables of signed-off access reviews (branch: reviews).

``access_reviews`` keeps one row per sign-off: who signed, when, the scope reviewed,
the SHA-256 digest of the report as it was signed and the report itself (evidence);
``access_review_decisions`` keeps the per-row decisions (``keep`` or ``revoke``).
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, ForeignKey, Index, String, Table, Text

from tether.store.tables import metadata

access_reviews = Table(
    "access_reviews",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("signed_at", DateTime(timezone=True), nullable=False),
    Column("signed_by", String(200), nullable=False),
    Column("scope", JSON, nullable=False),
    Column("report_digest", String(64), nullable=False),
    Column("summary", JSON, nullable=False),
    Column("note", Text, nullable=False),
    Column("report", JSON, nullable=False),
)
Index("ix_access_reviews_signed_at", access_reviews.c.signed_at)

access_review_decisions = Table(
    "access_review_decisions",
    metadata,
    Column("review_id", String(40), ForeignKey("access_reviews.id"), primary_key=True),
    Column("row_id", String(1000), primary_key=True),
    Column("row_type", String(80), nullable=False),
    Column("identity_id", String(200)),
    Column("decision", String(10), nullable=False),  # keep | revoke
)
