"""Failed sign-ins, counted per client address: past ``MAX_FAILURES`` within ``WINDOW_S``
the address is refused (429, ``Retry-After``) until the oldest failure leaves the window,
before its token is even verified. A success does not reset the count (a guesser who holds
one good token must not earn more guesses with it).

In memory, one process; addresses that went quiet are dropped when the table grows, so a
flood of distinct addresses cannot grow it without bound.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

MAX_FAILURES = 10
WINDOW_S = 300.0
MAX_ADDRESSES = 50_000


class SigninThrottle:
    def __init__(
        self,
        *,
        max_failures: int = MAX_FAILURES,
        window_s: float = WINDOW_S,
        max_addresses: int = MAX_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_failures = max_failures
        self._window_s = window_s
        self._max_addresses = max_addresses
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def wait_s(self, address: str) -> int:
        """Whole seconds ``address`` must wait before trying again; 0: it may try now."""
        now = self._clock()
        with self._lock:
            failures = self._recent(address, now)
            if failures is None or len(failures) < self._max_failures:
                return 0
            return max(1, math.ceil(failures[0] + self._window_s - now))

    def failed(self, address: str) -> None:
        now = self._clock()
        with self._lock:
            failures = self._recent(address, now)
            if failures is None:
                if len(self._failures) >= self._max_addresses:
                    self._prune(now)
                failures = self._failures[address] = deque(maxlen=self._max_failures)
            failures.append(now)

    def _recent(self, address: str, now: float) -> deque[float] | None:
        failures = self._failures.get(address)
        while failures and failures[0] <= now - self._window_s:
            failures.popleft()
        return failures

    def _prune(self, now: float) -> None:
        horizon = now - self._window_s
        self._failures = {a: f for a, f in self._failures.items() if f and f[-1] > horizon}
        if len(self._failures) >= self._max_addresses:
            self._failures.clear()
