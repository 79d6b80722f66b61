"""The store's schema (SQLAlchemy Core). Alembic migrations create exactly this.

Entitlement (what the estate approves) and observation (decisions, events) are kept
in separate tables on purpose: they are two control signals.
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
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

# --- desired state, written by `tether apply` -------------------------------------------

estate_revisions = Table(
    "estate_revisions",
    metadata,
    Column("revision", Integer, primary_key=True, autoincrement=True),
    Column("digest", String(64), nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
    Column("applied_by", String(200), nullable=False),
    Column("source", Text, nullable=False),
    Column("summary", JSON, nullable=False),
    # The compiled estate as applied: what a server loads to decide.
    Column("bundle", JSON, nullable=False),
)

identities = Table(
    "identities",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("workload_class", String(80)),
    Column("owner", String(200)),
    Column("workload", JSON),
    Column("attributes", JSON, nullable=False),
    Column("status", String(20), nullable=False, default="active"),
    # estate | discovered | runtime: apply only ever touches rows it created (estate).
    Column("origin", String(20), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True)),
)

entitlements = Table(
    "entitlements",
    metadata,
    Column("id", String(240), primary_key=True),
    Column("identity_id", String(200), nullable=False, index=True),
    Column("actions", JSON, nullable=False),
    Column("resources", JSON, nullable=False),
    Column("policy_id", String(240), nullable=False),
)

workload_classes = Table(
    "workload_classes",
    metadata,
    Column("name", String(80), primary_key=True),
    Column("mode", String(20), nullable=False),
    Column("settings", JSON, nullable=False),
)

data_classes = Table(
    "data_classes",
    metadata,
    Column("name", String(80), primary_key=True),
    Column("level", Integer, nullable=False),
)

resource_rules = Table(
    "resource_rules",
    metadata,
    Column("pattern", String(400), primary_key=True),
    Column("data_class", String(80)),
    Column("attributes", JSON, nullable=False),
)

policies = Table(
    "policies",
    metadata,
    Column("id", String(240), primary_key=True),
    Column("file", String(400), nullable=False),
    Column("line", Integer, nullable=False),
    Column("effect", String(10), nullable=False),
    Column("outcome", String(30), nullable=False),
    Column("origin", String(20), nullable=False),  # file | entitlement
    Column("text", Text, nullable=False),
)

trust_anchors = Table(
    "trust_anchors",
    metadata,
    Column("name", String(400), primary_key=True),
    Column("kind", String(20), nullable=False),  # spiffe | oidc
    Column("settings", JSON, nullable=False),
    Column("origin", String(20), nullable=False),
)

exceptions = Table(
    "exceptions",
    metadata,
    Column("id", String(80), primary_key=True),
    Column("identity_id", String(200), nullable=False),
    Column("detector", String(80), nullable=False),
    Column("resource_pattern", String(400)),
    Column("owner", String(200), nullable=False),
    Column("justification", Text, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("origin", String(20), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Severity a matching finding is lowered to; NULL suppresses it (migration 0006, drift).
    Column("downgrade_to", String(10)),
)

# --- observation: decisions and the administrative audit log -----------------------------

decisions = Table(
    "decisions",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("decision_id", String(40), nullable=False, unique=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("subject_type", String(200), nullable=False),
    Column("subject_id", String(400), nullable=False),
    Column("action", String(400), nullable=False),
    Column("resource_type", String(200), nullable=False),
    Column("resource_id", String(1000), nullable=False),
    Column("outcome", String(30), nullable=False),
    Column("decision", Boolean, nullable=False),
    Column("reasons", JSON, nullable=False),
    Column("obligations", JSON, nullable=False),
    Column("errors", JSON, nullable=False),
    Column("context", JSON, nullable=False),
    Column("request_id", String(200)),
    Column("caller", String(200)),
    Column("estate_revision", Integer),
    Column("duration_us", Integer, nullable=False),
    # The record chain (tether.store.record_chain): null only on rows older than it.
    Column("prev_hash", String(64)),
    Column("hash", String(64)),
)
Index("ix_decisions_subject_at", decisions.c.subject_id, decisions.c.at)
Index("ix_decisions_at", decisions.c.at)

audit_log = Table(
    "audit_log",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(80), nullable=False),
    Column("target", String(400), nullable=False),
    Column("details", JSON, nullable=False),
    Column("prev_hash", String(64)),
    Column("hash", String(64)),
)

# The sealed head of each record chain (`decisions`, `audit_log`): its first chained row,
# its last row and that row's hash, signed by tether's key ring.
record_chain_heads = Table(
    "record_chain_heads",
    metadata,
    Column("chain", String(40), primary_key=True),
    Column("first_seq", BigInteger),
    Column("seq", BigInteger),
    Column("hash", String(64)),
    Column("at", DateTime(timezone=True)),
    Column("signature", Text),
)
