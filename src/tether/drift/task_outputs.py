"""What one task's calls returned, as live detection keeps it for provenance: bounded.

A task's results were kept in a list that grew with every call, and every call of the
task copied and searched all of it (the set of reported calls, the run record): an agent
task of 10,000 calls cost detection about 1 ms a call more than its first did, and its
memory was never given back while the task stayed among the recent ones. Now the last
:data:`MAX_OUTPUTS_PER_TASK` results are kept, with the set of calls they answer kept
beside them. Once older ones are dropped the record is no longer complete, so a value
found in none of the kept results is ``unknown`` (it may have come from a forgotten one),
never ``unsourced``: forgetting makes no finding of its own.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from tether.drift.provenance import RunRecord, ToolOutput

#: Results kept per task: ten times the calls a history holds by default (50).
MAX_OUTPUTS_PER_TASK = 500


class TaskOutputs:
    """The results of one task's calls, oldest first, at most ``limit`` of them."""

    __slots__ = ("_kept", "_outputs", "_refs", "forgot")

    def __init__(self, limit: int = MAX_OUTPUTS_PER_TASK) -> None:
        self._outputs: deque[ToolOutput] = deque(maxlen=limit)
        self._refs: set[str] = set()
        # The outputs as a tuple, made once for all the records until the next result
        # (a call's own record and its result's are made from the same outputs).
        self._kept: tuple[ToolOutput, ...] | None = None
        self.forgot = False
        """Whether results were dropped to stay within the limit."""

    def __len__(self) -> int:
        return len(self._outputs)

    def __contains__(self, ref: object) -> bool:
        return ref in self._refs

    def add(self, output: ToolOutput) -> None:
        outputs = self._outputs
        if len(outputs) == outputs.maxlen:
            self._refs.discard(outputs[0].ref)
            self.forgot = True
        outputs.append(output)
        self._refs.add(output.ref)
        self._kept = None

    def record(self, ran: Iterable[str]) -> RunRecord:
        """The run record before a call, given the refs of the earlier calls that ran."""
        refs = self._refs
        complete = not self.forgot and all(ref in refs for ref in ran)
        kept = self._kept
        if kept is None:
            kept = self._kept = tuple(self._outputs)
        return RunRecord(kept, complete)
