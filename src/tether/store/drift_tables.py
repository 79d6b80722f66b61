"""Tables of drift detection: findings, learned baselines and uses of exceptions.

``findings`` holds every scored deviation (suppressed ones too, with the exception that
suppressed them) and the response taken. ``drift_baselines`` keeps every version of an
identity's learned baseline (a rebuild adds a version; detectors use the latest).
``exception_uses`` logs each time an exception suppressed or downgraded a finding.
``drift_positions`` holds how far live detection has examined the stored events, so that a
restarted server resumes there (events stored while no server ran are examined too).
The exceptions themselves live in the core ``exceptions`` table (estate and CLI).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from tether.store.tables import metadata

findings = Table(
    "findings",
    metadata,
    Column("finding_id", String(40), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("identity_id", String(200), nullable=False),
    Column("task_id", String(40)),
    Column("detector", String(80), nullable=False),
    Column("severity", String(10), nullable=False),
    Column("score", Float, nullable=False),
    Column("deviation", Float, nullable=False),
    Column("sensitivity", Float, nullable=False),
    Column("blast_radius", Float, nullable=False),
    Column("reason", Text, nullable=False),
    Column("resource", Text),
    Column("evidence", JSON, nullable=False),
    Column("details", JSON, nullable=False),
    Column("frameworks", JSON, nullable=False),
    Column("mode", String(10), nullable=False),
    Column("suppressed_by", String(80)),
    Column("downgraded_from", String(10)),
    Column("response", String(20)),
    Column("response_taken_at", DateTime(timezone=True)),  # set when `recovering`
)
Index("ix_findings_identity_at", findings.c.identity_id, findings.c.at)
Index("ix_findings_at", findings.c.at)
Index("ix_findings_response", findings.c.response)  # `pending`: a response still owed

drift_baselines = Table(
    "drift_baselines",
    metadata,
    Column("identity_id", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("built_at", DateTime(timezone=True), nullable=False),
    Column("window_start", DateTime(timezone=True), nullable=False),
    Column("window_end", DateTime(timezone=True), nullable=False),
    Column("observations", Integer, nullable=False),
    Column("data", JSON, nullable=False),
    PrimaryKeyConstraint("identity_id", "version"),
)

exception_uses = Table(
    "exception_uses",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("exception_id", String(80), nullable=False),
    Column("finding_id", String(40), nullable=False),
    Column("identity_id", String(200), nullable=False),
    Column("effect", String(20), nullable=False),  # suppress | downgrade
)
Index("ix_exception_uses_exception", exception_uses.c.exception_id)

drift_positions = Table(
    "drift_positions",
    metadata,
    Column("reader", String(40), primary_key=True),  # `live`: the server's live tail
    # Every stored event up to this sequence number has been examined.
    Column("seq", BigInteger, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)
