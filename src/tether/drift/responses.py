"""Responses to findings: alert, constrain, require approval, revoke; and the live behaviour.

In ``monitor`` mode a finding of medium severity or worse raises an alert (an audit-log
event ``drift.alert``) and nothing else changes. In ``enforce`` mode a high or critical
finding changes what happens next:

==============================================  ==========================================
finding                                         response
==============================================  ==========================================
critical, with a task                           ``revoke``: the task ends, its tokens die
high, with a task, from an intent, chain,       ``revoke``
entitlement or scope detector
high, about a cloud call (no task), from an     ``revoke``: every open task of the
entitlement, unmanaged, novel-access or scope   identity ends
detector
high from ``volume_anomaly``                    ``constrain``: ``behaviour.constrained``
any other high or critical                      ``approval``: ``behaviour.restricted``
==============================================  ==========================================

A cloud call (CloudTrail, Kubernetes or GCP audit) carries no tether task: a role that
does something dangerous with its cloud credentials loses the tether task tokens it
holds (every open task of the identity ends), since the same workload may be driving
both. Revocation goes through the task authority (:meth:`TaskAuthority.end_task`) and out as a
CAEP ``session-revoked`` Security Event Token through the optional :class:`SignalSink`
(subject ``{"format": "opaque", "id": <task id>}``). ``constrain`` and ``approval`` act
through the identity's *behaviour*, which the next decision sees in the Cedar context as
``context.tether.behaviour`` (``drift_score``, ``open_findings``, ``restricted``,
``constrained``, ``response``), so policies such as::

    @outcome("approval_required")
    forbid(principal, action, resource)
    when { context.tether has behaviour && context.tether.behaviour.restricted };

turn it into an approval or obligations. Every response is recorded on the finding
(``findings.response``) and in the audit log (``drift.<response>``).

A response is owed at least once: a live finding that calls for one is stored as
``pending`` in the transaction that stores it, and the response replaces that once
carried out. A finding still ``pending`` after ``OWED_AFTER`` (its process stopped or
crashed in between) is taken over by the next live engine on the store that looks
(:meth:`Responder.recover`, every ``RECOVER_EVERY_S``): one takes it (``recovering``,
with the time in ``response_taken_at``), responds and records the response. One taken
over and still ``recovering`` after ``OWED_AFTER`` (the second process died too) is owed
again. A revocation may then go out twice, never not at all.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Mapping, MutableMapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Engine

from tether.drift.findings import (
    owed_responses,
    set_responses,
    take_over_response,
)
from tether.drift.model import Finding, Mode, Severity
from tether.errors import TetherError
from tether.store.record_chain import append_audit

log = logging.getLogger(__name__)

SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
ACTOR = "tether-drift"
BEHAVIOUR_WINDOW = timedelta(hours=1)
#: A pending finding older than this lost its process's response (responding takes ms).
OWED_AFTER = timedelta(seconds=60)
RECOVER_EVERY_S = 30.0
REVOKING_DETECTORS = frozenset(
    {"out_of_intent", "tool_chain", "out_of_entitlement", "scope_widening"}
)
#: Detectors whose high findings about cloud calls end the identity's open tasks.
CLOUD_REVOKING_DETECTORS = REVOKING_DETECTORS | {"unmanaged_action", "novel_access"}


class SignalSink(Protocol):
    """Where Shared Signals go (``tether.signals.Transmitter``): returns the SET's ``jti``."""

    def emit(
        self, event_type: str, subject: Mapping[str, Any], event: Mapping[str, Any]
    ) -> str: ...


class TaskEnder(Protocol):
    """The part of :class:`~tether.tokens.TaskAuthority` a revocation needs."""

    def end_task(
        self, task_id: str, *, actor: str, reason: str = "ended", owner: str | None = None
    ) -> Any: ...

    def list_tasks(
        self, *, identity_id: str | None = None, state: str | None = None, limit: int = 100
    ) -> list[Any]: ...


