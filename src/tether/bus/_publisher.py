"""Publishing decisions and ingested events to the stream, off every request's path.

:class:`EventPublisher` is what ``tether serve --events`` hands rows to: ``submit`` only
appends to a bounded deque (a full one drops and counts, like the drift queue; it never
blocks a decision). One thread runs an asyncio loop with the NATS connection; it encodes
the rows, publishes them in batches of up to 1,000 with ``publish_async`` (one round trip
for the batch's acknowledgements, not one per message) and ``Nats-Msg-Id`` set to the
event hash, so a batch re-sent after a lost acknowledgement is dropped by the stream. A
batch the server did not acknowledge goes back to the front of the queue and is tried
again: at least once from the server to the stream while the server lives.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence
from typing import Any

from tether.bus._nats import connect, ensure_stream
from tether.bus._stream import DECISION, EVENT, RESULT, BusConfig, BusMessage, encode
from tether.bus.errors import BusUnavailable
from tether.drift.engine import RESULT_KEY, TASK_KEY

log = logging.getLogger(__name__)

BATCH = 1_000
QUEUE_SIZE = 500_000
#: How many recent decisions' subjects are remembered, to put their results on the
#: subject's partition.
REMEMBERED_DECISIONS = 100_000
#: How long a batch's acknowledgements may take before it is published again.
ACK_TIMEOUT_S = 5.0
_IDLE_S = 0.002


async def publish_batch(js: Any, config: BusConfig, messages: Sequence[BusMessage]) -> None:
    """Publish ``messages`` and wait for every acknowledgement.

    Raises:
        Exception: some message was not acknowledged (publish them all again: the stream
            drops the ones it has by their id).
    """
    futures: list[asyncio.Future[Any]] = []
    try:
        for m in messages:
            futures.append(
                await js.publish_async(
                    config.subject_of(config.partition_of(m.identity_id)),
                    m.payload,
                    headers={"Nats-Msg-Id": m.hash},
                    wait_stall=ACK_TIMEOUT_S,
                )
            )
        # nats-py's acknowledgement futures have no timeout of their own: a lost ack
        # would hold the publisher (and every decision queued behind it) for ever.
        await asyncio.wait_for(asyncio.gather(*futures), ACK_TIMEOUT_S)
    finally:
        for future in futures:  # free their slots in the client's pending window
            future.cancel()


class EventPublisher:
    """Rows in, stream messages out; thread-safe ``submit``."""

    def __init__(self, config: BusConfig, *, queue_size: int = QUEUE_SIZE) -> None:
        self.config = config
        self._queue: deque[tuple[str, Mapping[str, Any]]] = deque()
        self._queue_size = queue_size
        self._in_flight = 0
        self.published = 0
        self.dropped = 0
        self.unplaced_results = 0
        self.problem: str | None = None
        # decision id -> subject id, of the decisions submitted lately (a result goes to
        # its decision's partition, after it).
        self._subjects: OrderedDict[str, str] = OrderedDict()
        self._subjects_lock = threading.Lock()
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    # --- any thread --------------------------------------------------------------------

    def submit(self, kind: str, row: Mapping[str, Any]) -> None:
        if len(self._queue) < self._queue_size:
            self._queue.append((kind, row))
        else:
            self.dropped += 1

    def submit_decision(self, row: Mapping[str, Any]) -> None:
        decision_id, subject = row.get("decision_id"), row.get("subject_id")
        if decision_id and subject:
            with self._subjects_lock:
                self._subjects[str(decision_id)] = str(subject)
                if len(self._subjects) > REMEMBERED_DECISIONS:
                    self._subjects.popitem(last=False)
        self.submit(DECISION, row)

    def submit_result(
        self,
        ref: str,
        result: Any,
        *,
        decision_id: str,
        subject_id: str | None = None,
        task: tuple[str, str] | None = None,
    ) -> bool:
        """What the call decided as ``decision_id`` returned (``ref``: its reference in
        drift, ``decision:<id>``); on the partition of the decision's subject, which is
        ``subject_id`` or one of the decisions submitted lately; ``task``: the reporter's
        ``(identity, task id)``, as :meth:`DriftEngine.submit_result` takes it. ``False``
        (and counted): the subject is unknown, the result is not published."""
        if subject_id is None:
            with self._subjects_lock:
                subject_id = self._subjects.get(decision_id)
        if subject_id is None:
            self.unplaced_results += 1
            return False
        row: dict[str, Any] = {RESULT_KEY: ref, "result": result, "subject_id": subject_id}
        if task is not None:
            row[TASK_KEY] = list(task)
        self.submit(RESULT, row)
        return True

    def submit_event(self, row: Mapping[str, Any]) -> None:
        self.submit(EVENT, row)

    def start(self, *, timeout_s: float = 10.0) -> None:
        """Connect and make sure the stream exists.

        Raises:
            BusUnavailable: not connected within ``timeout_s``.
        """
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="tether-bus-publish", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s) or self._error is not None:
            self._stop.set()
            error = self._error
            if isinstance(error, BusUnavailable):
                raise error
            raise BusUnavailable(
                f"cannot publish to `{self.config.url}` within {timeout_s:.0f} s: {error!r}"
            )

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything submitted so far is acknowledged by the stream."""
        deadline = time.monotonic() + timeout_s
        while self._queue or self._in_flight:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def close(self) -> None:
        if self._thread is not None:
            self.flush(5.0)
            self._stop.set()
            self._thread.join(timeout=5)

    # --- the publishing thread -----------------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        connection, js = await connect(self.config, name="tether-serve")
        try:
            await ensure_stream(js, self.config)
            self._ready.set()
            while not self._stop.is_set():
                self._in_flight = 1  # before taking: flush() must not see a gap
                taken = self._take()
                if not taken:
                    self._in_flight = 0
                    await asyncio.sleep(_IDLE_S)
                    continue
                messages = [encode(kind, row) for kind, row in taken]
                try:
                    await publish_batch(js, self.config, messages)
                except Exception as exc:
                    self.problem = f"publishing to the stream failed: {type(exc).__name__}"
                    log.warning("%s; retrying %d events", self.problem, len(taken))
                    self._queue.extendleft(reversed(taken))
                    await asyncio.sleep(0.5)
                else:
                    self.published += len(messages)
                    self.problem = None
                finally:
                    self._in_flight = 0
        finally:
            await connection.close()

    def _take(self) -> list[tuple[str, Mapping[str, Any]]]:
        taken: list[tuple[str, Mapping[str, Any]]] = []
        queue = self._queue
        while queue and len(taken) < BATCH:
            taken.append(queue.popleft())
        return taken
