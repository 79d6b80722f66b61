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
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import JSON, Engine, String, select
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
        self._urgent = threading.Event()  # flush() and close() cut the wait short
        self._insert_sql, self._to_params = _fast_insert(engine)
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
        self._urgent.set()
        marker.wait(timeout)

    def close(self) -> None:
        """Drain the queue, commit it, and stop the writer."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._urgent.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        # Wake once per flush interval and drain everything queued, rather than waking
        # for every row: per-row wake-ups hand the GIL back and forth with the event loop.
        stopping = False
        collected_at = time.monotonic()
        while not stopping:
            backlog = not self._queue.empty()
            first = self._queue.get()  # block until there is work
            items = [first]
            # Rows that queued while the previous batch was committed have waited since
            # it was collected: their interval started then, not now.
            remaining = (collected_at if backlog else time.monotonic()) + self._interval
            remaining -= time.monotonic()
            if remaining > 0 and first is not _STOP and not isinstance(first, threading.Event):
                self._urgent.wait(remaining)
            self._urgent.clear()
            while len(items) < self._max_batch:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            collected_at = time.monotonic()
            batch: list[Mapping[str, Any]] = []
            markers: list[threading.Event] = []
            for item in items:
                if item is _STOP:
                    stopping = True
                elif isinstance(item, threading.Event):
                    markers.append(item)
                else:
                    batch.append(item)
            if stopping:
                while not self._queue.empty():
                    item = self._queue.get_nowait()
                    if isinstance(item, threading.Event):
                        markers.append(item)
                    elif item is not _STOP:
                        batch.append(item)
            self.write(batch)
            for marker in markers:
                marker.set()

    def write(self, batch: list[Mapping[str, Any]]) -> None:
        """Commit ``batch`` now, on the calling thread: the writer thread's step, also for a
        loop that batches itself (``tether.worker``'s), with retries and a one-by-one
        fallback for rows the database refuses."""
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
        # Straight to the driver's executemany: SQLAlchemy's per-row processing costs
        # more than the database does at thousands of decisions per second.
        params = [self._to_params(row) for row in rows]
        with self._engine.begin() as connection:
            connection.exec_driver_sql(self._insert_sql, params)

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


_COLUMNS = [c.name for c in decisions.columns if c.name != "seq"]
_JSON_COLUMNS = frozenset(c.name for c in decisions.columns if isinstance(c.type, JSON))
Params = tuple[Any, ...]


def _fast_insert(engine: Engine) -> tuple[str, Callable[[Mapping[str, Any]], Params]]:
    """The INSERT statement in the driver's own parameter style, and a row converter."""
    names = ", ".join(_COLUMNS)
    if engine.dialect.name == "sqlite":
        marks = ", ".join("?" for _ in _COLUMNS)

        def sqlite_params(row: Mapping[str, Any]) -> Params:
            return tuple(_sqlite_value(name, row.get(name)) for name in _COLUMNS)

        return f"INSERT INTO decisions ({names}) VALUES ({marks})", sqlite_params  # noqa: S608 - names from our own table
    marks = ", ".join("CAST(%s AS JSON)" if c in _JSON_COLUMNS else "%s" for c in _COLUMNS)

    def driver_params(row: Mapping[str, Any]) -> Params:
        return tuple(
            orjson.dumps(row.get(name)).decode() if name in _JSON_COLUMNS else row.get(name)
            for name in _COLUMNS
        )

    return f"INSERT INTO decisions ({names}) VALUES ({marks})", driver_params  # noqa: S608 - names from our own table


def _sqlite_value(name: str, value: Any) -> Any:
    if name in _JSON_COLUMNS:
        return orjson.dumps(value).decode()
    if isinstance(value, datetime):
        # The storage format SQLAlchemy's SQLite DateTime reads back (UTC, no offset).
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


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