def choose_response(finding: Finding) -> str:
    """The response to ``finding``: none, alert, constrain, approval or revoke."""
    if finding.suppressed_by is not None:
        return "none"
    severity = finding.severity
    if finding.mode is Mode.MONITOR or severity.rank < Severity.HIGH.rank:
        return "alert" if severity.rank >= Severity.MEDIUM.rank else "none"
    if finding.task_id is not None and (
        severity is Severity.CRITICAL or finding.detector in REVOKING_DETECTORS
    ):
        return "revoke"
    if (
        finding.task_id is None
        and "cloud_action" in finding.details
        and finding.detector in CLOUD_REVOKING_DETECTORS
    ):
        return "revoke"
    if finding.detector == "volume_anomaly":
        return "constrain"
    return "approval"


class BehaviourBoard:
    """Per identity, what the next decision should know: an O(1) lookup on the hot path.

    ``cedar`` maps identity id -> the ``context.tether.behaviour`` record (the map
    decisions read, when given); it is replaced entry by entry (never mutated in place),
    so a reader never sees half an update.
    """

    def __init__(
        self,
        cedar: MutableMapping[str, Mapping[str, Any]] | None = None,
        window: timedelta = BEHAVIOUR_WINDOW,
    ) -> None:
        self.cedar: MutableMapping[str, Mapping[str, Any]] = {} if cedar is None else cedar
        self._window = window
        self._recent: dict[str, deque[tuple[datetime, float, int]]] = {}
        self._flags: dict[str, tuple[bool, bool, str]] = {}
        self._lock = threading.Lock()

    def note(self, finding: Finding, response: str) -> None:
        if finding.suppressed_by is not None:
            return
        with self._lock:
            recent = self._recent.setdefault(finding.identity_id, deque(maxlen=1000))
            recent.append((finding.at, finding.score, finding.severity.rank))
            while recent and recent[0][0] < finding.at - self._window:
                recent.popleft()
            restricted, constrained, last = self._flags.get(
                finding.identity_id, (False, False, "none")
            )
            restricted = restricted or response in ("approval", "revoke")
            constrained = constrained or response == "constrain"
            if response != "none":
                last = response
            self._flags[finding.identity_id] = (restricted, constrained, last)
            self.cedar[finding.identity_id] = {
                "drift_score": round(max(s for _, s, _ in recent)),
                "open_findings": sum(1 for _, _, r in recent if r >= Severity.MEDIUM.rank),
                "restricted": restricted,
                "constrained": constrained,
                "response": last,
            }

    def restore(self, identity_id: str, record: Mapping[str, Any]) -> None:
        """Take over a record another process made (a bus worker that held the identity's
        partition before): its ``restricted`` and ``constrained`` stay set, as if this
        board had noted them. Its recent findings are not known here: the next finding's
        drift score counts from the ones noted here."""
        with self._lock:
            restricted, constrained, last = self._flags.get(identity_id, (False, False, "none"))
            response = str(record.get("response") or "none")
            self._flags[identity_id] = (
                restricted or bool(record.get("restricted")),
                constrained or bool(record.get("constrained")),
                response if response != "none" else last,
            )
            if identity_id not in self.cedar:
                self.cedar[identity_id] = dict(record)

    def clear(self, identity_id: str) -> None:
        with self._lock:
            self.cedar.pop(identity_id, None)
            self._recent.pop(identity_id, None)
            self._flags.pop(identity_id, None)


