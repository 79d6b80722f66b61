"""Tables of observed access (telemetry events) and of the audit chain's signed checkpoints.

``events`` is append-only and hash-chained: each row carries the hash of the row before
it (``prev_hash``) and its own ``hash`` = SHA-256(prev_hash || canonical row), computed by
the single chain writer (:mod:`tether.telemetry.store`). ``audit_checkpoints`` records the
chain head every N events, signed with tether's key ring (JWS ``tether-checkpoint+jwt``);
``kind = pruned`` marks where retention pruning cut the chain. ``event_chain_lock`` is one
row the writer locks (``SELECT ... FOR UPDATE`` on PostgreSQL) so chain appends never
interleave.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from tether.store.tables import metadata

events = Table(
    "events",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("dedupe_key", String(64), nullable=False, unique=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("at_is_ingest_time", Boolean, nullable=False),
    Column("source", String(40), nullable=False),
    Column("source_event_id", Text),
    Column("principal_kind", String(80), nullable=False),
    Column("principal_key", Text, nullable=False),
    Column("identity_id", String(200)),
    Column("task_id", Text),
    Column("token_id", Text),
    Column("action", Text, nullable=False),
    Column("resource", Text),
    Column("resource_type", Text),
    Column("data_class", String(80)),
    Column("outcome", String(10), nullable=False),
    Column("decision_id", Text),
    Column("tool_name", Text),
    Column("call_id", Text),
    Column("parent_call_id", Text),
    Column("source_ip", Text),
    Column("region", Text),
    Column("user_agent", Text),
    Column("records", BigInteger),
    Column("bytes", BigInteger),
    Column("raw", JSON, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)
Index("ix_events_identity_at", events.c.identity_id, events.c.at)
# Access paths (0009), of the events that belong to a task only (00tx): cloud audit events
# have none, and `task_id IN (...)` is answered from the partial index on both backends.
Index(
    "ix_events_task_at",
    events.c.task_id,
    events.c.at,
    sqlite_where=events.c.task_id.is_not(None),
    postgresql_where=events.c.task_id.is_not(None),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("last_event_seq", BigInteger, nullable=False),
    Column("last_hash", String(64), nullable=False),
    Column("kind", String(20), nullable=False),  # checkpoint | pruned
    Column("signature", Text, nullable=False),
)

event_chain_lock = Table(
    "event_chain_lock",
    metadata,
    Column("id", Integer, primary_key=True),  # always 1
)
