"""Deciding: one request against the live snapshot, recorded through a decision sink.

:class:`Decider` is the whole decision path and nothing else. Its I/O comes in as ports:

* the live estate (an :class:`EstateView`, such as :class:`~tether.live.LiveEstate`):
  the policy snapshot, who is offboarded;
* a :class:`~tether.store.sink.DecisionSink` that records every decision (no I/O on the
  caller's thread); with ``fail_closed_unrecorded`` a decision that cannot be recorded is
  not made: while the sink is unhealthy every evaluation is denied with
  ``decisions_unrecorded``;
* an :class:`ApprovalSettler` that turns ``approval_required`` into a ticket (a store
  write) or lets an approved retry through;
* the drift records by identity (``context.tether.behaviour``), read on every decision;
* observers of recorded rows (live drift detection), added when they start.

:mod:`tether.testing` has in-memory versions of these ports. Search (AuthZEN 1.0 §8)
asks the same snapshot, without recording.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from tether.approvals import Settled
from tether.ids import new_id
from tether.live import PolicySnapshot
from tether.policy import Decision, DecisionRequest, EntityRef, Outcome
from tether.store.sink import DecisionSink
from tether.tokens import TaskUse
from tether.tokens.decisions import refusal

RowObserver = Callable[[Mapping[str, Any]], None]


class EstateView(Protocol):
    """What a decision reads of the live estate (:class:`~tether.live.LiveEstate`)."""

    @property
    def snapshot(self) -> PolicySnapshot: ...

    @property
    def offboarded(self) -> frozenset[str]: ...


class ApprovalSettler(Protocol):
    """The part of :class:`~tether.approvals.ApprovalService` a decision needs."""

    def settle(
        self, request: DecisionRequest, decision: Decision, *, decision_id: str, caller: str | None
    ) -> Settled: ...

    def reuse(
        self, request: DecisionRequest, decision: Decision, *, caller: str | None
    ) -> Settled | None:
        """What ``settle`` would answer without store I/O, else ``None``."""
        ...


@dataclass(frozen=True)
class RecordedDecision:
    decision_id: str
    decision: Decision
    # `context.approval` of an `approval_required` answer (tether.approvals).
    approval: Mapping[str, Any] | None = None


# A module name: an enum member read off its class costs a metaclass lookup each time.
_APPROVAL_REQUIRED = Outcome.APPROVAL_REQUIRED


class WouldBlock(Exception):  # control flow: never an error a caller sees
    """Raised by ``Decider.evaluate(may_block=False)`` when answering needs store I/O (an
    approval ticket); raised before anything is recorded, so the caller may simply
    evaluate again where blocking is fine (a worker thread)."""


UNRECORDED = refusal(
    "decisions_unrecorded",
    "decisions cannot be recorded right now (the decision store is unreachable or rows "
    "are being lost), so none is made; see `/readyz`",
)


def _offboarded(identity_id: str) -> Decision:
    return refusal("identity_offboarded", f"identity `{identity_id}` is offboarded")


class Decider:
    """Evaluates requests against the live snapshot and records each decision."""

    def __init__(
        self,
        live: EstateView,
        sink: DecisionSink,
        approvals: ApprovalSettler,
        behaviour: Mapping[str, Mapping[str, Any]],
        *,
        fail_closed_unrecorded: bool = True,
    ) -> None:
        self._live = live
        self._sink = sink
        self._approvals = approvals
        self._behaviour = behaviour
        self._fail_closed_unrecorded = fail_closed_unrecorded
        self._observers: tuple[RowObserver, ...] = ()
        self.outcome_counts: Counter[str] = Counter()

    def observe(self, observer: RowObserver) -> None:
        """Hand every row recorded from now on to ``observer`` too (no I/O: a queue)."""
        self._observers = (*self._observers, observer)

    def decide(self, request: DecisionRequest) -> Decision:
        """Evaluate without recording (used by search)."""
        if request.subject.id in self._live.offboarded:
            return _offboarded(request.subject.id)
        snap = self._live.snapshot
        return snap.engine.decide(request, self._context(snap, request))

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
        snap = self._live.snapshot
        if not self._sink.healthy and self._fail_closed_unrecorded:
            decision = UNRECORDED  # still recorded, if the sink can: it may have recovered
        elif request.subject.id in self._live.offboarded:
            decision = _offboarded(request.subject.id)
        elif task is None:
            decision = snap.engine.decide(request, self._context(snap, request))
        else:
            decision = task.decide(snap.engine, request, self._context(snap, request))
        decision_id = new_id()
        approval = None
        if decision.outcome is _APPROVAL_REQUIRED:  # a ticket, or the approved retry
            # A ticket handed out moments ago is reused without I/O; a new one, or the
            # approved retry, is a store write.
            settled = None if may_block else self._approvals.reuse(request, decision, caller=caller)
            if settled is None:
                if not may_block:
                    raise WouldBlock
                settled = self._approvals.settle(
                    request, decision, decision_id=decision_id, caller=caller
                )
            decision, approval = settled.decision, settled.approval
        # A StrEnum's str() is its value, without the enum descriptor `.value` goes through.
        outcome = str(decision.outcome)
        self.outcome_counts[outcome] += 1
        context = dict(request.context) if task is None else task.recorded_context(request.context)
        row = {
            "decision_id": decision_id,
            "at": datetime.now(UTC),
            "subject_type": request.subject.type,
            "subject_id": request.subject.id,
            "action": request.action,
            "resource_type": request.resource.type,
            "resource_id": request.resource.id,
            "outcome": outcome,
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
        self.record(row)
        return RecordedDecision(decision_id, decision, approval)

    def record(self, row: Mapping[str, Any]) -> None:
        """Log a decision row and hand it to the observers (queue appends, no I/O)."""
        self._sink.record(row)
        for observer in self._observers:
            observer(row)

    def context(self, request: DecisionRequest) -> dict[str, Any]:
        """The ``context.tether`` a decision of ``request`` gets now."""
        return self._context(self._live.snapshot, request)

    def _context(self, snap: PolicySnapshot, request: DecisionRequest) -> dict[str, Any]:
        data_class, level = snap.classifier.classify(request.resource)
        context: dict[str, Any] = {
            "subject_id": request.subject.id,
            "resource_id": request.resource.id,
            "sensitivity": level,
        }
        if data_class is not None:
            context["data_class"] = data_class
        behaviour = self._behaviour.get(request.subject.id)  # drift findings (tether.drift)
        if behaviour is not None:
            context["behaviour"] = behaviour
        return context

    # --- search (AuthZEN 1.0 §8) ---------------------------------------------------------

    def search_subjects(self, subject_type: str, request: DecisionRequest) -> list[EntityRef]:
        """The subjects of ``subject_type`` that ``request`` permits (their own attributes,
        not the request's subject properties)."""
        engine = self._live.snapshot.engine
        candidates = [EntityRef(e.type, e.id) for e in engine.entities_of_type(subject_type)]
        return self._permitted(
            (c, replace(request, subject=c, subject_properties={})) for c in candidates
        )

    def search_resources(self, resource_type: str, request: DecisionRequest) -> list[EntityRef]:
        """The resources of ``resource_type`` that ``request`` permits."""
        engine = self._live.snapshot.engine
        candidates = [EntityRef(e.type, e.id) for e in engine.entities_of_type(resource_type)]
        return self._permitted(
            (c, replace(request, resource=c, resource_properties={})) for c in candidates
        )

    def search_actions(self, request: DecisionRequest) -> list[str]:
        """The actions of the live policies that ``request`` permits."""
        names = sorted(self._live.snapshot.action_names)
        return [
            name
            for name in names
            if self.decide(replace(request, action=name, action_properties={})).permits
        ]

    def _permitted(self, pairs: Iterable[tuple[EntityRef, DecisionRequest]]) -> list[EntityRef]:
        found = [ref for ref, req in pairs if self.decide(req).permits]
        return sorted(found, key=lambda r: r.id)
