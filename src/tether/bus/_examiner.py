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

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from tether.bus._stream import BusMessage
from tether.drift.engine import DriftEngine
from tether.store.bus_tables import bus_examined

_IN_CHUNK = 1_000
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
        seen = self._already_examined([m.hash for _, m in batch])
        fresh: list[tuple[int, BusMessage]] = []
        for stream_seq, message in batch:
            if message.hash not in seen:
                seen.add(message.hash)
                fresh.append((stream_seq, message))
        self.duplicates += len(batch) - len(fresh)
        if not fresh:
            return 0
        self.findings += len(self._drift.examine([(m.kind, m.row) for _, m in fresh]))
        now = datetime.now(UTC)
        rows = [
            {
                "event_hash": m.hash,
                "partition": partition,
                "stream_seq": stream_seq,
                "worker": self._worker,
                "examined_at": now,
            }
            for stream_seq, m in fresh
        ]
        insert: Any = (postgresql if self._store.dialect.name == "postgresql" else sqlite).insert
        with self._store.begin() as connection:
            connection.execute(
                insert(bus_examined).on_conflict_do_nothing(index_elements=["event_hash"]), rows
            )
        self.examined += len(fresh)
        return len(fresh)

    def _already_examined(self, hashes: list[str]) -> set[str]:
        found: set[str] = set()
        with self._store.connect() as connection:
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