class Responder:
    """Carries out the response to each new finding and records it."""

    def __init__(
        self,
        engine: Engine,
        board: BehaviourBoard,
        *,
        tasks: TaskEnder | None = None,
        sink: SignalSink | None = None,
    ) -> None:
        self._engine = engine
        self._board = board
        self._tasks = tasks
        self._sink = sink
        self._revoked: set[str] = set()

    def respond(self, finding: Finding, now: datetime) -> str:
        return self.respond_all([finding], now)[0]

    def respond_all(self, made: Sequence[Finding], now: datetime) -> list[str]:
        """Respond to each new finding, in order; the responses are recorded (the finding's
        ``response``, an audit row each) in one transaction: a batch of an ingest's
        findings is one write, not one per finding (on SQLite each write waits for the
        ingest's chain lock)."""
        responses: list[str] = []
        recorded: list[tuple[Finding, str, dict[str, Any]]] = []
        for finding in made:
            response = choose_response(finding)
            details: dict[str, Any] = {
                "finding_id": finding.finding_id,
                "detector": finding.detector,
                "severity": finding.severity.value,
                "score": finding.score,
                "mode": finding.mode.value,
                "task_id": finding.task_id,
            }
            if response == "revoke":
                details.update(self._revoke(finding))
            self._board.note(finding, response)
            responses.append(response)
            if response != "none":
                recorded.append((finding, response, details))
        if recorded:
            with self._engine.begin() as connection:
                set_responses(connection, [(f.finding_id, r) for f, r, _ in recorded])
                append_audit(
                    connection,
                    [
                        {
                            "at": now,
                            "actor": ACTOR,
                            "action": f"drift.{response}",
                            "target": finding.identity_id,
                            "details": details,
                        }
                        for finding, response, details in recorded
                    ],
                )
        return responses

    def recover(self, now: datetime, *, limit: int = 100) -> list[tuple[str, str]]:
        """Carry out the responses owed by findings left ``pending`` (see the module's
        docstring); ``(finding id, response)`` of those this engine took over. (A finding
        is stored ``pending`` only when its response is not ``none``, and the response
        depends on the stored finding alone, so each one taken gets a response recorded.)"""
        with self._engine.begin() as connection:
            before = now - OWED_AFTER
            owed = owed_responses(connection, before, limit)
            taken = [f for f in owed if take_over_response(connection, f.finding_id, before, now)]
        if not taken:
            return []
        log.warning("responding to %d findings left pending by their process", len(taken))
        responses = self.respond_all(taken, now)
        return [(f.finding_id, r) for f, r in zip(taken, responses, strict=True)]

    def _revoke(self, finding: Finding) -> dict[str, Any]:
        if finding.task_id is not None:
            return self._revoke_task(finding, finding.task_id)
        # A cloud call: every open task of the identity ends.
        if self._tasks is None:
            return {"revoked": False, "revoke_error": "no_task_authority"}
        try:
            open_tasks = self._tasks.list_tasks(
                identity_id=finding.identity_id, state="open", limit=1000
            )
        except TetherError as exc:
            return {"revoked": False, "revoke_error": exc.code}
        ended = {t.id: self._revoke_task(finding, t.id) for t in open_tasks}
        return {"revoked": bool(ended), "tasks": ended}

    def _revoke_task(self, finding: Finding, task_id: str) -> dict[str, Any]:
        if task_id in self._revoked:
            return {"revoked": "already"}
        out: dict[str, Any] = {}
        if self._tasks is not None:
            try:
                self._tasks.end_task(task_id, actor=ACTOR, reason=f"drift:{finding.finding_id}")
                out["revoked"] = True
            except TetherError as exc:
                out["revoked"] = False
                out["revoke_error"] = exc.code
        self._revoked.add(task_id)
        if len(self._revoked) > 100_000:
            self._revoked.clear()
        if self._sink is not None:
            try:
                out["set_jti"] = self._sink.emit(
                    SESSION_REVOKED,
                    {"format": "opaque", "id": task_id},
                    {
                        "event_timestamp": int(finding.at.timestamp()),
                        "initiating_entity": "policy",
                        "reason_admin": {"en": finding.reason},
                        "identity": finding.identity_id,
                        "finding_id": finding.finding_id,
                    },
                )
            except Exception as exc:  # a failing receiver must not stop detection
                log.exception("emitting session-revoked for task %s failed", task_id)
                out["set_error"] = type(exc).__name__
        return out
