"""Examining a batch of bus events once: dedupe by event hash, detect, record.

At least once in, once out: the stream may deliver an event again (a worker killed after
committing its findings but before acknowledging, a partition taken over while a batch was
in flight). :class:`Examiner` leaves out the events whose hash ``bus_examined`` already
holds (and repeats within the batch), hands the rest to the drift engine in stream order,
and records their hashes after the findings were committed. Finding ids are stable
(identity, detector, observed event), so even an event examined twice by two workers at
once stores each finding once; ``bus_examined`` keeps one row per hash (unique).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, func, select, text
from sqlalchemy.dialects import sqlite

from tether.bus._stream import BusMessage
from tether.drift.engine import DriftEngine
from tether.store.bus_tables import bus_examined

_IN_CHUNK = 1_000
# One array parameter, not one parameter a hash: the statement is the same for any batch.
_EXAMINED_POSTGRES = text(
    "SELECT event_hash FROM bus_examined WHERE event_hash = ANY(CAST(:hashes AS varchar[]))"
)
_RECORD_POSTGRES = text(
    "INSERT INTO bus_examined (event_hash, partition, stream_seq, worker, examined_at) "
    "SELECT h, p, s, :worker, :now FROM unnest("
    "CAST(:hashes AS varchar[]), CAST(:partitions AS integer[]), CAST(:seqs AS bigint[])"
    ") WITH ORDINALITY AS examined(h, p, s, n) ORDER BY n "
    "ON CONFLICT (event_hash) DO NOTHING"
)
#: How long an examined event's hash is kept. A message comes again only while it is not
#: acknowledged (the consumers' ack wait, 2 s; a takeover, seconds) or when a server
#: publishes it again within the stream's duplicate window (2 min): a day is far past both.
EXAMINED_KEPT = timedelta(days=1)
_PRUNE_CHUNK = 10_000


def prune_examined(store: Engine, before: datetime) -> int:
    """Delete the hashes of events examined before ``before``; how many.

    Rows are written in ``seq`` order as they are examined, so the old ones are the first:
    each round deletes a range of the primary key (no index on the time needed), at most
    :data:`_PRUNE_CHUNK` rows a transaction, until the oldest row left is newer."""
    deleted = 0
    while True:
        with store.begin() as connection:
            first = connection.execute(select(func.min(bus_examined.c.seq))).scalar()
            if first is None:
                return deleted
            gone = connection.execute(
                delete(bus_examined).where(
                    bus_examined.c.seq < first + _PRUNE_CHUNK,
                    bus_examined.c.examined_at < before,
                )
            ).rowcount
        deleted += gone
        if gone == 0:
            return deleted


class Examiner:
    """One worker's detection step; call from one thread."""

    def __init__(self, store: Engine, drift: DriftEngine, *, worker: str) -> None:
        self._store = store
        self._drift = drift
        self._worker = worker
        self.examined = 0
        self.duplicates = 0
        self.findings = 0

    @property
    def store(self) -> Engine:
        return self._store

    def restore(self, identity_id: str, record: Mapping[str, Any]) -> None:
        """Take over an identity's drift record from the worker that held it before."""
        self._drift.board.restore(identity_id, record)

    @property
    def board(self) -> Mapping[str, Mapping[str, Any]]:
        """The drift records the engine keeps (``context.tether.behaviour`` by identity)."""
        return self._drift.board.cedar

    def examine(self, partition: int, batch: Sequence[tuple[int, BusMessage]]) -> int:
        """Examine the events of ``batch`` (stream sequence, message) not examined before;
        how many were examined now."""
        return self.examine_partitions([(partition, batch)])

    def examine_partitions(
        self, batches: Sequence[tuple[int, Sequence[tuple[int, BusMessage]]]]
    ) -> int:
        """Examine the batches of several partitions (``(partition, batch)``) at once: one
        dedupe lookup, one detection step, one write of their hashes. Partitions hold
        disjoint identities, so each identity's events stay in stream order."""
        seen = self._already_examined([m.hash for _, batch in batches for _, m in batch])
        fresh: list[tuple[int, int, BusMessage]] = []
        offered = 0
        for partition, batch in batches:
            offered += len(batch)
            for stream_seq, message in batch:
                if message.hash not in seen:
                    seen.add(message.hash)
                    fresh.append((partition, stream_seq, message))
        self.duplicates += offered - len(fresh)
        if not fresh:
            return 0
        self.findings += len(self._drift.examine([(m.kind, m.row) for _, _, m in fresh]))
        self._record(fresh, datetime.now(UTC))
        self.examined += len(fresh)
        return len(fresh)

    def _record(self, fresh: list[tuple[int, int, BusMessage]], now: datetime) -> None:
        """The hashes of ``fresh`` into ``bus_examined``, in the order examined. On
        PostgreSQL one statement over arrays (``unnest``): a row a bound parameter set
        through SQLAlchemy's executemany cost more than the detection step."""
        with self._store.begin() as connection:
            if self._store.dialect.name == "postgresql":
                connection.execute(
                    _RECORD_POSTGRES,
                    {
                        "hashes": [m.hash for _, _, m in fresh],
                        "partitions": [p for p, _, _ in fresh],
                        "seqs": [s for _, s, _ in fresh],
                        "worker": self._worker,
                        "now": now,
                    },
                )
                return
            rows = [
                {
                    "event_hash": m.hash,
                    "partition": partition,
                    "stream_seq": stream_seq,
                    "worker": self._worker,
                    "examined_at": now,
                }
                for partition, stream_seq, m in fresh
            ]
            connection.execute(
                sqlite.insert(bus_examined).on_conflict_do_nothing(index_elements=["event_hash"]),
                rows,
            )

    def _already_examined(self, hashes: list[str]) -> set[str]:
        with self._store.connect() as connection:
            if self._store.dialect.name == "postgresql":
                return set(connection.execute(_EXAMINED_POSTGRES, {"hashes": hashes}).scalars())
            found: set[str] = set()
            for start in range(0, len(hashes), _IN_CHUNK):
                chunk = hashes[start : start + _IN_CHUNK]
                found.update(
                    connection.execute(
                        select(bus_examined.c.event_hash).where(
                            bus_examined.c.event_hash.in_(chunk)
                        )
                    ).scalars()
                )
        return found
