"""Per-caller rate limits across replicas of one PostgreSQL store.

Each replica keeps its token buckets in memory (:class:`~tether.callers.RateLimiter`) and,
every :data:`SHARE_EVERY_S`, exchanges counts through the ``rate_usage`` table
(:mod:`tether.store.rate_tables`): it adds what it admitted per caller in the current
second and reads what the other replicas admitted in the last seconds (as far back as a
bucket takes to refill, at most a minute); what they admitted since the last exchange
is debited from its own buckets. So a caller's limit is one limit, however its requests
are spread over the replicas, the way Kong's and Envoy's cluster-wide limits work with a
sync interval rather than a database round trip per request.

Bounds: a replica learns of the others' requests up to one interval late, so a caller
can exceed its limit by what the replicas admit in one interval (at most
``replicas * rate * 0.2 s`` above the burst), and pays it back by waiting: a bucket may
go to ``-burst``. A replica that cannot reach the store keeps limiting alone, with its own
counts, and sends them once it can. On SQLite (one server) nothing is shared.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Engine, and_, delete, func, select
from sqlalchemy.dialects import postgresql

from tether.callers.rate_limit import RateLimiter
from tether.store.rate_tables import rate_usage

#: How often a replica exchanges its counts.
SHARE_EVERY_S = 0.2
#: Rows older than this many seconds are deleted (by any replica: a replica that stopped
#: leaves its rows behind).
_KEEP_S = 90
_CLEANUP_EVERY_S = 10.0


class RateShare:
    """One replica's side of the shared counts; :meth:`exchange` does I/O (a thread)."""

    def __init__(
        self,
        store: Engine,
        limiter: RateLimiter,
        *,
        replica: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if store.dialect.name != "postgresql":
            raise ValueError("rate limits are shared through PostgreSQL only")
        self._store = store
        self.replica = replica or secrets.token_hex(8)
        self._clock = clock
        # How far back the others' counts still matter: a bucket refills in burst/rate s.
        self._horizon_s = min(60, math.ceil(limiter.burst / limiter.rate_per_s) + 1)
        # (caller key, second) -> what the other replicas had admitted at the last exchange.
        self._known: dict[tuple[str, int], int] = {}
        # The first exchange only learns what the others had admitted: a replica starting
        # (a deploy, a scale-out) starts from full buckets, as one server does.
        self._started = False
        self._cleaned_at = 0.0

    def exchange(self, admitted: Mapping[str, int]) -> dict[str, int]:
        """Add this replica's ``admitted`` (caller key -> requests since the last
        exchange) to the current second; what the others admitted since the last exchange,
        per caller key (to debit)."""
        now = self._clock()
        second = int(now)
        others = (
            select(rate_usage.c.caller_key, rate_usage.c.window_s, func.sum(rate_usage.c.admitted))
            .where(
                and_(
                    rate_usage.c.replica != self.replica,
                    rate_usage.c.window_s >= second - self._horizon_s,
                )
            )
            .group_by(rate_usage.c.caller_key, rate_usage.c.window_s)
        )
        with self._store.begin() as connection:
            if admitted:
                insert: Any = postgresql.insert(rate_usage)
                connection.execute(
                    insert.on_conflict_do_update(
                        index_elements=["caller_key", "replica", "window_s"],
                        set_={"admitted": rate_usage.c.admitted + insert.excluded.admitted},
                    ),
                    [
                        {
                            "caller_key": key[:400],
                            "replica": self.replica,
                            "window_s": second,
                            "admitted": count,
                        }
                        for key, count in admitted.items()
                    ],
                )
            rows = connection.execute(others).all()
            if now - self._cleaned_at >= _CLEANUP_EVERY_S:
                self._cleaned_at = now
                connection.execute(
                    delete(rate_usage).where(rate_usage.c.window_s < second - _KEEP_S)
                )
        debits: dict[str, int] = {}
        known: dict[tuple[str, int], int] = {}
        for key, window_s, total in rows:
            total = int(total)
            new = total - self._known.get((key, window_s), 0)
            if new > 0:
                debits[key] = debits.get(key, 0) + new
            known[(key, window_s)] = total
        self._known = known
        if not self._started:
            self._started = True
            return {}
        return debits
