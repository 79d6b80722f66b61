"""The worker's end (``python -m tether.worker``), started by :class:`WorkerLink`."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import IO, Any

from tether.composition import Refresher, build_core, decision_log, drift_engine
from tether.config import Settings
from tether.drift.engine import RESULT_KEY, TASK_KEY, DriftEngine
from tether.store.changes import change_feed_for
from tether.store.decision_log import DecisionLog
from tether.worker.protocol import (
    BEHAVIOUR,
    FLUSH,
    FLUSHED,
    HEALTH,
    READY,
    RESULT,
    SETTINGS_ENV,
    decode_row,
    encode_control,
    is_control,
)

log = logging.getLogger("tether.worker")

#: How often changed drift records are sent to the server.
BEHAVIOUR_EVERY_S = 0.05
#: Rows committed together at most, and bytes read from the pipe at once.
MAX_BATCH = 5000
READ_BYTES = 1 << 20


class _Replies:
    """Lines to the server over the worker's real stdout (one writer at a time)."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self._lock = threading.Lock()

    def send(self, kind: str, value: Any) -> None:
        # The server may be gone (killed): the rows it sent are still committed.
        with self._lock, contextlib.suppress(OSError):
            self._out.write(encode_control(kind, value))
            self._out.flush()


class _HealthReporter:
    """Sends the decision log's health and counts when they changed since the last send."""

    def __init__(self, decision_log: DecisionLog, replies: _Replies) -> None:
        self._log = decision_log
        self._replies = replies
        self._sent: tuple[Any, ...] | None = None
        self._lock = threading.Lock()

    def report(self) -> None:
        with self._lock:
            log_ = self._log
            state = (log_.healthy, log_.written, log_.lost, log_.problem)
            if state != self._sent:
                healthy, written, lost, problem = state
                self._replies.send(
                    HEALTH,
                    {"healthy": healthy, "written": written, "lost": lost, "problem": problem},
                )
                self._sent = state


