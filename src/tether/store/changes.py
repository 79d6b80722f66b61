"""Change notices between replicas: PostgreSQL LISTEN/NOTIFY on the ``tether_changes`` channel.

Every replica caches shared state (revoked tokens, the compiled estate, the caller
directory, signing keys, offboarded identities) and checks the store's versions of it on
an interval, or, for revocations, before each use. On PostgreSQL the store's own triggers
(migration ``00ch``) send ``NOTIFY tether_changes, '<schema>.<table>'`` when a commit
changes one of those tables; :class:`ChangeFeed` LISTENs on one connection of its own and
tells the subscribers of that table at once, so a change reaches every replica in
milliseconds instead of an interval. The version checks stay what is true: a notice only
says "look now". When the feed cannot listen (the connection dropped), :attr:`ChangeFeed.live`
is false and everything falls back to checking on its interval; on every (re)connect each
subscriber is told once, because notices sent while nobody listened are lost.

Why LISTEN/NOTIFY and not a poll: it needs nothing beside the database replicas already
share, it is transactional (a notice is delivered after the commit, never for a rolled
back change) and psycopg 3 reads it without a busy loop (``Connection.notifies``).
Notices carry the schema, so stores that share a database in different schemas (the test
suite does) ignore each other's.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable

import psycopg
from sqlalchemy import Engine

log = logging.getLogger(__name__)

CHANNEL = "tether_changes"
# How long the listener blocks on the socket before it looks at its stop flag.
_WAIT_S = 0.5
_RECONNECT_BACKOFF_S = (0.1, 0.5, 1.0, 2.0)

Subscriber = Callable[[], object]


class ChangeFeed:
    """One LISTEN connection to a PostgreSQL store and the subscribers of its tables.

    Subscribers run on the feed's thread: they should only note the change or wake
    whoever does the work (a :class:`~tether.composition.Refresher`), never block.
    """

    def __init__(self, engine: Engine) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError("change notices need a PostgreSQL store")
        self._conninfo = engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False
        )
        self._subscribers: dict[str, list[Subscriber]] = defaultdict(list)
        self._epochs: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._thread: threading.Thread | None = None
        self.notices = 0

    @property
    def live(self) -> bool:
        """Whether the feed is listening now (else changes are seen on intervals only)."""
        return self._connected.is_set()

    def epoch(self, table: str) -> int:
        """A number that moves whenever ``table`` may have changed: a notice for it, or a
        (re)connect or disconnect of the feed."""
        return self._epochs[table] + self._epochs["*"]

    def subscribe(self, tables: Iterable[str], subscriber: Subscriber) -> None:
        with self._lock:
            for table in tables:
                self._subscribers[table].append(subscriber)

    def start(self, *, wait_s: float = 5.0) -> None:
        """Start listening; wait up to ``wait_s`` until the feed is live."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="tether-changes", daemon=True)
            self._thread.start()
        if not self._connected.wait(wait_s):
            log.warning("change notices are not received yet; versions are checked on intervals")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # --- the listener thread ---------------------------------------------------------------

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            wait = _RECONNECT_BACKOFF_S[min(failures, len(_RECONNECT_BACKOFF_S) - 1)]
            try:
                self._listen()
            except Exception as exc:
                failures += 1
                if not self._stop.is_set():
                    log.warning(
                        "change notices: %s; checking versions on their interval, "
                        "reconnecting in %.1f s",
                        type(exc).__name__,
                        wait,
                    )
            else:
                failures = 0
            self._lost()
            self._stop.wait(wait)

    def _listen(self) -> None:
        # A listener waits in silence: TCP keepalives (and a bound on unacknowledged
        # writes) tell a dead server or a half-open connection from a quiet one in ~20 s,
        # where the kernel's defaults would take hours.
        with psycopg.connect(
            self._conninfo,
            autocommit=True,
            connect_timeout=5,
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=3,
            keepalives_count=3,
            tcp_user_timeout=20_000,
        ) as connection:
            row = connection.execute("SELECT current_schema()").fetchone()
            prefix = f"{row[0] if row else 'public'}."
            connection.execute(f"LISTEN {CHANNEL}")
            self._connected.set()
            self._tell_everyone()  # what changed while nobody listened
            while not self._stop.is_set():
                for notice in connection.notifies(timeout=_WAIT_S):
                    if notice.payload.startswith(prefix):
                        self._tell(notice.payload[len(prefix) :])

    def _lost(self) -> None:
        if self._connected.is_set():
            self._connected.clear()
            self._tell_everyone()

    def _tell_everyone(self) -> None:
        self._epochs["*"] += 1
        with self._lock:
            subscribers = {s for group in self._subscribers.values() for s in group}
        self._call(subscribers)

    def _tell(self, table: str) -> None:
        self.notices += 1
        self._epochs[table] += 1
        with self._lock:
            subscribers = list(self._subscribers.get(table, ()))
        self._call(subscribers)

    @staticmethod
    def _call(subscribers: Iterable[Subscriber]) -> None:
        for subscriber in subscribers:
            try:
                subscriber()
            except Exception:  # one subscriber's failure must not deafen the others
                log.exception("a change subscriber failed")


def change_feed_for(engine: Engine) -> ChangeFeed | None:
    """A feed for a PostgreSQL store (not started: subscribe, then :meth:`~ChangeFeed.start`),
    ``None`` for SQLite."""
    return ChangeFeed(engine) if engine.dialect.name == "postgresql" else None
