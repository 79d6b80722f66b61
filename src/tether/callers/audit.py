"""tether's callers in the audit trail: admin actions, refused calls, last use.

Admin actions (a PEP key made or revoked, an admin token issued) are written by
:func:`tether.store.audit.record_audit` in the transaction that makes the change, so they
commit before the command answers. Refused authentications and rights come from the request
path, where no I/O may happen: :class:`CallerActivity` queues them and a background thread
writes them, rate-limited (one row per reason, source and credential every ``per_source_s``,
``max_per_minute`` in all, with a count of what was left out) so that a flood of bad
credentials cannot fill the disk. The same thread keeps ``identities.last_used_at`` of
callers current (at most one write per caller a minute). Credentials appear by id or hash
prefix, never in full.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, bindparam, update

from tether.store.record_chain import append_audit
from tether.store.tables import identities

log = logging.getLogger(__name__)


_STOP = object()


class CallerActivity:
    """Writes refusals and last-use times in the background; cheap to call per request."""

    def __init__(
        self,
        engine: Engine,
        *,
        flush_interval_s: float = 1.0,
        per_source_s: float = 10.0,
        max_per_minute: int = 60,
        last_used_every_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._interval = flush_interval_s
        self._per_source_s = per_source_s
        self._max_per_minute = max_per_minute
        self._last_used_every_s = last_used_every_s
        self._clock = clock
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._seen: dict[tuple[str, str, str], float] = {}
        self._window_start = clock()
        self._window_count = 0
        self._suppressed = 0
        self._used: dict[str, float] = {}
        self._used_written: dict[str, float] = {}
        self.written = 0
        self._thread = threading.Thread(
            target=self._run, name="tether-caller-activity", daemon=True
        )
        self._thread.start()

    # --- called on the request path (event loop): no I/O --------------------------------

    def refused(
        self,
        *,
        action: str,
        code: str,
        source: str,
        method: str,
        path: str,
        credential: str | None,
        status: int,
    ) -> bool:
        """Queue an audit row for a refused call unless the rate limit says otherwise."""
        now = self._clock()
        key = (code, source, credential or "")
        last = self._seen.get(key)
        if last is not None and now - last < self._per_source_s:
            self._suppressed += 1
            return False
        if now - self._window_start >= 60:
            self._window_start, self._window_count = now, 0
        if self._window_count >= self._max_per_minute:
            self._suppressed += 1
            return False
        if len(self._seen) > 10_000:
            self._seen.clear()
        self._seen[key] = now
        self._window_count += 1
        details: dict[str, Any] = {
            "code": code,
            "status": status,
            "method": method,
            "source": source,
            "credential": credential,
            "suppressed_before": self._suppressed,
        }
        self._suppressed = 0
        self._queue.put(
            {
                "at": datetime.now(UTC),
                "actor": credential or f"anonymous@{source}",
                "action": action,
                "target": path,
                "details": details,
            }
        )
        return True

    def used(self, identity_id: str) -> None:
        """Note that ``identity_id`` called tether now (written within a minute)."""
        self._used[identity_id] = time.time()

    # --- background ------------------------------------------------------------------

    def close(self) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout=5)

    def _run(self) -> None:
        stop = False
        while not stop:
            rows: list[dict[str, Any]] = []
            try:
                item = self._queue.get(timeout=self._interval)
                while True:
                    if item is _STOP:
                        stop = True
                        break
                    rows.append(item)
                    item = self._queue.get_nowait()
            except queue.Empty:
                pass
            try:
                self._flush(rows, final=stop)
            except Exception:  # the store may be briefly away; activity is best effort
                log.exception("writing caller activity failed (%d audit rows dropped)", len(rows))

    def _flush(self, rows: list[dict[str, Any]], *, final: bool) -> None:
        used, self._used = self._used, {}
        now = time.time()
        due = {
            identity: at
            for identity, at in used.items()
            if final or now - self._used_written.get(identity, 0.0) >= self._last_used_every_s
        }
        for identity in used.keys() - due.keys():
            self._used.setdefault(identity, used[identity])  # keep for a later flush
        if not rows and not due:
            return
        with self._engine.begin() as connection:
            if rows:
                append_audit(connection, rows)
            if due:
                connection.execute(
                    update(identities)
                    .where(identities.c.id == bindparam("identity"))
                    .values(last_used_at=bindparam("moment")),
                    [
                        {"identity": i, "moment": datetime.fromtimestamp(at, UTC)}
                        for i, at in due.items()
                    ],
                )
        self.written += len(rows)
        for identity in due:
            self._used_written[identity] = now
