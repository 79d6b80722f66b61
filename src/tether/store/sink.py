"""The port decisions are recorded through: :class:`DecisionSink`.

Two implementations: :class:`~tether.store.decision_log.DecisionLog` (a writer thread in
this process) and :class:`~tether.worker.WorkerLink` (rows piped to a worker process that
commits them). Both count the same way, so readiness and fail-closed read one contract:

* ``written``: rows **committed** to the store (not rows handed over or queued);
* ``lost``: rows that will never be stored (even their error row failed: the store was
  down), each also logged;
* ``healthy``: ``False`` while rows are being lost or the store is unreachable; ``True``
  again after the next successful commit. ``problem`` says why, for operators.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class DecisionSink(Protocol):
    """Where a server hands its decision rows (dicts with the columns of ``decisions``)."""

    def record(self, row: Mapping[str, Any]) -> None:
        """Queue one row (no I/O: called on the event loop); never raises for its content."""

    def flush(self, timeout: float = 10.0) -> None:
        """Block until everything recorded before this call is committed (or lost)."""

    def close(self) -> None:
        """Commit what is queued and stop."""

    @property
    def written(self) -> int:
        """Rows committed."""

    @property
    def lost(self) -> int:
        """Rows that could not be stored at all."""

    @property
    def healthy(self) -> bool:
        """Whether decisions are being recorded right now."""

    @property
    def problem(self) -> str | None:
        """Why not (``None`` when healthy)."""
