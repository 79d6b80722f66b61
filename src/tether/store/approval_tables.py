"""Tables of human approvals for high-impact actions (decision outcome ``approval_required``).

An approval is bound to exactly one request: its subject, action and resource are kept
in plain columns (for the approver to read and for listings), and ``binding_hash`` is the
SHA-256 of the canonical request without volatile context keys
(``tether.approvals.binding_hash``). ``status`` is what a human decided (``pending``,
``approved``, ``denied``); expiry and use are derived from ``expires_at`` and
``used_at``. ``used_at`` is set once, by a compare-and-set ``UPDATE ... WHERE used_at IS
NULL``, which is what makes an approval single use on both backends.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, Index, String, Table, Text

from tether.store.tables import metadata

approvals = Table(
    "approvals",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("status", String(20), nullable=False),  # pending | approved | denied
    Column("subject_type", String(200), nullable=False),
    Column("subject_id", String(400), nullable=False),
    Column("action", String(400), nullable=False),
    Column("resource_type", String(200), nullable=False),
    Column("resource_id", String(1000), nullable=False),
    # The request as it was bound (context without volatile keys): what the approver sees.
    Column("request", JSON, nullable=False),
    Column("binding_hash", String(64), nullable=False),
    # The policies that asked for approval.
    Column("reasons", JSON, nullable=False),
    # The identity of the caller (PEP) whose request created it, and that decision.
    Column("requested_by", String(200), nullable=False),
    Column("decision_id", String(40), nullable=False),
    # Everyone who may not decide it: subject, requester, the subject's owner.
    Column("parties", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("decided_at", DateTime(timezone=True)),
    Column("decided_by", String(200)),
    Column("comment", Text),
    Column("used_at", DateTime(timezone=True)),
    Column("used_decision_id", String(40)),
)
Index("ix_approvals_status_created", approvals.c.status, approvals.c.created_at)
Index("ix_approvals_requested_by", approvals.c.requested_by)
