"""Tables of tasks and the task tokens issued for them (JIT task credentials).

A task is what a workload declared it is about to do (purpose and intent) for a bounded
time; every token issued for it is recorded by ``jti`` (never the token itself) with its
place in the delegation chain. ``revocations`` lists what stopped being valid before it
expired, and ``revocation_version`` is one counter bumped in the same transaction: a
server compares it with the value it last saw to learn, with one cheap read per decision,
that its in-memory revoked set is stale.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from tether.store.tables import metadata

tasks = Table(
    "tasks",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("identity_id", String(200), nullable=False),
    Column("identity_kind", String(40), nullable=False),
    Column("workload_class", String(80)),
    Column("purpose", Text, nullable=False),
    # {"actions": [...], "resources": [patterns], "data_classes": [...]}
    Column("intent", JSON, nullable=False),
    Column("status", String(20), nullable=False),  # open | ended
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    # Who opened it: the workload's SPIFFE ID or issuer and subject, or `cli`.
    Column("opened_by", String(400), nullable=False),
    Column("proof_id", String(300)),  # jti or hash prefix of the workload proof
    Column("ended_at", DateTime(timezone=True)),
    Column("ended_by", String(200)),
    Column("end_reason", String(200)),
)
Index("ix_tasks_identity_opened", tasks.c.identity_id, tasks.c.opened_at)

issued_tokens = Table(
    "issued_tokens",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column("task_id", String(40), nullable=False),
    Column("parent_jti", String(64)),
    # The jtis of every ancestor, root first: revoking one revokes what descends from it.
    Column("chain", JSON, nullable=False),
    Column("identity_id", String(200), nullable=False),
    Column("actor_id", String(200)),  # the acting identity of a delegated token
    Column("depth", Integer, nullable=False),
    Column("scope", Text, nullable=False),
    Column("audience", String(400), nullable=False),
    Column("kid", String(80), nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("revoked_reason", String(200)),
)
Index("ix_issued_tokens_task", issued_tokens.c.task_id)
Index("ix_issued_tokens_expires", issued_tokens.c.expires_at)

revocations = Table(
    "revocations",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("kind", String(10), nullable=False),  # token | task
    Column("target", String(64), nullable=False),  # a jti or a task id
    Column("at", DateTime(timezone=True), nullable=False),
    # After this moment the target would be refused anyway (it expired): forget it.
    Column("until", DateTime(timezone=True), nullable=False),
    Column("reason", String(200), nullable=False),
    Column("actor", String(200), nullable=False),
)
Index("ix_revocations_until", revocations.c.until)

revocation_version = Table(
    "revocation_version",
    metadata,
    Column("id", Integer, primary_key=True),  # always 1
    Column("version", BigInteger, nullable=False),
)
