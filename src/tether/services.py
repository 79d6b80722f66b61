"""The application service: one object the HTTP edge, the CLI and the SDK all call.

:func:`build` makes the server's parts from settings: the core every tether process has
(:func:`tether.composition.build_core`: store, keys, live estate, tasks, signals), the
caller directory, approvals, the decision sink (a writer thread here, or a worker process
that commits rows and runs drift detection, see :mod:`tether.worker`; either runs from the
moment it is made, so that no decision waits) and the :class:`~tether.decider.Decider` over
them. :class:`Tether` holds those parts; it starts hot reload, signals and drift
(:meth:`Tether.start_background`) and stops everything (:meth:`Tether.close`); its decision
methods are the decider's.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from tether.approvals import ApprovalService
from tether.bus import BehaviourFollower, BusConfig, EventPublisher, EventsTail
from tether.callers import CallerDirectory
from tether.composition import Core, Refresher, build_core, decision_log, drift_engine
from tether.config import Settings
from tether.decider import Decider, RecordedDecision, WouldBlock
from tether.drift.engine import DriftEngine
from tether.live import PolicySnapshot
from tether.policy import Decision, DecisionRequest, EntityRef
from tether.records import Records
from tether.store.changes import ChangeFeed, change_feed_for
from tether.store.sink import DecisionSink
from tether.tokens import TaskUse
from tether.worker import WorkerLink

__all__ = ["Components", "RecordedDecision", "Tether", "WouldBlock", "build"]

log = logging.getLogger(__name__)

# The refresher's steps (a change notice wakes them by name).
_ESTATE = "reloading the estate"
_CALLERS = "refreshing the caller directory"
_OFFBOARDED = "refreshing offboarded identities"


@dataclass(frozen=True)
class Components:
    """The server's built parts (only the decision sink runs yet)."""

    core: Core
    callers: CallerDirectory
    approvals: ApprovalService
    sink: DecisionSink
    # Drift records by identity (context.tether.behaviour): written by the drift engine,
    # here or in the worker (through its link), read by every decision.
    behaviour: dict[str, Mapping[str, Any]]
    decider: Decider
    worker: WorkerLink | None


def build(
    settings: Settings,
    *,
    engine: Engine | None = None,
    clock: Callable[[], float] | None = None,
) -> Components:
    """The server's parts; ``engine``: an open store, ``clock``: the tasks' time (tests)."""
    core = build_core(settings, engine=engine, clock=clock)
    core.live.refresh_offboarded()  # decisions deny them (the worker does not decide)
    behaviour: dict[str, Mapping[str, Any]] = {}
    worker = None
    sink: DecisionSink
    if settings.background_work == "process":  # rows and drift go to tether.worker
        sink = worker = WorkerLink(settings, behaviour)
    else:
        sink = decision_log(core)
    approvals = ApprovalService(core.store, ttl_s=settings.approval_ttl_s)
    decider = Decider(
        core.live,
        sink,
        approvals,
        behaviour,
        fail_closed_unrecorded=settings.fail_closed_unrecorded,
    )
    return Components(
        core, CallerDirectory(core.store), approvals, sink, behaviour, decider, worker
    )


