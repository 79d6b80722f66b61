"""The worker's end (``python -m tether.worker``), started by :class:`WorkerLink`."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping
from typing import IO, Any

from tether.config import Settings
from tether.worker.protocol import (
    BEHAVIOUR,
    FLUSH,
    FLUSHED,
    READY,
    SETTINGS_ENV,
    decode_row,
    encode_control,
    is_control,
)

log = logging.getLogger("tether.worker")

#: How often changed drift records are sent to the server.
BEHAVIOUR_EVERY_S = 0.05


class _Replies:
    """Lines to the server over the worker's real stdout (one writer at a time)."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self._lock = threading.Lock()

    def send(self, kind: str, value: Any) -> None:
        with self._lock:
            self._out.write(encode_control(kind, value))
            self._out.flush()


class _BehaviourPublisher:
    """Sends the drift records that changed since the last send (records are replaced,
    never mutated in place, so an identity check finds the changes)."""

    def __init__(self, board: Mapping[str, Mapping[str, Any]], replies: _Replies) -> None:
        self._board = board
        self._replies = replies
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
            except Exception:
                log.exception("sending drift records to the server failed")

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


def main() -> int:
    from tether.services import Tether

    # Only the end of stdin stops the worker: a Ctrl-C meant for the server reaches the
    # whole process group, and the rows still in the pipe must be committed first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="worker %(levelname)s %(name)s: %(message)s")
    # The protocol owns the real stdout; anything printed goes to stderr instead.
    replies = _Replies(os.fdopen(os.dup(sys.stdout.fileno()), "wb"))
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    settings = Settings(**json.loads(os.environ[SETTINGS_ENV]))
    tether = Tether(settings)
    tether.start_background()
    drift = tether.drift
    publisher = _BehaviourPublisher(drift.board.cedar if drift else {}, replies)
    publisher.start()
    replies.send(READY, os.getpid())
    try:
        for line in sys.stdin.buffer:
            if is_control(line):
                kind, value = json.loads(line)
                if kind == FLUSH:
                    tether.decision_log.flush()
                    if drift is not None:
                        drift.drain()
                    publisher.publish()
                    replies.send(FLUSHED, value)
                continue
            try:
                row = decode_row(line)
            except (ValueError, KeyError, TypeError):
                log.error("dropping an unreadable decision row: %r", line[:200])
                continue
            tether.record_decision(row)
    finally:
        publisher.stop()
        tether.close()
    return 0
