"""Tables of tether's Shared Signals transmitter: receivers, emitted events, the outbox.

``signal_receivers`` are the configured streams: ``push`` (RFC 8935, to ``endpoint_url``,
with an optional bearer token sealed by the master key) or ``poll`` (RFC 8936, polled by
the caller ``poller``). A removed receiver keeps its row (``removed_at``) so the history
of what it was sent stays readable.

``signal_events`` holds one row per event (its ``jti``), ``signal_deliveries`` one row
per event and receiver: the outbox. A delivery is ``pending`` until it is ``delivered``
(push: 2xx; poll: acknowledged), ``failed`` (a permanent refusal, attempts exhausted, or a
poll ``setErrs`` entry) or ``cancelled`` (its receiver was removed). ``next_attempt_at``
is when it may next be sent: the backoff after a failed push, a lease while one replica
sends it, or the redelivery time of a polled but unacknowledged SET. The SET itself is
signed when it is sent, so a key rotation never strands a queued SET.
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
    UniqueConstraint,
)

from tether.store.tables import metadata

signal_receivers = Table(
    "signal_receivers",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("delivery", String(10), nullable=False),  # push | poll
    Column("endpoint_url", Text),  # push
    Column("poller", String(200)),  # poll: the caller identity that polls
    Column("audience", Text, nullable=False),  # the SETs' `aud`
    Column("events", JSON, nullable=False),  # event type URIs; [] means every type
    # AES-256-GCM(master key) of the bearer token presented to a push endpoint.
    Column("auth_token_enc", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("removed_at", DateTime(timezone=True)),
)
Index("ix_signal_receivers_poller", signal_receivers.c.poller)

signal_events = Table(
    "signal_events",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column("event_type", Text, nullable=False),
    Column("sub_id", JSON, nullable=False),
    Column("txn", Text),
    Column("payload", JSON, nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
)
Index("ix_signal_events_issued_at", signal_events.c.issued_at)

signal_deliveries = Table(
    "signal_deliveries",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("jti", String(64), nullable=False),
    Column("receiver_id", String(40), nullable=False),
    Column("status", String(12), nullable=False),  # pending | delivered | failed | cancelled
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    UniqueConstraint("jti", "receiver_id", name="uq_signal_deliveries_jti_receiver"),
)
Index(
    "ix_signal_deliveries_due",
    signal_deliveries.c.status,
    signal_deliveries.c.next_attempt_at,
)
Index("ix_signal_deliveries_receiver", signal_deliveries.c.receiver_id, signal_deliveries.c.status)
