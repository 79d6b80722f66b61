"""Publishing decisions and ingested events to the stream, off every request's path.

:class:`EventPublisher` is what ``tether serve --events`` hands rows to: ``submit`` only
appends to a bounded deque (a full one drops and counts, like the drift queue; it never
blocks a decision). One thread runs an asyncio loop with the NATS connection; it encodes
the rows and publishes them in batches of up to 1,000 with ``publish_async`` and
``Nats-Msg-Id`` set to the event hash, so a message re-sent after a lost acknowledgement
is dropped by the stream. Up to :data:`IN_FLIGHT` batches are on their way at once (their
acknowledgements outstanding, :func:`send_batch`): the thread does not wait for one
batch's acknowledgements before sending the next. An event counts as published only once
its batch is acknowledged; a batch the server did not acknowledge in full goes back to the
front of the queue (with any batch sent after it that failed too, in their order) and is
tried again: at least once from the server to the stream while the server lives. (A
message of a failed batch may then be stored after messages of later batches: examined
late, never lost.)

Why not ``publish_async(wait_stall=...)``: on Python 3.11 ``asyncio.wait_for`` makes a task
of every call, so the loop runs between two messages and nats-py's flusher writes each on
its own (a ``send`` a message; measured: 5,400 messages/s and 50 µs of the NATS server's
CPU a message, against 16,400/s and 10 µs when a batch goes out in a few writes). A slot
in the client's window of pending acknowledgements is free at once below
:data:`NO_STALL_BELOW` outstanding (nats-py's window holds 4,000), so there no wait is
needed; above it the stall is bounded by :data:`ACK_TIMEOUT_S`.
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
#: How many batches may wait for their acknowledgements at once.
IN_FLIGHT = 4
#: Below this many outstanding acknowledgements a publish takes its slot in nats-py's
#: window (4,000 by default) without waiting.
NO_STALL_BELOW = BATCH * IN_FLIGHT
QUEUE_SIZE = 500_000
#: How many recent decisions' subjects are remembered, to put their results on the
#: subject's partition.
REMEMBERED_DECISIONS = 100_000
#: How long a batch's acknowledgements may take before it is published again.
ACK_TIMEOUT_S = 5.0
_IDLE_S = 0.002


async def send_batch(
    js: Any, config: BusConfig, messages: Sequence[BusMessage]
) -> asyncio.Future[None]:
    """Publish ``messages`` without waiting for their acknowledgements; a future that is
    done once every one came back (or failed: it raises, after :data:`ACK_TIMEOUT_S` at
    most, and the messages are to be published again: the stream drops the ones it has
    by their id).

    Raises:
        Exception: a message could not be sent (none of the batch counts as published).
    """
    futures: list[asyncio.Future[Any]] = []
    try:
        for m in messages:
            stall = None if js.publish_async_pending() < NO_STALL_BELOW else ACK_TIMEOUT_S
            futures.append(
                await js.publish_async(
                    config.subject_of(config.partition_of(m.identity_id)),
                    m.payload,
                    headers={"Nats-Msg-Id": m.hash},
                    wait_stall=stall,
                )
            )
    except BaseException:
        for future in futures:
            future.cancel()
        raise
    return asyncio.ensure_future(_acknowledged(futures))


async def _acknowledged(futures: list[asyncio.Future[Any]]) -> None:
    try:
        # nats-py's acknowledgement futures have no timeout of their own: a lost ack
        # would hold the publisher (and every decision queued behind it) for ever.
        await asyncio.wait_for(asyncio.gather(*futures), ACK_TIMEOUT_S)
    finally:
        for future in futures:  # free their slots in the client's pending window
            future.cancel()


async def publish_batch(js: Any, config: BusConfig, messages: Sequence[BusMessage]) -> None:
    """Publish ``messages`` and wait for every acknowledgement.

    Raises:
        Exception: some message was not acknowledged (publish them all again: the stream
            drops the ones it has by their id).
    """
    await (await send_batch(js, config, messages))


class EventPublisher:
    """Rows in, stream messages out; thread-safe ``submit``."""

    def __init__(self, config: BusConfig, *, queue_size: int = QUEUE_SIZE) -> None:
        self.config = config
        self._queue: deque[tuple[str, Mapping[str, Any]]] = deque()
        self._queue_size = queue_size
        self._taking = False
        self._unacknowledged = 0
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
        while self._queue or self._taking or self._unacknowledged:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def cpu_seconds(self) -> float:
        """CPU seconds the publishing thread (encoding and sending) has used so far."""
        thread = self._thread
        if thread is None or thread.ident is None or not thread.is_alive():
            return 0.0
        return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))

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
        # Batches sent, oldest first, each with the rows it holds and its acknowledgements.
        sent: deque[tuple[list[tuple[str, Mapping[str, Any]]], asyncio.Future[None]]] = deque()
        try:
            await ensure_stream(js, self.config)
            self._ready.set()
            while not self._stop.is_set():
                if sent and (sent[0][1].done() or len(sent) >= IN_FLIGHT):
                    await self._settle(sent)
                    continue
                self._taking = True  # flush() must not see a gap between queue and sent
                try:
                    taken = self._take()
                    if taken:
                        await self._send(js, taken, sent)
                finally:
                    self._taking = False
                if not taken:
                    if sent:
                        await asyncio.wait([sent[0][1]], timeout=_IDLE_S)
                    else:
                        await asyncio.sleep(_IDLE_S)
            while sent:  # what close() did not wait for
                await self._settle(sent)
        finally:
            await connection.close()

    async def _send(
        self,
        js: Any,
        taken: list[tuple[str, Mapping[str, Any]]],
        sent: deque[tuple[list[tuple[str, Mapping[str, Any]]], asyncio.Future[None]]],
    ) -> None:
        messages = [encode(kind, row) for kind, row in taken]
        try:
            acknowledged = await send_batch(js, self.config, messages)
        except Exception as exc:
            acknowledged = asyncio.get_running_loop().create_future()
            acknowledged.set_exception(exc)
        sent.append((taken, acknowledged))
        self._unacknowledged += len(taken)

    async def _settle(
        self, sent: deque[tuple[list[tuple[str, Mapping[str, Any]]], asyncio.Future[None]]]
    ) -> None:
        """Wait for the oldest batch; if it failed, for every batch sent after it too, and
        put the failed ones back at the front of the queue in the order they were taken."""
        taken, acknowledged = sent.popleft()
        try:
            await acknowledged
        except Exception as exc:
            failed, problem = list(taken), exc
        else:
            self.published += len(taken)
            self.problem = None
            self._unacknowledged -= len(taken)
            return
        # Counted as unacknowledged until back in the queue: flush(), on another thread,
        # must always see them in one or the other.
        settled = len(taken)
        while sent:
            later, later_acknowledged = sent.popleft()
            settled += len(later)
            try:
                await later_acknowledged
            except Exception:
                failed.extend(later)
            else:
                self.published += len(later)
        self.problem = f"publishing to the stream failed: {type(problem).__name__}"
        log.warning("%s; retrying %d events", self.problem, len(failed))
        self._queue.extendleft(reversed(failed))
        self._unacknowledged -= settled
        await asyncio.sleep(0.5)

    def _take(self) -> list[tuple[str, Mapping[str, Any]]]:
        taken: list[tuple[str, Mapping[str, Any]]] = []
        queue = self._queue
        while queue and len(taken) < BATCH:
            taken.append(queue.popleft())
        return taken