class Tether:
    """tether's core, bound to one store: the built parts and their lifecycle."""

    def __init__(
        self,
        settings: Settings,
        *,
        engine: Engine | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        parts = self.components = build(settings, engine=engine, clock=clock)
        core = parts.core
        self.settings = settings
        self.engine = core.store
        self.keys = core.keys
        self.live = core.live
        self.tasks = core.tasks
        self.signals = core.signals
        self.callers = parts.callers
        self.approvals = parts.approvals
        self.decision_log = parts.sink
        self.behaviour: Mapping[str, Mapping[str, Any]] = parts.behaviour
        self.decider = parts.decider
        # The read models the edges use (inventory, decisions, paths, findings, reviews).
        self.records = Records(core.store, parts.sink, lambda: self.live.snapshot)
        # Drift detection: started with the background work, here or in tether.worker.
        self.drift: DriftEngine | None = None
        # Hot reload: new estate revisions, revoked keys and removed roles, offboardings
        # take effect within one interval, at once on PostgreSQL's change notices.
        self._refresher = Refresher(
            settings.reload_interval_ms / 1000,
            {
                _ESTATE: self.live.refresh,
                _CALLERS: self.callers.refresh,
                _OFFBOARDED: self.live.refresh_offboarded,
            },
        )
        # Other replicas' (and the CLI's) changes, announced by PostgreSQL (LISTEN/NOTIFY);
        # None on SQLite. Subscribers may join until start_background (the approvals'
        # long-polls do).
        self.changes: ChangeFeed | None = change_feed_for(core.store)
        if self.changes is not None:
            self._follow(self.changes)
        # The event bus (settings.events_url): decisions and stored events go to the
        # stream and drift detection to `tether worker`s (tether.bus).
        self.bus: EventPublisher | None = None
        self._bus_tail: EventsTail | None = None
        self._bus_behaviour: BehaviourFollower | None = None

    def _follow(self, changes: ChangeFeed) -> None:
        """What each change notice wakes: the refresher's steps, or the next use's check."""
        wake = self._refresher.waker
        changes.subscribe(["estate_revisions"], wake(_ESTATE, _CALLERS))
        callers = ["identities", "api_keys", "caller_roles", "trust_anchors"]
        changes.subscribe(callers, wake(_CALLERS))
        changes.subscribe(["identities", "trust_anchors"], self.tasks.trust.expire)
        changes.subscribe(["offboardings"], wake(_OFFBOARDED))
        changes.subscribe(["signing_keys"], self.tasks.key_watch.expire)
        self.tasks.revocations.follow(changes)  # skips version reads while nothing moved

    # --- lifecycle -----------------------------------------------------------------------

    def start_background(self) -> None:
        """Start hot reload, change notices, Shared Signals delivery and drift detection (or
        the worker)."""
        self._refresher.start()
        if self.changes is not None:
            self.changes.start()
        self.signals.start()
        if self.settings.events_url:
            self._start_bus()
        worker = self.components.worker
        if worker is not None:
            # Serve once the worker records and watches: what is decided is soon visible.
            if not worker.wait_ready():
                log.error("the worker process is not up after 60 s; decisions queue for it")
        elif not self.settings.events_url:
            self.start_drift()

    def _start_bus(self) -> None:
        """Publish every recorded decision and stored event to the stream.

        Raises:
            BusUnavailable: the NATS server cannot be reached.
        """
        config = BusConfig.from_settings(self.settings)
        bus = EventPublisher(config)
        bus.start()
        self.decider.observe(bus.submit_decision)
        self._bus_tail = EventsTail(self.engine, bus)
        self._bus_tail.start()
        self.bus = bus
        # The workers' drift records, into the map decisions read.
        self._bus_behaviour = BehaviourFollower(config, self.components.behaviour)
        if not self._bus_behaviour.start():
            log.warning("drift records from the bus are not in after 10 s; following on")

    def start_drift(
        self, *, background: bool = True, detectors: Iterable[str] | None = None
    ) -> DriftEngine:
        """Start live drift detection on decisions and ingested events (once); without
        ``background`` no worker thread: the caller feeds it (``DriftEngine.work``);
        ``detectors``: the enabled ones (all by default)."""
        if self.drift is None:
            drift = drift_engine(self.components.core, self.components.behaviour, detectors)
            drift.start(background=background)
            self.decider.observe(drift.submit_decision)
            self.drift = drift
        return self.drift

    def report_result(
        self, decision_id: str, result: Any, *, task: tuple[str, str] | None = None
    ) -> None:
        """What the call decided as ``decision_id`` returned (its text or JSON), for drift
        detection: where the task's later destinations came from (see
        :mod:`tether.drift.provenance`). Goes to the drift engine here or in the worker, in
        order with the decisions; no I/O on the caller's thread. ``task``: the
        ``(identity, task id)`` of the token a remote reporter showed; the result is then
        ignored unless the decision was of that task."""
        ref = f"decision:{decision_id}"
        if self.drift is not None:
            self.drift.submit_result(ref, result, task=task)
        elif self.bus is not None:
            subject = task[0] if task is not None else None
            self.bus.submit_result(
                ref, result, decision_id=decision_id, subject_id=subject, task=task
            )
        elif self.components.worker is not None:
            self.components.worker.report_result(ref, result, task=task)

    def background_problem(self) -> str | None:
        """Why decisions are not being recorded right now (``None``: they are)."""
        return self.decision_log.problem

    def bus_unready(self) -> str | None:
        """Why the event bus keeps this server from being ready (``None``: it does not).
        Until the workers' drift records were read once, decisions would miss the
        restrictions drift made before this server started; a bus away later does not
        make the server unready (see :meth:`bus_status`)."""
        follower = self._bus_behaviour
        if follower is not None and not follower.caught_up:
            return "drift records from the event bus not read yet" + (
                f" ({follower.problem})" if follower.problem else ""
            )
        return None

    def bus_status(self) -> dict[str, Any] | None:
        """How the event bus is doing (``None``: no bus). A bus behind or away does not
        stop decisions (they are recorded in the store): drift sees them late, or, once
        the publisher's queue is full, not at all (``dropped``)."""
        if self.bus is None:
            return None
        follower = self._bus_behaviour
        return {
            "published": self.bus.published,
            "dropped": self.bus.dropped,
            "results_unplaced": self.bus.unplaced_results,
            "problem": self.bus.problem,
            "drift_records_problem": follower.problem if follower is not None else None,
            "drift_records_caught_up": follower is not None and follower.caught_up,
        }

    def close(self) -> None:
        if self._bus_behaviour is not None:
            self._bus_behaviour.close()
        if self._bus_tail is not None:
            self._bus_tail.close()
        if self.bus is not None:
            self.bus.close()
        if self.changes is not None:
            self.changes.close()
        self._refresher.close()
        if self.drift is not None:
            self.drift.stop()
        self.decision_log.close()
        self.callers.close()
        self.components.core.close()

    # --- the live estate -----------------------------------------------------------------

    @property
    def snapshot(self) -> PolicySnapshot:
        return self.live.snapshot

    @property
    def offboarded(self) -> frozenset[str]:
        return self.live.offboarded

    def reload(self) -> bool:
        """Load the newest estate revision if it differs from the live one."""
        return self.live.reload()

    def latest_revision(self) -> int | None:
        return self.live.latest_revision()

    def refresh_offboarded(self) -> None:
        self.live.refresh_offboarded()

    # --- decisions (tether.decider) ------------------------------------------------------

    @property
    def outcome_counts(self) -> Counter[str]:
        return self.decider.outcome_counts

    def evaluate(
        self,
        request: DecisionRequest,
        *,
        request_id: str | None = None,
        caller: str | None = None,
        task: TaskUse | None = None,
        may_block: bool = True,
    ) -> RecordedDecision:
        """Evaluate one request and record it (:meth:`Decider.evaluate`)."""
        return self.decider.evaluate(
            request, request_id=request_id, caller=caller, task=task, may_block=may_block
        )

    def decide(self, request: DecisionRequest) -> Decision:
        """Evaluate without recording."""
        return self.decider.decide(request)

    def record_decision(self, row: Mapping[str, Any]) -> None:
        self.decider.record(row)

    def search_subjects(self, subject_type: str, request: DecisionRequest) -> list[EntityRef]:
        return self.decider.search_subjects(subject_type, request)

    def search_resources(self, resource_type: str, request: DecisionRequest) -> list[EntityRef]:
        return self.decider.search_resources(resource_type, request)

    def search_actions(self, request: DecisionRequest) -> list[str]:
        return self.decider.search_actions(request)
