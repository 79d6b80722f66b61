"""Building tether's parts from settings, shared by the server and the worker process.

:func:`build_core` connects to the store, migrates it, loads the master key once and
builds the parts every process of tether needs (signing keys, the live estate, the task
authority, the Shared Signals transmitter wired to it), starting no thread. The server
adds its own on top (:func:`tether.services.build`); the worker adds only a decision log
and the drift engine (:mod:`tether.worker.main`). Whoever builds starts and stops:
:class:`Refresher`, ``signals.start()``, ``drift.start()``; the decision log's writer
thread is the one part that runs from the moment it is made (:func:`decision_log`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from tether.config import Settings
from tether.drift.engine import DEFAULT_BASELINE_EVERY_S, DriftEngine
from tether.drift.responses import BehaviourBoard
from tether.live import LiveEstate
from tether.signals import Transmitter, attach
from tether.store import migrate
from tether.store.decision_log import DecisionLog
from tether.store.engine import check_reachable, open_engine
from tether.telemetry.records import seal_signature
from tether.tokens import KeyRing, TaskAuthority, load_or_create_master_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Core:
    """What every tether process builds: the store and the parts bound to it."""

    settings: Settings
    store: Engine
    keys: KeyRing
    live: LiveEstate
    tasks: TaskAuthority
    signals: Transmitter
    # The store was opened here (not handed in): closing the core closes its connections.
    owns_store: bool = False

    def close(self) -> None:
        self.signals.close()
        self.tasks.close()
        if self.owns_store:
            # Pooled connections left to the garbage collector are closed by no one
            # (psycopg warns); the engine stays usable, opening new ones on demand.
            self.store.dispose()


def build_core(
    settings: Settings,
    *,
    engine: Engine | None = None,
    clock: Callable[[], float] | None = None,
) -> Core:
    """Connect, migrate, load the keys and the newest estate revision.

    ``engine``: an already open store (tests, the CLI); ``clock``: the task authority's
    time (tests).
    """
    store = engine or open_engine(settings.database_url)
    check_reachable(store)
    migrate.upgrade(store)
    master_key = load_or_create_master_key(
        Path(settings.master_key_file), settings.master_key or None
    )
    keys = KeyRing(store, master_key)
    live = LiveEstate(store)
    tasks = TaskAuthority(store, settings, keys, live.estate, clock=clock)
    signals = Transmitter(store, keys, issuer=settings.public_url, master_key=master_key)
    attach(tasks, signals)  # revocations and key rotations become CAEP events
    live.reload()
    return Core(settings, store, keys, live, tasks, signals, owns_store=engine is None)


def decision_log(core: Core) -> DecisionLog:
    """A writer thread in this process (started now) that commits decision rows in sealed
    batches."""
    core.keys.active()  # a first key is made now, not while a chain's lock is held
    return DecisionLog(
        core.store,
        flush_interval_ms=core.settings.flush_interval_ms,
        sealer=lambda *head: seal_signature(core.keys, *head),
    )


def drift_engine(
    core: Core,
    behaviour: MutableMapping[str, Mapping[str, Any]],
    detectors: Iterable[str] | None = None,
    *,
    tail_events: bool = True,
) -> DriftEngine:
    """Live drift detection over ``core``, publishing drift records into ``behaviour``
    (the map decisions read); ``detectors``: the enabled ones (all by default); not
    started. Without ``tail_events`` it reads no stored events itself (an event-bus worker
    is handed them)."""
    return DriftEngine(
        core.store,
        core.live.revision_and_estate,
        tasks=core.tasks.task,
        ender=core.tasks,
        # No signal sink of its own: ending a task already sends `session-revoked`
        # (build_core attached the transmitter to the task authority).
        sink=None,
        refresh_s=core.settings.reload_interval_ms / 1000,
        baseline_every_s=DEFAULT_BASELINE_EVERY_S,
        board=BehaviourBoard(behaviour),
        tail_events=tail_events,
        detectors=detectors,
    )


class Refresher:
    """One thread that runs ``steps`` every ``interval_s``: each step's failure is logged
    and the others still run (the parts keep serving what they last loaded).

    :meth:`wake` runs the named steps at once (a change notice from another replica,
    :mod:`tether.store.changes`); the interval stays the fallback.
    """

    def __init__(self, interval_s: float, steps: Mapping[str, Callable[[], object]]) -> None:
        self._interval_s = interval_s
        self._steps = dict(steps)
        self._stop = threading.Event()
        self._woken = threading.Event()
        self._due: set[str] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="tether-reload", daemon=True)
            self._thread.start()

    def wake(self, *names: str) -> None:
        """Run the steps ``names`` (all steps when none is named) as soon as possible."""
        with self._lock:
            self._due.update(names or self._steps)
        self._woken.set()

    def waker(self, *names: str) -> Callable[[], None]:
        return lambda: self.wake(*names)

    def close(self) -> None:
        self._stop.set()
        self._woken.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        next_round = time.monotonic() + self._interval_s
        while True:
            self._woken.wait(max(0.0, next_round - time.monotonic()))
            if self._stop.is_set():
                return
            with self._lock:
                self._woken.clear()
                due, self._due = self._due, set()
            if time.monotonic() >= next_round:
                due = set(self._steps)
                next_round = time.monotonic() + self._interval_s
            for name, step in self._steps.items():
                if name not in due:
                    continue
                try:
                    step()
                except Exception:
                    log.exception("%s failed; keeping the last one loaded", name)
