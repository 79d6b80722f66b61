"""What the decision core does with an ``approval_required`` outcome.

:meth:`ApprovalService.settle` is called by ``Tether.evaluate`` only when the policies
answer ``approval_required`` (the hot path of every other decision never reaches it):

* without ``context.approval_id``: a pending approval bound to exactly this request is
  stored (committed before the answer, so an approver sees it at once) and the answer
  carries ``context.approval = {id, status: pending, expires_at, poll}``;
* with ``context.approval_id`` (the PEP's retry): an approval that is approved, bound to
  this request and this PEP, unexpired and unused is used, once, and the answer is
  ``allow`` with the reason ``approval:<id>``; otherwise a ``deny`` whose reason and
  ``error_code`` say why (``approval_used``, ``approval_mismatch``, ``approval_denied``,
  ``approval_expired``, ``approval_unknown``), or, while it is still pending,
  ``approval_required`` with the same ticket.

An approval never turns a ``deny`` into an ``allow``: when the policies deny the retry
(a forbid added since, a revoked task token), the approval is not even looked at.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from tether.approvals._binding import binding_hash
from tether.approvals._deciding import decide
from tether.approvals._model import Approval, Verdict
from tether.approvals._store import APPROVAL_PENDING, ApprovalStore
from tether.policy import Decision, DecisionRequest, Outcome

#: Where the PEP names the approval it retries with.
APPROVAL_ID = "approval_id"
#: The requester recorded when the service is called without a caller (Python API).
LOCAL_CALLER = "local"


@dataclass(frozen=True)
class Settled:
    """The decision after approvals had their say, and the ticket it carries (if any)."""

    decision: Decision
    approval: Mapping[str, Any] | None = None


def approval_reason(approval_id: str) -> str:
    return f"approval:{approval_id}"


TICKET_REUSE_S = 2.0
MAX_TICKETS = 10_000


class ApprovalService:
    """Approvals of one store, with the configured expiry."""

    def __init__(
        self,
        engine: Engine,
        *,
        ttl_s: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = ApprovalStore(engine)
        self.ttl = timedelta(seconds=ttl_s)
        self.now = clock
        # The same request asked again by the same caller while its approval is pending gets
        # the same ticket (one approval for the approver, not one per retry), for up to
        # TICKET_REUSE_S; then the store is asked again (a new ticket).
        self._tickets: dict[tuple[str, str], tuple[float, Approval]] = {}

    def settle(
        self, request: DecisionRequest, decision: Decision, *, decision_id: str, caller: str | None
    ) -> Settled:
        """Turn an ``approval_required`` decision into a ticket, or use the approval."""
        if decision.outcome is not Outcome.APPROVAL_REQUIRED:
            return Settled(decision)
        now = self.now()
        requester = caller or LOCAL_CALLER
        binding = binding_hash(request)
        if APPROVAL_ID not in request.context:
            reused = self._reused(binding, requester, now)
            if reused is not None:
                return Settled(decision, reused.ticket(now))
            approval = self.store.create(
                request,
                reasons=decision.reasons,
                requested_by=requester,
                decision_id=decision_id,
                binding=binding,
                expires_at=now + self.ttl,
                now=now,
            )
            if len(self._tickets) > MAX_TICKETS:
                self._tickets.clear()
            self._tickets[(binding, requester)] = (time.monotonic() + TICKET_REUSE_S, approval)
            return Settled(decision, approval.ticket(now))
        self._forget(str(request.context[APPROVAL_ID]))
        retry = self.store.use(
            request.context[APPROVAL_ID],
            binding=binding,
            requested_by=requester,
            decision_id=decision_id,
            now=now,
        )
        if retry.code is None:
            assert retry.approval is not None
            # Approval lifts the approval forbids only: what the permits oblige still holds.
            outcome = Outcome.CONSTRAIN if decision.obligations else Outcome.ALLOW
            reason = approval_reason(retry.approval.id)
            return Settled(Decision(outcome, (reason,), decision.obligations))
        if retry.code == APPROVAL_PENDING:
            assert retry.approval is not None
            return Settled(decision, retry.approval.ticket(now))
        return Settled(
            Decision(Outcome.DENY, (retry.code,), errors=(retry.message,), error_code=retry.code)
        )

    def reuse(
        self, request: DecisionRequest, decision: Decision, *, caller: str | None
    ) -> Settled | None:
        """What :meth:`settle` answers when it needs no store I/O: the pending ticket handed
        to this caller for this very request moments ago (``None``: ask :meth:`settle`).
        Safe on an event loop."""
        if decision.outcome is not Outcome.APPROVAL_REQUIRED:
            return Settled(decision)
        if APPROVAL_ID in request.context:  # a retry uses its approval: a store write
            return None
        now = self.now()
        reused = self._reused(binding_hash(request), caller or LOCAL_CALLER, now)
        return None if reused is None else Settled(decision, reused.ticket(now))

    def _reused(self, binding: str, requester: str, now: datetime) -> Approval | None:
        reused = self._tickets.get((binding, requester))
        if reused is not None and reused[0] > time.monotonic() and reused[1].expires_at > now:
            return reused[1]
        return None

    def _forget(self, approval_id: str) -> None:
        """Stop handing out a ticket once it is decided or used (in this process)."""
        for key, (_, approval) in list(self._tickets.items()):
            if approval.id == approval_id:
                self._tickets.pop(key, None)

    def decide(
        self,
        approval_id: str,
        verdict: Verdict,
        *,
        approver_id: str,
        comment: str | None = None,
        via: str = "http",
    ) -> Approval:
        """Record a verdict (see :func:`tether.approvals.decide`)."""
        self._forget(approval_id)
        return decide(
            self.store.engine,
            approval_id,
            verdict,
            approver_id=approver_id,
            comment=comment,
            via=via,
            now=self.now(),
        )
