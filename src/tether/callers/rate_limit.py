"""Per-caller rate limits: one token bucket per key, in memory.

A bucket holds at most ``burst`` tokens and refills at ``rate_per_s``; each request takes
one. :meth:`RateLimiter.take` answers ``None`` (go ahead) or the seconds to wait. It is
called from the server's event loop only, so it takes no lock. Buckets of callers that
went quiet are dropped when the table grows, so a flood of distinct keys cannot grow it
without bound.

Across replicas (:mod:`tether.callers.rate_share`), a limiter that is ``counting`` counts
what it admits per key, and what the other replicas admitted is :meth:`debit`-ed from its
buckets: every replica's bucket is then a model of one bucket for the caller, whichever
replica its requests reach.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

_MAX_BUCKETS = 100_000


class RateLimiter:
    """Token buckets by key (a caller id, or an address for refused requests)."""

    def __init__(
        self,
        rate_per_s: float,
        burst: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_buckets: int = _MAX_BUCKETS,
    ) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("a rate limit needs a positive rate and a burst of at least 1")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._clock = clock
        self._max_buckets = max_buckets
        # key -> (tokens left, time of the last update)
        self._buckets: dict[str, tuple[float, float]] = {}
        # Requests admitted per key since the last drain, when shared across replicas.
        self.counting = False
        self._admitted: dict[str, int] = {}

    def take(self, key: str) -> float | None:
        """Take one token for ``key``: ``None`` if allowed, else seconds until one is free."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_buckets:
                self._prune(now)
            self._buckets[key] = (self.burst - 1, now)
            if self.counting:
                self._admitted[key] = self._admitted.get(key, 0) + 1
            return None
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate_per_s)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            if self.counting:
                self._admitted[key] = self._admitted.get(key, 0) + 1
            return None
        self._buckets[key] = (tokens, now)
        return (1 - tokens) / self.rate_per_s

    def drain_admitted(self) -> dict[str, int]:
        """The requests admitted per key since the last drain (when ``counting``)."""
        admitted, self._admitted = self._admitted, {}
        return admitted

    def debit(self, key: str, tokens: float) -> None:
        """Take ``tokens`` that were spent elsewhere (another replica admitted them) from
        ``key``'s bucket. It may go below zero, down to ``-burst``: requests admitted
        elsewhere before this replica knew of them are paid back by waiting."""
        now = self._clock()
        bucket = self._buckets.get(key)
        left = (
            self.burst
            if bucket is None
            else min(self.burst, bucket[0] + (now - bucket[1]) * self.rate_per_s)
        )
        if bucket is None and len(self._buckets) >= self._max_buckets:
            self._prune(now)
        self._buckets[key] = (max(-self.burst, left - tokens), now)

    def _prune(self, now: float) -> None:
        # Buckets that are full again carry no state worth keeping.
        full = [
            k
            for k, (t, at) in self._buckets.items()
            if t + (now - at) * self.rate_per_s >= self.burst
        ]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= self._max_buckets:
            self._buckets.clear()


def retry_after_seconds(wait_s: float) -> int:
    """The ``Retry-After`` value for a wait: whole seconds, at least 1."""
    return max(1, math.ceil(wait_s))
