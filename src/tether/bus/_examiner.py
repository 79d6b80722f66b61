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

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from tether.bus._stream import BusMessage
from tether.drift.engine import DriftEngine
from tether.store.bus_tables import bus_examined

_IN_CHUNK = 1_000


class Examiner:
    """One worker's detection step; call from one thread."""

    def __init__(self, store: Engine, drift: DriftEngine, *, worker: str) -> None:
        self._store = store
        self._drift = drift
        self._worker = worker
        self.examined = 0
        self.duplicates = 0
        self.findings = 0

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
