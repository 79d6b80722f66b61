"""The batching decision writer: no commit per request, no row can cost another its place.

Request handlers hand a finished row to :meth:`DecisionLog.record` (a queue append,
no I/O). A single writer thread commits everything queued every
``flush_interval_ms`` in one transaction. Guarantees:

* clean shutdown (:meth:`close`, called on SIGTERM) drains the queue: no loss;
* a crash (SIGKILL) loses at most the rows recorded in the last flush interval
  (default 50 ms) plus the transaction being committed at that instant;
* no row poisons its batch: each row is encoded on its own (text cleaned of what a store
  refuses), and one that cannot be encoded is stored as an error row
  (``tether.store.decision_rows``); a batch the store refuses anyway, with any
  exception, is split in halves until the refused rows are alone (a few commits for one
  row in thousands), and each of those is stored as an error row. Every other row of the
  batch is committed as it is;
* a row is **lost** only when even its error row cannot be stored: the store is down.
  Then the batch is retried a few times, and what still fails is counted in :attr:`lost`
  and makes the log unhealthy (:class:`~tether.store.sink.DecisionSink`) until a commit
  succeeds again. While idle, the writer probes the store every ``probe_interval_ms``
  (an insert rolled back), so an unreachable store is noticed before any row is lost and
  a recovered one is noticed without traffic (a server that fails closed gets none).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from tether.store.decision_rows import Params, RowEncoder, error_row, short_reason, storable
from tether.store.record_chain import (
    AUDIT_LOG,
    DECISIONS,
    Sealer,
    decision_header,
    hold,
    link,
    note_appended,
    seal_head,
)
from tether.store.tables import decisions

log = logging.getLogger(__name__)

_STOP = object()
#: Attempts at a whole batch while the store is unreachable, and the pause before each.
STORE_DOWN_RETRIES = 3
RETRY_PAUSE_S = 0.05
#: The decision id of the probe row (never committed: the probe rolls back).
PROBE_ID = "tether-probe"


class _StoreDown(Exception):  # control flow inside write(): stop isolating, count the rest
    pass


class DecisionLog:
    """Background writer of decision rows (dicts with the columns of ``decisions``); a
    :class:`~tether.store.sink.DecisionSink`."""

    def __init__(
        self,
        engine: Engine,
        *,
        flush_interval_ms: int = 50,
        max_batch: int = 5000,
        probe_interval_ms: int = 1000,
        sealer: Sealer | None = None,
    ) -> None:
        self._engine = engine
        # Signs the chains' heads: each batch of decisions in its own transaction, the
        # audit log's at most every probe interval (tether.store.record_chain).
        self._sealer = sealer
        self._audit_sealed_at = 0.0
        self._interval = flush_interval_ms / 1000
        self._probe_every = probe_interval_ms / 1000
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._written = 0
        self._lost = 0
        self._problem: str | None = None
        self._urgent = threading.Event()  # flush() and close() cut the wait short
        self._encoder = RowEncoder(engine)
        # The writer's connection, kept between batches (each batch still commits on its
        # own): a connection per batch cost more than the batch's rows on SQLite (connect,
        # pragmas, and the WAL checkpoint of closing the last connection) and a pool
        # checkout with its ping on PostgreSQL. Dropped after any failure.
        self._held: Connection | None = None
        self._thread = threading.Thread(target=self._run, name="tether-decision-log", daemon=True)
        self._closed = False
        self._thread.start()

    @property
    def written(self) -> int:
        """Rows committed (error rows included)."""
        return self._written

    @property
    def lost(self) -> int:
        """Rows not stored at all: even their error row failed (the store was down)."""
        return self._lost

    @property
    def healthy(self) -> bool:
        """``False`` from a lost row or a failed probe until the next successful commit."""
        return self._problem is None

    @property
    def problem(self) -> str | None:
        return self._problem

    def record(self, row: Mapping[str, Any]) -> None:
        """Queue one decision row; it is committed within the flush interval."""
        self._queue.put(row)

    def flush(self, timeout: float = 10.0) -> None:
        """Block until everything recorded before this call is committed (or lost)."""
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
        self.seal_audit(force=True)
        self._drop_connection()

    def seal_audit(self, *, force: bool = False) -> None:
        """Seal the audit log's head if rows were added since its last seal (at most once
        per probe interval unless ``force``); best effort: a later call seals what is left."""
        if self._sealer is None:
            return
        now = time.monotonic()
        if not force and now - self._audit_sealed_at < self._probe_every:
            return
        self._audit_sealed_at = now
        try:
            with self._engine.begin() as connection:
                seal_head(connection, AUDIT_LOG, self._sealer)
        except Exception as exc:
            log.warning("sealing the audit log's head failed: %s", short_reason(exc))

    def note_lost(self, count: int, reason: str) -> None:
        """Count rows that never reached this log (unreadable on their way to it)."""
        self._lost += count
        self._problem = f"{count} decision rows lost: {reason}"

    def _run(self) -> None:
        # Wake once per flush interval and drain everything queued, rather than waking
        # for every row: per-row wake-ups hand the GIL back and forth with the event loop.
        stopping = False
        collected_at = time.monotonic()
        while not stopping:
            backlog = not self._queue.empty()
            try:
                first = self._queue.get(timeout=self._probe_every)  # block until there is work
            except queue.Empty:
                self.probe()
                self.seal_audit()
                continue
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
            try:
                self.write(batch)
            except Exception:  # a bug in write must not stop the writer
                log.exception("writing %d decision rows failed unexpectedly", len(batch))
                self._lost += len(batch)
                self._problem = "the decision writer failed unexpectedly (see the log)"
            for marker in markers:
                marker.set()

    def probe(self) -> bool:
        """Whether the store takes a decision row now (inserted, then rolled back); a
        failure makes the log unhealthy, a success after one makes it healthy again."""
        try:
            with self._engine.connect() as connection:
                transaction = connection.begin()
                try:
                    connection.exec_driver_sql(
                        self._encoder.insert_sql, (*self._encoder.encode(_probe_row()), None, None)
                    )
                finally:
                    transaction.rollback()
        except Exception as exc:
            if self._problem is None:
                log.error("the decision store is unreachable: %s", short_reason(exc))
            self._problem = f"the decision store is unreachable: {short_reason(exc)}"
            return False
        if self._problem is not None:
            log.warning("the decision store is reachable again")
        self._problem = None
        return True

    def write(self, batch: Sequence[Mapping[str, Any]]) -> None:
        """Commit ``batch`` now, on the calling thread: the writer thread's step, also for a
        loop that batches itself (``tether.worker``'s). Never raises for a row's content;
        see the module docstring for what happens to a row the store refuses."""
        if not batch:
            return
        items = [(row, self._encoder.encode(row)) for row in batch]
        committed, lost = self._written, self._lost
        try:
            try:
                self._insert([params for _, params in items])
                self._written += len(items)
            except Exception as exc:
                if not self._reachable():
                    self._retry_while_down(items, exc)
                else:
                    self._isolate(items)
        except _StoreDown as down:
            unsettled = len(items) - (self._written - committed) - (self._lost - lost)
            self._lose(unsettled, f"the decision store is unreachable: {down}")
            return
        if self._written > committed and self._lost == lost:
            self._problem = None  # a commit and nothing lost: recording again
        self.seal_audit()

    def _retry_while_down(
        self, items: list[tuple[Mapping[str, Any], Params]], exc: Exception
    ) -> None:
        reason = short_reason(exc)
        self._problem = f"the decision store is unreachable: {reason}"
        log.error("the decision store is unreachable (%s); retrying %d rows", reason, len(items))
        for attempt in range(STORE_DOWN_RETRIES):
            time.sleep(RETRY_PAUSE_S * (attempt + 1))
            try:
                self._insert([params for _, params in items])
            except Exception as again:
                reason = short_reason(again)
                continue
            self._written += len(items)
            return
        raise _StoreDown(reason)

    def _isolate(self, items: list[tuple[Mapping[str, Any], Params]]) -> None:
        """Commit ``items`` the store refused together: halves until the refused rows are
        alone (a few commits for one refused row in thousands, not one per row)."""
        if len(items) == 1:
            self._write_alone(*items[0])
            return
        middle = len(items) // 2
        for half in (items[:middle], items[middle:]):
            try:
                self._insert([params for _, params in half])
            except Exception:
                self._isolate(half)
            else:
                self._written += len(half)

    def _write_alone(self, row: Mapping[str, Any], params: Params) -> None:
        """One refused row: as it is, then with its text cleaned, then as an error row."""
        refusal: Exception
        try:
            self._insert([params])
        except IntegrityError as exc:
            if self._is_stored(row):
                self._written += 1  # a retried commit had already stored it
                return
            refusal = exc
        except Exception as exc:
            refusal = exc
        else:
            self._written += 1
            return
        reason = short_reason(refusal)
        for attempt in (storable, lambda r: error_row(r, reason)):
            try:
                self._insert([self._encoder.encode(attempt(row))])
            except Exception as exc:
                refusal = exc
            else:
                self._written += 1
                return
        if not self._reachable():
            raise _StoreDown(short_reason(refusal))
        log.error(
            "decision %s cannot be stored, not even as an error row: %s",
            _decision_id(row),
            short_reason(refusal),
        )
        self._lose(1, f"a decision row cannot be stored: {short_reason(refusal)}")

    def _lose(self, count: int, reason: str) -> None:
        if count:
            self._lost += count
            self._problem = reason
            log.error("%d decision rows are lost: %s", count, reason)

    def _insert(self, params: list[Params]) -> None:
        """Insert rows as the next links of the decision chain, sealed in the same
        transaction (the chain's lock is held until it commits)."""
        connection = self._held
        reused = not (connection is None or connection.closed or connection.invalidated)
        if connection is None or not reused:
            connection = self._held = self._engine.connect()
        try:
            with connection.begin():
                prev = after = hold(connection, DECISIONS)
                chained = []
                for values in params:
                    digest = link(prev, decision_header(values))
                    chained.append((*values, prev, digest))
                    prev = digest
                connection.exec_driver_sql(self._encoder.insert_sql, chained)
                note_appended(connection, DECISIONS, self._sealer, after=after)
        except DBAPIError as exc:
            self._drop_connection()
            if reused and exc.connection_invalidated:
                # The kept connection broke while idle (a store restart): what a pool's
                # ping on checkout did. Once, on a new connection; a commit that may have
                # landed ends in the stored-row check of a refused row, as before.
                self._insert(params)
                return
            raise
        except BaseException:
            # Whatever failed (the store, the row, the commit), the next attempt starts
            # on a new connection, as a connection per batch did.
            self._drop_connection()
            raise

    def _drop_connection(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            try:
                held.invalidate()
                held.close()
            except Exception as exc:  # already broken: nothing to give back
                log.debug("dropping the decision writer's connection: %s", short_reason(exc))

    def _reachable(self) -> bool:
        try:
            with self._engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
        except Exception:
            return False
        return True

    def _is_stored(self, row: Mapping[str, Any]) -> bool:
        try:
            with self._engine.connect() as connection:
                found = connection.execute(
                    select(decisions.c.seq).where(decisions.c.decision_id == row["decision_id"])
                ).first()
        except Exception:
            return False
        return found is not None


def _decision_id(row: Any) -> str:
    value = row.get("decision_id") if isinstance(row, Mapping) else None
    return repr(value)[:60]


def _probe_row() -> dict[str, Any]:
    return error_row({"decision_id": PROBE_ID, "at": datetime.now(UTC)}, "probe")
