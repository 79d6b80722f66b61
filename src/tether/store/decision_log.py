"""The batching decision writer: no commit per request, nothing acknowledged is lost.

Request handlers hand a finished row to :meth:`DecisionLog.record` (a queue append,
no I/O). A single writer thread commits everything queued every
``flush_interval_ms`` in one transaction. Guarantees:

* clean shutdown (:meth:`close`, called on SIGTERM) drains the queue: no loss;
* a crash (SIGKILL) loses at most the rows recorded in the last flush interval
  (default 50 ms) plus the transaction being committed at that instant;
* a row the database refuses (a NUL byte, an over-long id on PostgreSQL) is stored
  adjusted, one by one, without losing the rest of its batch.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, String, insert, select
from sqlalchemy.exc import DataError, IntegrityError

from tether.store.tables import decisions

log = logging.getLogger(__name__)

_STOP = object()


class DecisionLog:
    """Background writer of decision rows (dicts with the columns of ``decisions``)."""

    def __init__(
        self, engine: Engine, *, flush_interval_ms: int = 50, max_batch: int = 5000
    ) -> None:
        self._engine = engine
        self._interval = flush_interval_ms / 1000
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._written = 0
        self._failed = 0
        self._flushed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="tether-decision-log", daemon=True)
        self._closed = False
        self._thread.start()

    @property
    def written(self) -> int:
        return self._written

    @property
    def failed(self) -> int:
        return self._failed

    def record(self, row: Mapping[str, Any]) -> None:
        """Queue one decision row; it is committed within the flush interval."""
        self._queue.put(row)

    def flush(self, timeout: float = 10.0) -> None:
        """Block until everything recorded before this call is committed."""
        marker = threading.Event()
        self._queue.put(marker)
        marker.wait(timeout)

    def close(self) -> None:
        """Drain the queue, commit it, and stop the writer."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        stopping = False
        collected_at = time.monotonic()
        while not stopping:
            batch: list[Mapping[str, Any]] = []
            markers: list[threading.Event] = []
            backlog = not self._queue.empty()
            first = self._queue.get()  # block until there is work
            # Rows that queued up while the previous batch was being written have waited
            # since it was collected: their interval started then, not now.
            deadline = (collected_at if backlog else time.monotonic()) + self._interval
            items = [first]
            while (
                len(items) < self._max_batch
                and items[-1] is not _STOP
                and not isinstance(items[-1], threading.Event)
            ):
                timeout = deadline - time.monotonic()
                if timeout <= 0 and not self._queue.empty():
                    items.append(self._queue.get_nowait())
                    continue
                if timeout <= 0:
                    break
                try:
                    items.append(self._queue.get(timeout=timeout))
                except queue.Empty:
                    break
            for item in items:
                if item is _STOP:
                    stopping = True
                elif isinstance(item, threading.Event):
                    markers.append(item)
                else:
                    batch.append(item)
            collected_at = time.monotonic()
            if stopping:
                while not self._queue.empty():
                    item = self._queue.get_nowait()
                    if isinstance(item, threading.Event):
                        markers.append(item)
                    elif item is not _STOP:
                        batch.append(item)
            self._write(batch)
            for marker in markers:
                marker.set()

    def _write(self, batch: list[Mapping[str, Any]]) -> None:
        if not batch:
            return
        for attempt in range(3):
            try:
                self._insert(batch)
                self._written += len(batch)
                return
            except (DataError, IntegrityError):
                # A row the database refuses must not take the rest of its batch with it.
                self._write_one_by_one(batch)
                return
            except Exception:  # the writer must survive a transient database error
                log.exception(
                    "writing %d decision events failed (attempt %d)", len(batch), attempt + 1
                )
                time.sleep(0.05 * (attempt + 1))
        self._failed += len(batch)

    def _insert(self, rows: list[Mapping[str, Any]]) -> None:
        with self._engine.begin() as connection:
            connection.execute(insert(decisions), rows)

    def _write_one_by_one(self, batch: list[Mapping[str, Any]]) -> None:
        for row in batch:
            try:
                self._insert([row])
            except IntegrityError:
                if self._is_stored(row["decision_id"]):
                    continue  # a retried commit had already stored it
                self._write_storable(row)
            except DataError:
                self._write_storable(row)
            except Exception:
                log.exception("writing decision event %s failed", row.get("decision_id"))
                self._failed += 1
            else:
                self._written += 1

    def _write_storable(self, row: Mapping[str, Any]) -> None:
        """Store a row the database refused as is (NUL bytes, over-long values), adjusted."""
        try:
            self._insert([_storable(row)])
        except Exception:
            log.exception("decision event %s cannot be stored", row.get("decision_id"))
            self._failed += 1
        else:
            self._written += 1

    def _is_stored(self, decision_id: Any) -> bool:
        with self._engine.connect() as connection:
            found = connection.execute(
                select(decisions.c.seq).where(decisions.c.decision_id == decision_id)
            ).first()
        return found is not None


_STRING_LENGTHS = {
    column.name: column.type.length
    for column in decisions.columns
    if isinstance(column.type, String) and column.type.length
}


def _storable(row: Mapping[str, Any]) -> dict[str, Any]:
    """Strip NUL characters and cut strings to their column's length."""
    fixed = dict(row)
    for name, length in _STRING_LENGTHS.items():
        value = fixed.get(name)
        if isinstance(value, str):
            fixed[name] = value.replace("\x00", "")[:length]
    return fixed
