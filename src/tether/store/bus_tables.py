"""The event bus's record of what drift workers examined (``tether.bus``).

``bus_examined`` holds the hash of every bus event a drift worker examined, written after
the event's findings were committed and before the event is acknowledged on the stream:
a redelivered event (a worker killed between commit and ack, a partition taken over) is
recognised by its hash and not examined again. ``seq`` numbers rows in the order they were
written, so one partition's order of examination can be read back (the tests do).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, String, Table

from tether.store.tables import metadata

bus_examined = Table(
    "bus_examined",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("event_hash", String(64), nullable=False, unique=True),
    Column("partition", Integer, nullable=False),
    # The event's sequence number in the JetStream stream.
    Column("stream_seq", BigInteger, nullable=False),
    Column("worker", String(80), nullable=False),
    Column("examined_at", DateTime(timezone=True), nullable=False),
)
Index("ix_bus_examined_partition_seq", bus_examined.c.partition, bus_examined.c.seq)
