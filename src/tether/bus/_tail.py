"""Stored events onto the bus: the server follows the ``events`` table by sequence number.

Events reach the store from ``POST /v1/events`` and from ``tether ingest`` in any
process, exactly as the embedded drift engine reads them; :class:`EventsTail` reads what
was committed after the last sequence number it saw (from the newest at start), and the
numbers it jumped over that commit late (:class:`~tether.store.seq_cursor.SeqCursor`),
every 100 ms and hands the rows to the publisher. Several replicas tailing one store publish
the same events: the stream drops the copies by message id (the event hash) within its
duplicate window, and the workers' ``bus_examined`` table catches any later copy.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Engine, func, select

from tether.bus._publisher import EventPublisher
from tether.bus._stream import event_row
from tether.store.seq_cursor import SeqCursor
from tether.store.telemetry_tables import events

log = logging.getLogger(__name__)

POLL_S = 0.1
LIMIT = 5_000


class EventsTail:
    """A thread publishing every event stored after it started."""

    def __init__(self, store: Engine, publisher: EventPublisher) -> None:
        self._store = store
        self._publisher = publisher
        self._cursor = SeqCursor()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._store.connect() as connection:
            newest = int(connection.execute(select(func.max(events.c.seq))).scalar() or 0)
        self._cursor = SeqCursor(newest)
        self._thread = threading.Thread(target=self._run, name="tether-bus-tail", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.poll()  # what was committed before the stop

    def poll(self) -> int:
        """Publish the events stored since the last poll; how many."""
        unread = self._cursor.unread(events.c.seq)
        query = select(events).where(unread).order_by(events.c.seq)
        with self._store.connect() as connection:
            rows = connection.execute(query.limit(LIMIT)).mappings().all()
        for row in rows:
            self._publisher.submit_event(event_row(dict(row)))
        self._cursor.advance(int(row["seq"]) for row in rows)
        return len(rows)

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            try:
                while self.poll() == LIMIT:
                    pass
            except Exception:
                log.exception("reading stored events for the bus failed; trying again")
