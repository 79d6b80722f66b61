"""The server's end of the worker process (see :mod:`tether.worker`)."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import itertools
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping, MutableMapping
from typing import IO, Any

import orjson

from tether.config import Settings
from tether.worker.protocol import (
    BEHAVIOUR,
    FLUSH,
    FLUSHED,
    HEALTH,
    READY,
    RESULT,
    SETTINGS_ENV,
    encode_control,
    encode_row,
    is_control,
)

log = logging.getLogger(__name__)

#: How long queued rows wait before they are written to the worker together.
COALESCE_S = 0.002
#: How long ``close`` waits for the worker to commit everything and exit.
CLOSE_TIMEOUT_S = 60.0
#: How long a new worker may take to come up, and the pause before starting one again.
READY_TIMEOUT_S = 60.0
RESPAWN_PAUSE_S = 0.5


class WorkerReplies:
    """The server's view of its worker, from what the worker says on its stdout: whether
    it is up (``ready``, end of output), its decision log's counts and health
    (``health``), finished flushes (``flushed``) and drift records (``behaviour``, put
    into ``behaviour``: the map decisions read). Replies of a replaced worker (an older
    ``generation``) change nothing but flushes and drift records."""

    def __init__(self, behaviour: MutableMapping[str, Mapping[str, Any]]) -> None:
        self.behaviour = behaviour
        self.flushes: dict[int, threading.Event] = {}
        self.generation = 0  # of the current worker
        self.ready = threading.Event()
        self.alive = False
        # Counts of the workers replaced so far, the current worker's (its last `health`
        # reply), and the rows no worker took; why the link is unhealthy, if it is.
        self._written_before = self._lost_before = 0
        self._worker_written = self._worker_lost = 0
        self._worker_problem: str | None = None
        self.unsent = 0
        self.link_problem: str | None = None

    def next_generation(self) -> int:
        """A new worker starts: what the replaced one acknowledged stays counted."""
        self.ready.clear()
        self.generation += 1
        self._written_before += self._worker_written
        self._lost_before += self._worker_lost
        self._worker_written = self._worker_lost = 0
        return self.generation

    @property
    def written(self) -> int:
        return self._written_before + self._worker_written

    @property
    def lost(self) -> int:
        return self._lost_before + self._worker_lost + self.unsent

    @property
    def healthy(self) -> bool:
        return self.alive and self._worker_problem is None and self.link_problem is None

    @property
    def problem(self) -> str | None:
        if not self.alive:
            return "the worker process (decision log, drift detection) is not running"
        return self.link_problem or self._worker_problem

    def read(self, stdout: IO[bytes], generation: int) -> None:
        """Apply every reply of the worker of ``generation`` until its output ends."""
        # Buffered: the pipe is unbuffered (bufsize=0), and line iteration over a raw pipe
        # reads one byte per system call.
        with io.BufferedReader(stdout) as replies:  # type: ignore[type-var]
            for line in replies:
                self.on_reply(line, generation)
        if generation == self.generation:  # not a replaced worker's late end
            self.alive = False
            self.ready.set()  # whoever waits for this worker to come up: it will not

    def on_reply(self, line: bytes, generation: int) -> None:
        try:
            kind, value = orjson.loads(line)
        except (orjson.JSONDecodeError, ValueError):
            log.warning("unreadable line from the worker process: %r", line[:200])
            return
        if kind == READY:
            if generation == self.generation:
                self._worker_problem = None
                self.alive = True
                self.ready.set()
        elif kind == HEALTH:
            if generation == self.generation:
                self._on_health(value)
        elif kind == FLUSHED:
            done = self.flushes.get(int(value))
            if done is not None:
                done.set()
        elif kind == BEHAVIOUR:
            for identity, record in value.items():
                if record is None:
                    self.behaviour.pop(identity, None)
                else:
                    self.behaviour[identity] = record

    def _on_health(self, value: Any) -> None:
        try:
            written, lost = int(value["written"]), int(value["lost"])
        except (KeyError, TypeError, ValueError):
            log.warning("unreadable health reply from the worker process: %r", value)
            return
        if written > self._worker_written and self.link_problem is not None:
            self.link_problem = None  # a commit since rows failed to reach a worker
        self._worker_written, self._worker_lost = written, lost
        problem = value.get("problem")
        self._worker_problem = None if value.get("healthy") else str(problem or "unhealthy")


class WorkerLink:
    """Hands decision rows to a worker process; a :class:`~tether.store.sink.DecisionSink`
    whose counts and health are the worker's own (its ``health`` replies), plus the rows
    that could not be handed to any worker.

    Args:
        settings: the server's settings (the worker gets them with in-process work).
        behaviour: the server's identity -> drift record map, kept up to date here.
    """

    def __init__(
        self, settings: Settings, behaviour: MutableMapping[str, Mapping[str, Any]]
    ) -> None:
        worker_settings = dataclasses.replace(settings, background_work="thread")
        self._env = {**os.environ, SETTINGS_ENV: json.dumps(dataclasses.asdict(worker_settings))}
        self._pending: deque[bytes] = deque()
        self._wake = threading.Event()
        self._flush_ids = itertools.count(1)
        self._recorded = 0
        self._replies = WorkerReplies(behaviour)
        self._closing = False
        self._closed = False
        self._process = self._spawn()
        self._writer = threading.Thread(target=self._write_loop, name="tether-worker-link")
        self._writer.daemon = True
        self._writer.start()

    def wait_ready(self, timeout: float = 60.0) -> bool:
        """Wait until the worker is up (its store open, drift detection started); ``False``
        at once if it exited before that."""
        self._replies.ready.wait(timeout)
        return self._replies.alive

    @property
    def alive(self) -> bool:
        """Whether a worker is up and has not closed its output since."""
        return self._replies.alive

    @property
    def process(self) -> subprocess.Popen[bytes]:
        """The current worker process."""
        return self._process

    # --- DecisionSink ----------------------------------------------------------------------

    @property
    def written(self) -> int:
        """Rows the workers acknowledged as committed."""
        return self._replies.written

    @property
    def lost(self) -> int:
        """Rows a worker lost (its store was down) or that no worker took (each logged);
        not the rows a killed worker had read and not yet committed (nobody knows them)."""
        return self._replies.lost

    @property
    def healthy(self) -> bool:
        """A worker is up, says its store takes rows, and no row failed to reach it since
        its last commit."""
        return self._replies.healthy

    @property
    def problem(self) -> str | None:
        return self._replies.problem

    def record(self, row: Mapping[str, Any]) -> None:
        """Queue one decision row for the worker: an append, no I/O."""
        self._pending.append(encode_row(row))
        self._recorded += 1
        # After the append: the writer clears the event before it drains, so a row appended
        # before that clear is drained, and one appended after it finds the event unset.
        if not self._wake.is_set():
            self._wake.set()

    def report_result(self, ref: str, result: Any, *, task: tuple[str, str] | None = None) -> None:
        """Queue what the call decided as ``ref`` returned, for the worker's drift
        detection (in order with the decision rows): an append, no I/O. ``task``: see
        :meth:`tether.drift.engine.DriftEngine.submit_result`."""
        bound = {"task": list(task)} if task is not None else {}
        try:
            line = encode_control(RESULT, {"ref": ref, "result": result, **bound})
        except TypeError:  # not JSON: provenance reads it as text
            line = encode_control(RESULT, {"ref": ref, "result": str(result), **bound})
        self._pending.append(line)
        if not self._wake.is_set():
            self._wake.set()

    def flush(self, timeout: float = 10.0) -> None:
        """Block until the worker committed everything recorded before this call (and ran
        drift detection on it)."""
        number = next(self._flush_ids)
        flushes = self._replies.flushes
        done = flushes[number] = threading.Event()
        self._pending.append(encode_control(FLUSH, number))
        self._wake.set()
        done.wait(timeout)
        flushes.pop(number, None)

    def close(self) -> None:
        """Write out what is queued, let the worker commit it and stop; wait for it."""
        if self._closed:
            return
        self._closed = True
        self._closing = True
        self._wake.set()
        self._writer.join(timeout=CLOSE_TIMEOUT_S)
        process = self._process
        try:
            process.wait(timeout=CLOSE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log.error("the worker process did not stop in %.0f s; killing it", CLOSE_TIMEOUT_S)
            process.kill()
            process.wait()

    # --- the pipe ----------------------------------------------------------------------------

    def _spawn(self) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "tether.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=self._env,
            bufsize=0,
        )
        assert process.stdout is not None
        reader = threading.Thread(
            target=self._replies.read,
            args=(process.stdout, self._replies.next_generation()),
            name="tether-worker-reader",
        )
        reader.daemon = True
        reader.start()
        log.info("started worker process %s", process.pid)
        return process

    def _write_loop(self) -> None:
        pending = self._pending
        while True:
            self._wake.wait(0.5)
            self._wake.clear()
            if pending and not self._closing:
                time.sleep(COALESCE_S)  # let a burst queue up: one write for many rows
            frames = []
            while pending:
                frames.append(pending.popleft())
            if frames:
                self._send(b"".join(frames))
            if self._closing and not pending:
                break
        stdin = self._process.stdin
        if stdin is not None:
            with contextlib.suppress(OSError):
                stdin.close()  # end of input: the worker commits and exits

    def _send(self, data: bytes) -> None:
        for attempt in range(3):
            stdin = self._process.stdin
            assert stdin is not None
            if self._replies.ready.is_set() and not self._replies.alive:
                # Its output ended: it is exiting, and what it has not read is lost with it.
                problem = "its output ended"
            else:
                try:
                    view = memoryview(data)
                    while view:
                        written = os.write(stdin.fileno(), view)
                        view = view[written:]
                    return
                except OSError as exc:
                    problem = str(exc)
            log.error(
                "the worker process %s is gone (%s, exit status %s)",
                self._process.pid,
                problem,
                self._process.poll(),
            )
            if attempt == 2:
                break
            with contextlib.suppress(OSError):
                stdin.close()
            self._process.wait()
            time.sleep(RESPAWN_PAUSE_S * (attempt + 1))
            log.info("starting another worker process")
            self._process = self._spawn()
            self.wait_ready(READY_TIMEOUT_S)
        rows = sum(1 for line in data.splitlines() if not is_control(line))
        self._replies.unsent += rows
        self._replies.link_problem = f"{rows} decision rows could not be handed to a worker"
        log.error("could not hand %d decision rows to a worker: they are not recorded", rows)
