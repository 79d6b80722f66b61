"""In-memory versions of tether's ports, for users' tests and ours.

A :class:`~tether.decider.Decider` over them decides exactly as a served tether does
(the same Cedar policies, the same ``context.tether``), with no store and no thread::

    estate = FixedEstate(CompiledEstate(policies=specs, entities=entities))
    sink = MemorySink()
    decider = Decider(estate, sink, NoTickets(), {})
    decider.evaluate(request).decision.outcome
    sink.rows  # what would have been recorded

* :class:`FixedEstate`: a live estate that never reloads (``offboard`` an identity);
* :class:`MemorySink`: a :class:`~tether.store.sink.DecisionSink` that keeps its rows in a
  list; ``fail(problem)`` makes it unhealthy (its rows then count as lost) until
  ``recover()``;
* :class:`NoTickets`: approvals that never issue a ticket (``approval_required`` stays
  as the policy says), counting what it was asked to settle;
* :class:`~tether.identity.InMemoryJwksFetcher`: JWKS and discovery documents from a dict.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tether.approvals import Settled
from tether.estate.compiled import EMPTY_ESTATE, CompiledEstate
from tether.identity import InMemoryJwksFetcher
from tether.live import PolicySnapshot
from tether.policy import Decision, DecisionRequest

__all__ = ["FixedEstate", "InMemoryJwksFetcher", "MemorySink", "NoTickets"]


class FixedEstate:
    """An :class:`~tether.decider.EstateView` of one compiled estate."""

    def __init__(
        self,
        estate: CompiledEstate = EMPTY_ESTATE,
        *,
        revision: int | None = 1,
        offboarded: Iterable[str] = (),
    ) -> None:
        self.snapshot = PolicySnapshot.of(revision, estate)
        self.offboarded = frozenset(offboarded)

    def offboard(self, identity_id: str) -> None:
        self.offboarded = self.offboarded | {identity_id}


class MemorySink:
    """A :class:`~tether.store.sink.DecisionSink` keeping rows in :attr:`rows`."""

    def __init__(self) -> None:
        self.rows: list[Mapping[str, Any]] = []
        self._lost = 0
        self._problem: str | None = None

    def fail(self, problem: str = "the store is unreachable") -> None:
        """From now on rows are lost and the sink is unhealthy."""
        self._problem = problem

    def recover(self) -> None:
        self._problem = None

    def record(self, row: Mapping[str, Any]) -> None:
        if self._problem is None:
            self.rows.append(dict(row))
        else:
            self._lost += 1

    def flush(self, timeout: float = 10.0) -> None:
        """Nothing is ever pending."""

    def close(self) -> None:
        """Nothing to stop."""

    @property
    def written(self) -> int:
        return len(self.rows)

    @property
    def lost(self) -> int:
        return self._lost

    @property
    def healthy(self) -> bool:
        return self._problem is None

    @property
    def problem(self) -> str | None:
        return self._problem


class NoTickets:
    """An :class:`~tether.decider.ApprovalSettler` that issues no ticket."""

    def __init__(self) -> None:
        self.asked: list[tuple[DecisionRequest, Decision]] = []

    def settle(
        self, request: DecisionRequest, decision: Decision, *, decision_id: str, caller: str | None
    ) -> Settled:
        self.asked.append((request, decision))
        return Settled(decision)

    def reuse(
        self, request: DecisionRequest, decision: Decision, *, caller: str | None
    ) -> Settled | None:
        return None  # every ticket is settled (and counted in ``asked``)