class _BehaviourPublisher:
    """Sends the drift records that changed since the last send (records are replaced,
    never mutated in place, so an identity check finds the changes); every tick also
    runs ``also`` (the health report: a probe's finding reaches the server while idle)."""

    def __init__(
        self,
        board: Mapping[str, Mapping[str, Any]],
        replies: _Replies,
        also: Callable[[], None] | None = None,
    ) -> None:
        self._board = board
        self._replies = replies
        self._also = also
        self._sent: dict[str, Mapping[str, Any]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tether-behaviour", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.publish()

    def _run(self) -> None:
        while not self._stop.wait(BEHAVIOUR_EVERY_S):
            try:
                self.publish()
                if self._also is not None:
                    self._also()
            except Exception:
                log.exception("sending drift records or health to the server failed")

    def publish(self) -> None:
        with self._lock:
            self._publish()

    def _publish(self) -> None:
        board = dict(self._board)
        changed: dict[str, Any] = {
            identity: record
            for identity, record in board.items()
            if self._sent.get(identity) is not record
        }
        changed.update({identity: None for identity in self._sent if identity not in board})
        if changed:
            self._replies.send(BEHAVIOUR, changed)
            self._sent = board


class _Lines:
    """Complete lines from a pipe, as many as have arrived (one read, many rows)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._rest = b""

    def wait(self, timeout: float | None) -> bool:
        """Whether input (or its end) is there, waiting at most ``timeout`` seconds."""
        return bool(select.select([self._fd], [], [], timeout)[0])

    def read(self) -> list[bytes] | None:
        """The lines that arrived; ``None`` at the end of input."""
        chunk = os.read(self._fd, READ_BYTES)
        if not chunk:
            return None
        *lines, self._rest = (self._rest + chunk).split(b"\n")
        return lines


def main() -> int:
    # Only the end of stdin stops the worker: a Ctrl-C meant for the server reaches the
    # whole process group, and the rows still in the pipe must be committed first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="worker %(levelname)s %(name)s: %(message)s")
    # The protocol owns the real stdout; anything printed goes to stderr instead.
    replies = _Replies(os.fdopen(os.dup(sys.stdout.fileno()), "wb"))
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    settings = Settings(**json.loads(os.environ[SETTINGS_ENV]))
    # Only what writing decisions and detecting drift need: no callers, approvals or
    # decider (the server decides).
    core = build_core(settings)
    decisions = decision_log(core)
    # One thread does the work, in batches: rows are committed and examined by this loop,
    # not handed between threads (each hand-over costs a GIL switch per row).
    drift = drift_engine(core, {})
    # On the event bus (`--events`) detection is the bus workers' (tether.bus): none here.
    if not settings.events_url:
        drift.start(background=False)
    refresher = Refresher(
        settings.reload_interval_ms / 1000,
        {"reloading the estate": core.live.refresh},
    )
    refresher.start()
    changes = change_feed_for(core.store)  # PostgreSQL: an applied estate reloads at once
    if changes is not None:
        changes.subscribe(["estate_revisions"], refresher.waker("reloading the estate"))
        changes.start()
    core.signals.start()
    health = _HealthReporter(decisions, replies)
    publisher = _BehaviourPublisher(drift.board.cedar, replies, health.report)
    publisher.start()
    replies.send(READY, os.getpid())
    try:
        _serve(settings, decisions, drift, _Lines(sys.stdin.fileno()), replies, publisher, health)
    finally:
        publisher.stop()
        if changes is not None:
            changes.close()
        refresher.close()
        drift.stop()
        decisions.close()
        core.close()
    return 0


def _serve(
    settings: Settings,
    decisions: DecisionLog,
    drift: DriftEngine,
    lines: _Lines,
    replies: _Replies,
    publisher: _BehaviourPublisher,
    health: _HealthReporter,
) -> None:
    interval = settings.flush_interval_ms / 1000
    idle_every = settings.reload_interval_ms / 2000
    rows: list[dict[str, Any]] = []
    # What drift detection examines: the rows and reported results, in arrival order.
    observed: list[Mapping[str, Any]] = []
    flushes: list[Any] = []
    due: float | None = None  # when the oldest uncommitted row must be committed
    # Rows that queued in the pipe while a batch was committed and examined have waited
    # since that batch was collected: their interval started then, not when they are read
    # (so a crash of the whole node loses at most one interval, or the commit and
    # examination in flight when those take longer). One thread does both: handing the
    # batches to a detection thread measured half the throughput (the two fight over
    # the GIL).
    waited = False
    collected_at = time.monotonic()
    last_work = time.monotonic()
    ended = False
    while not ended:
        now = time.monotonic()
        # Stored events waiting to be examined (an ingest under way): the next page now.
        idle_until = now if drift.events_behind else last_work + idle_every
        wake = due if due is not None else idle_until
        if lines.wait(max(0.0, wake - now)):
            arrived = lines.read()
            if arrived is None:
                ended = True
                arrived = []
            for line in arrived:
                if is_control(line):
                    kind, value = json.loads(line)
                    if kind == FLUSH:
                        flushes.append(value)
                    elif kind == RESULT and isinstance(value, dict):
                        observed.append(
                            {
                                RESULT_KEY: str(value.get("ref")),
                                "result": value.get("result"),
                                TASK_KEY: value.get("task"),
                            }
                        )
                    continue
                try:
                    rows.append(decode_row(line))
                    observed.append(rows[-1])
                except Exception as exc:  # encode_row never sends one: a bug, counted
                    log.error("an unreadable decision row is lost: %r", line[:200])
                    decisions.note_lost(1, f"unreadable row from the server: {exc}")
            if rows and due is None:
                due = (collected_at if waited else time.monotonic()) + interval
            waited = False
        now = time.monotonic()
        if ended or flushes or len(rows) >= MAX_BATCH or (due is not None and now >= due):
            collected_at = now
            decisions.write(rows)
            health.report()  # before `flushed`: a flush sees the counts of its rows
            _detect(drift, observed)  # also reads newly stored events
            rows, observed, due, last_work = [], [], None, time.monotonic()
            waited = lines.wait(0)  # input arrived meanwhile
            if flushes:
                publisher.publish()
                for number in flushes:
                    replies.send(FLUSHED, number)
                flushes = []
        elif due is None and (drift.events_behind or now - last_work >= idle_every):
            # No decisions for a while, or ingested events waiting: examine stored events
            # (and take late results).
            _detect(drift, observed)
            observed, last_work = [], now


def _detect(drift: DriftEngine, rows: list[Mapping[str, Any]]) -> None:
    if not drift.detectors:  # not started: the event bus's workers detect
        return
    try:
        drift.work(rows)
    except Exception:  # the rows are committed; detection carries on with the next batch
        log.exception("drift detection failed on a batch of %d decisions", len(rows))
