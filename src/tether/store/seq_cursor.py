"""Following a table by its sequence numbers without skipping late commits.

A reader that asks for ``seq > last`` misses a row whose number was taken before ``last``
but whose transaction committed after the read: PostgreSQL hands out sequence numbers at
insert, and two writers (two ingests, a server and the CLI) commit in either order. A
:class:`SeqCursor` remembers the numbers it jumped over (*holes*) and asks for them again
until they appear or :data:`HOLE_TTL_S` passes (a rolled-back insert leaves a hole for
good). SQLite has one writer at a time, so there holes only come from rollbacks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import ColumnElement, or_

#: How long a skipped sequence number is asked for again (a transaction open longer
#: than this is not waited for).
HOLE_TTL_S = 10.0
#: At most this many holes are remembered (the oldest are forgotten first).
MAX_HOLES = 10_000


class SeqCursor:
    """Where a reader of a table is: the highest number read, and the holes below it."""

    def __init__(self, last: int = 0, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.last = last
        self._clock = clock
        self._holes: dict[int, float] = {}  # sequence number -> when it was skipped

    @property
    def holes(self) -> frozenset[int]:
        return frozenset(self._holes)

    def unread(self, column: Any) -> ColumnElement[bool]:
        """The condition of the rows not read yet: newer than the last, or a hole."""
        self._expire()
        newer: ColumnElement[bool] = column > self.last
        if not self._holes:
            return newer
        return or_(newer, column.in_(sorted(self._holes)))

    def advance(self, read: Iterable[int]) -> None:
        """Note the sequence numbers of the rows just read (in any order)."""
        now = self._clock()
        numbers = sorted(set(read))
        for number in numbers:
            if number <= self.last:
                self._holes.pop(number, None)
                continue
            # A gap wider than MAX_HOLES (a bulk ingest rolled back) keeps only its top.
            for skipped in range(max(self.last + 1, number - MAX_HOLES), number):
                self._holes[skipped] = now
            self.last = number
        while len(self._holes) > MAX_HOLES:  # kept in ascending order: the oldest first
            self._holes.pop(next(iter(self._holes)))

    def _expire(self) -> None:
        cutoff = self._clock() - HOLE_TTL_S
        for number in [n for n, at in self._holes.items() if at < cutoff]:
            del self._holes[number]
