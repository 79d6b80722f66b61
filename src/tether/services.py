"""The application service: one object the HTTP edge, the CLI and the SDK all call.

It owns the store, the live policy snapshot (hot-reloaded when `tether apply` writes
a new estate revision) and the decision sink (``tether.store.sink``: a batching writer
thread, or a worker process). With ``fail_closed_unrecorded`` (the default) a decision
that cannot be recorded is not made: while the sink is unhealthy every evaluation is
denied with ``decisions_unrecorded``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from tether.approvals import ApprovalService
from tether.callers import CallerDirectory
from tether.config import Settings
from tether.drift.engine import DEFAULT_BASELINE_EVERY_S, DriftEngine
from tether.estate.compiled import EMPTY_ESTATE, CompiledEstate, ResourceClassifier
from tether.ids import new_id
from tether.policy import (
    Decision,
    DecisionRequest,
    EntityRef,
    Outcome,
    PolicyEngine,
    PolicyInvalid,
    scope_action_names,
)
from tether.signals import Transmitter, attach
from tether.store import migrate
from tether.store.decision_log import DecisionLog
from tether.store.engine import check_reachable, open_engine
from tether.store.lifecycle_tables import offboardings
from tether.store.sink import DecisionSink
from tether.store.tables import estate_revisions
from tether.telemetry.records import seal_signature
from tether.tokens import KeyRing, TaskAuthority, TaskUse, load_or_create_master_key
from tether.tokens.decisions import refusal
from tether.worker import WorkerLink

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PolicySnapshot:
    """Everything a decision needs, swapped atomically on reload."""

    revision: int | None
    estate: CompiledEstate
    engine: PolicyEngine
    classifier: ResourceClassifier
    action_names: frozenset[str]


@dataclass(frozen=True)
class RecordedDecision:
    decision_id: str
    decision: Decision
    # `context.approval` of an `approval_required` answer (tether.approvals).
    approval: Mapping[str, Any] | None = None


def _snapshot(revision: int | None, estate: CompiledEstate) -> PolicySnapshot:
    actions = scope_action_names(estate.policies)
    return PolicySnapshot(
        revision, estate, estate.engine(), estate.classifier(), frozenset(actions)
    )


class WouldBlock(Exception):  # control flow: never an error a caller sees
    """Raised by ``Tether.evaluate(may_block=False)`` when answering needs store I/O (an
    approval ticket); raised before anything is recorded, so the caller may simply
    evaluate again where blocking is fine (a worker thread)."""


def _offboarded(identity_id: str) -> Decision:
    return refusal("identity_offboarded", f"identity `{identity_id}` is offboarded")


UNRECORDED = refusal(
    "decisions_unrecorded",
    "decisions cannot be recorded right now (the decision store is unreachable or rows "
    "are being lost), so none is made; see `/readyz`",
)


class Tether:
    """tether's core, bound to one store."""

    def __init__(self, settings: Settings, *, engine: Engine | None = None) -> None:
        self.settings = settings
        self.engine = engine or open_engine(settings.database_url)
        check_reachable(self.engine)
        migrate.upgrade(self.engine)
        self.keys = KeyRing(
            self.engine,
            load_or_create_master_key(Path(settings.master_key_file), settings.master_key or None),
        )
        # Drift records by identity (context.tether.behaviour), from the drift engine.
        reported: dict[str, Mapping[str, Any]] = {}
        self.behaviour: Mapping[str, Mapping[str, Any]] = reported
        self.decision_log: DecisionSink
        self._worker: WorkerLink | None = None
        if settings.background_work == "process":  # rows and drift go to tether.worker
            self.decision_log = self._worker = WorkerLink(settings, reported)
        else:
            self.keys.active()  # a first key is made now, not while a chain's lock is held
            self.decision_log = DecisionLog(
                self.engine,
                flush_interval_ms=settings.flush_interval_ms,
                sealer=lambda *head: seal_signature(self.keys, *head),
            )
        # Who may call tether over HTTP: loaded on first use, refreshed with the estate.
        self.callers = CallerDirectory(self.engine)
        self.tasks = TaskAuthority(self.engine, settings, self.keys, lambda: self.snapshot.estate)
        # Shared Signals: CAEP SETs for revocations and key rotations (tether.signals).
        self.signals = Transmitter(
            self.engine,
            self.keys,
            issuer=settings.public_url,
            master_key=load_or_create_master_key(
                Path(settings.master_key_file), settings.master_key or None
            ),
        )
        attach(self.tasks, self.signals)
        self.snapshot = _snapshot(None, EMPTY_ESTATE)
        self.outcome_counts: Counter[str] = Counter()
        self.approvals = ApprovalService(self.engine, ttl_s=settings.approval_ttl_s)
        # Offboarded identities are denied at every decision (`identity_offboarded`).
        self.offboarded: frozenset[str] = frozenset()
        self.refresh_offboarded()
        self._unloadable_revision: int | None = None
        # Drift detection (started with the background work, here or in tether.worker).
        self.drift: DriftEngine | None = None
        self.reload()
        self._stop = threading.Event()
        self._reloader: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------------------

    def start_background(self) -> None:
        """Start watching the store for new estate revisions (hot reload)."""
        if self._reloader is None:
            self._reloader = threading.Thread(target=self._watch, name="tether-reload", daemon=True)
            self._reloader.start()
        self.signals.start()
        if self._worker is not None:
            # Serve once the worker records and watches: what is decided is soon visible.
            if not self._worker.wait_ready():
                log.error("the worker process is not up after 60 s; decisions queue for it")
        else:
            self.start_drift()

    def background_problem(self) -> str | None:
        """Why decisions are not being recorded right now (``None``: they are)."""
        return self.decision_log.problem

    def start_drift(self, *, background: bool = True) -> DriftEngine:
        """Start live drift detection on decisions and ingested events (once); without
        ``background`` no worker thread: the caller feeds it (``DriftEngine.work``)."""
        if self.drift is None:
            drift = DriftEngine(
                self.engine,
                lambda: (self.snapshot.revision, self.snapshot.estate),
                tasks=self.tasks.task,
                ender=self.tasks,
                # Ending a task already sends `session-revoked` (tether.signals.attach).
                sink=None if self.tasks.on_sessions_revoked is not None else self.signals,
                refresh_s=self.settings.reload_interval_ms / 1000,
                baseline_every_s=DEFAULT_BASELINE_EVERY_S,
            )
            drift.start(background=background)
            self.behaviour = drift.board.cedar
            self.drift = drift
        return self.drift

    def close(self) -> None:
        self._stop.set()
        self.signals.close()
        if self._reloader is not None:
            self._reloader.join(timeout=5)
        if self.drift is not None:
            self.drift.stop()
        self.decision_log.close()
        self.callers.close()
        self.tasks.close()

    def _watch(self) -> None:
        interval = self.settings.reload_interval_ms / 1000
        while not self._stop.wait(interval):
            try:
                self.reload()
            except Exception:  # keep serving the last good snapshot
                log.exception(
                    "reloading the estate failed; keeping revision %s", self.snapshot.revision
                )
            try:
                # Revoked keys and removed roles stop working within one interval.
                self.callers.refresh()
            except Exception:
                log.exception("refreshing the caller directory failed; keeping the last one")
            try:
                self.refresh_offboarded()
            except Exception:
                log.exception("refreshing offboarded identities failed; keeping the last set")

    def latest_revision(self) -> int | None:
        with self.engine.connect() as connection:
            value = connection.execute(select(func.max(estate_revisions.c.revision))).scalar()
        return int(value) if value is not None else None

    def reload(self) -> bool:
        """Load the newest estate revision if it differs from the live one."""
        latest = self.latest_revision()
        if latest in (self.snapshot.revision, self._unloadable_revision):
            return False
        with self.engine.connect() as connection:
            bundle = connection.execute(
                select(estate_revisions.c.bundle).where(estate_revisions.c.revision == latest)
            ).scalar_one()
        try:
            snapshot = _snapshot(latest, CompiledEstate.from_bundle(bundle))
        except Exception as exc:
            # Not retried until a newer revision arrives: the same bundle fails the same way.
            self._unloadable_revision = latest
            raise PolicyInvalid(f"estate revision `{latest}` cannot be loaded: {exc!r}") from exc
        self.snapshot = snapshot
        log.info("loaded estate revision %s", latest)
        return True

    def refresh_offboarded(self) -> None:
        """Reload the ids of offboarded identities (``tether identity offboard``)."""
        with self.engine.connect() as connection:
            ids = connection.execute(select(offboardings.c.identity_id)).scalars()
            self.offboarded = frozenset(ids)

    # --- decisions -------------------------------------------------------------------------

    def decide(self, request: DecisionRequest) -> Decision:
        """Evaluate without recording (used by search)."""
        snap = self.snapshot
        if request.subject.id in self.offboarded:
            return _offboarded(request.subject.id)
        return snap.engine.decide(request, self._tether_context(snap, request))

    def evaluate(
        self,
        request: DecisionRequest,
        *,
        request_id: str | None = None,
        caller: str | None = None,
        task: TaskUse | None = None,
        may_block: bool = True,
    ) -> RecordedDecision:
        """Evaluate one request and record it as a decision event (``task``: made with a
        task token, see ``tether.tokens.decisions``; ``may_block=False``: raise
        :class:`WouldBlock` rather than wait for the store, as on an event loop)."""
        started = time.perf_counter_ns()
        snap = self.snapshot
        if not self.decision_log.healthy and self.settings.fail_closed_unrecorded:
            decision = UNRECORDED  # still recorded, if the sink can: it may have recovered
        elif request.subject.id in self.offboarded:
            decision = _offboarded(request.subject.id)
        elif task is None:
            decision = snap.engine.decide(request, self._tether_context(snap, request))
        else:
            decision = task.decide(snap.engine, request, self._tether_context(snap, request))
        decision_id = new_id()
        approval = None
        if decision.outcome is Outcome.APPROVAL_REQUIRED:  # a ticket, or the approved retry
            if not may_block:  # the ticket is a store write
                raise WouldBlock
            settled = self.approvals.settle(
                request, decision, decision_id=decision_id, caller=caller
            )
            decision, approval = settled.decision, settled.approval
        self.outcome_counts[decision.outcome.value] += 1
        context = dict(request.context) if task is None else task.recorded_context(request.context)
        row = {
            "decision_id": decision_id,
            "at": datetime.now(UTC),
            "subject_type": request.subject.type,
            "subject_id": request.subject.id,
            "action": request.action,
            "resource_type": request.resource.type,
            "resource_id": request.resource.id,
            "outcome": decision.outcome.value,
            "decision": decision.permits,
            "reasons": list(decision.reasons),
            "obligations": dict(decision.obligations),
            "errors": list(decision.errors),
            "context": context,
            "request_id": request_id,
            "caller": caller,
            "estate_revision": snap.revision,
            "duration_us": (time.perf_counter_ns() - started) // 1000,
        }
        self.record_decision(row)
        return RecordedDecision(decision_id, decision, approval)

    def record_decision(self, row: Mapping[str, Any]) -> None:
        """Log a decision row and hand it to drift detection (queue appends, no I/O)."""
        self.decision_log.record(row)
        if self.drift is not None:
            self.drift.submit_decision(row)

    def _tether_context(self, snap: PolicySnapshot, request: DecisionRequest) -> dict[str, Any]:
        data_class, level = snap.classifier.classify(request.resource)
        context: dict[str, Any] = {
            "subject_id": request.subject.id,
            "resource_id": request.resource.id,
            "sensitivity": level,
        }
        if data_class is not None:
            context["data_class"] = data_class
        behaviour = self.behaviour.get(request.subject.id)  # drift findings (tether.drift)
        if behaviour is not None:
            context["behaviour"] = behaviour
        return context

    # --- search (AuthZEN 1.0 §8) ---------------------------------------------------------

    def search_subjects(self, subject_type: str, request: DecisionRequest) -> list[EntityRef]:
        snap = self.snapshot
        candidates = [EntityRef(e.type, e.id) for e in snap.engine.entities_of_type(subject_type)]
        return self._permitted(
            (
                c,
                DecisionRequest(
                    c,
                    request.action,
                    request.resource,
                    request.context,
                    {},
                    request.resource_properties,
                    request.action_properties,
                ),
            )
            for c in candidates
        )

    def search_resources(self, resource_type: str, request: DecisionRequest) -> list[EntityRef]:
        snap = self.snapshot
        candidates = [EntityRef(e.type, e.id) for e in snap.engine.entities_of_type(resource_type)]
        return self._permitted(
            (
                c,
                DecisionRequest(
                    request.subject,
                    request.action,
                    c,
                    request.context,
                    request.subject_properties,
                    {},
                    request.action_properties,
                ),
            )
            for c in candidates
        )

    def search_actions(self, request: DecisionRequest) -> list[str]:
        names = sorted(self.snapshot.action_names)
        return [
            name
            for name in names
            if self.decide(
                DecisionRequest(
                    request.subject,
                    name,
                    request.resource,
                    request.context,
                    request.subject_properties,
                    request.resource_properties,
                )
            ).permits
        ]

    def _permitted(self, pairs: Iterable[tuple[EntityRef, DecisionRequest]]) -> list[EntityRef]:
        found = [ref for ref, req in pairs if self.decide(req).permits]
        return sorted(found, key=lambda r: r.id)
