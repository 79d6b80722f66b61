"""Verified task tokens, cached until they expire; revocation still wins at once.

Verifying a task token costs a signature check and two store reads (its record and its
task). :class:`VerifiedTokenCache` keeps the outcome keyed by the *exact* token text (a
token that differs in one character is a different key and is verified from scratch)
until the token's ``exp``.

What a cache cannot know is that a token was revoked or its task ended since. That is
:class:`RevocationState`: the revoked ``jti``\\ s and ended tasks that have not expired
yet, in memory. Before each use of a token it reads the store's revocation version, one
indexed row over a connection it keeps open (on SQLite not even that while nothing was
committed; one round trip on PostgreSQL), and reloads the set when the version moved. A
revocation made by this process is also applied to the set directly. So a revocation, by
any process on any replica, is effective at the next decision.

On PostgreSQL with a live change feed (:mod:`tether.store.changes`, LISTEN/NOTIFY) the
round trip is the fallback: while no notice for ``revocation_version`` arrived since the
last read, and that read is younger than :data:`TRUST_NOTICES_FOR_S`, the version cannot
have moved and is not read, as SQLite's ``data_version`` spares the read there. A
revocation on another replica then takes effect when its notice arrives (milliseconds
after the commit), and at the latest :data:`TRUST_NOTICES_FOR_S` later should a notice
ever be lost; a feed that is not listening means a read before every use, as before.

On SQLite a read before each use can also be made where waiting is not allowed (an event
loop), when its owner allows it (:meth:`RevocationState.read_without_waiting`, the MCP
gateway): the file is local and in WAL mode a reader never waits for a writer, so the read
over the open connection costs a few microseconds; it is made only when no other thread is
reading, and a failure means "not known" (the caller then reads in a thread, where the
probe reconnects and fails closed).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from tether.errors import StoreUnavailable
from tether.store.changes import ChangeFeed
from tether.tokens.access_token import LEEWAY_S, TaskTokenClaims
from tether.tokens.ledger import VERSION_SQL, active_revocations
from tether.tokens.tasks import TaskRecord

log = logging.getLogger(__name__)

MAX_CACHED_TOKENS = 100_000
#: How long a read of the revocation version stands while the change feed is live and
#: announced no revocation (the bound on staleness should a notice be lost).
TRUST_NOTICES_FOR_S = 0.25
_NOTICE_TABLE = "revocation_version"


@dataclass(frozen=True)
class VerifiedToken:
    """A task token that verified, with what a decision needs to know about it.

    Attributes:
        chain: the ``jti`` of every token it descends from, then its own.
    """

    claims: TaskTokenClaims
    chain: tuple[str, ...]
    task: TaskRecord


class VerifiedTokenCache:
    """Token text -> :class:`VerifiedToken`, until the token's ``exp``; thread-safe."""

    def __init__(self, max_entries: int = MAX_CACHED_TOKENS) -> None:
        self._entries: dict[str, VerifiedToken] = {}
        self._max = max_entries
        self._lock = threading.Lock()

    def get(self, token: str, now: float) -> VerifiedToken | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        if now > entry.claims.expires_at + LEEWAY_S:
            self._entries.pop(token, None)
            return None
        return entry

    def put(self, token: str, entry: VerifiedToken, now: float) -> None:
        with self._lock:
            if len(self._entries) >= self._max:
                self._evict(now)
            self._entries[token] = entry

    def _evict(self, now: float) -> None:
        live = {k: v for k, v in self._entries.items() if v.claims.expires_at + LEEWAY_S >= now}
        if len(live) >= self._max:  # all live: drop the older half (insertion order)
            live = dict(list(live.items())[len(live) // 2 :])
        self._entries = live

    def clear(self) -> None:
        with self._lock:
            self._entries = {}

    def __len__(self) -> int:
        return len(self._entries)


class VersionProbe:
    """Reads the store's revocation version over one connection it keeps open.

    On SQLite it first asks ``PRAGMA data_version``, which changes only when another
    connection committed something: while nothing was committed, the version cannot have
    moved and the table is not read at all.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._connection: Any = None
        self._sqlite = engine.dialect.name == "sqlite"
        self._seen: tuple[int, int] | None = None  # (data_version, version) on SQLite
        self._feed: ChangeFeed | None = None
        self._noticed: tuple[int, float, int] | None = None  # (epoch, read at, version)
        self.reads_without_waiting = False

    def follow(self, feed: ChangeFeed) -> None:
        """Skip reads while ``feed`` is live and announced no revocation (PostgreSQL)."""
        self._feed = feed

    def known_without_waiting(self) -> int | None:
        """The version, known without a read (:meth:`unchanged`) or, when
        :attr:`reads_without_waiting` and the store is SQLite, read here if that cannot
        wait (the connection open, no other thread reading); else ``None``."""
        unchanged = self.unchanged()
        if unchanged is not None or not (self.reads_without_waiting and self._sqlite):
            return unchanged
        if not self._lock.acquire(blocking=False):
            return None
        try:
            return None if self._connection is None else self._read_sqlite()
        except Exception:  # not known here: the next blocking read reconnects (or fails)
            self._discard()
            return None
        finally:
            self._lock.release()

    def unchanged(self) -> int | None:
        """The version, known without a read: the change feed is live and announced no
        revocation since a read younger than :data:`TRUST_NOTICES_FOR_S`; else ``None``
        (always on SQLite, and without a live feed)."""
        feed, noticed = self._feed, self._noticed
        if feed is None or noticed is None or not feed.live:
            return None
        epoch, read_at, version = noticed
        if feed.epoch(_NOTICE_TABLE) != epoch or time.monotonic() - read_at > TRUST_NOTICES_FOR_S:
            return None
        return version

    def read(self) -> int:
        """The current version.

        Raises:
            StoreUnavailable: the store could not be read (twice).
        """
        unchanged = self.unchanged()
        if unchanged is not None:
            return unchanged
        with self._lock:
            for attempt in range(2):
                try:
                    if self._connection is None:
                        self._connection = self._open()
                    if not self._sqlite:
                        feed = self._feed
                        # The epoch before the read: a notice during the read moves it.
                        epoch = feed.epoch(_NOTICE_TABLE) if feed is not None else 0
                        read_at = time.monotonic()
                        version = self._query(VERSION_SQL)
                        self._noticed = (epoch, read_at, version)
                        return version
                    return self._read_sqlite()
                except Exception as exc:  # a dropped connection: reconnect once
                    self._discard()
                    if attempt == 1:
                        raise StoreUnavailable(
                            f"cannot read the revocation state: {type(exc).__name__}"
                        ) from exc
        raise AssertionError("unreachable")

    def _read_sqlite(self) -> int:
        """The version on SQLite, the table read only when another connection committed
        (the caller holds the lock)."""
        data_version = self._query("PRAGMA data_version")
        seen = self._seen
        if seen is not None and seen[0] == data_version:
            return seen[1]
        version = self._query(VERSION_SQL)
        self._seen = (data_version, version)
        return version

    def _query(self, sql: str) -> int:
        cursor = self._connection.cursor()
        try:
            cursor.execute(sql)
            rows = cursor.fetchall()  # to the end: SQLite then holds no read lock
        finally:
            cursor.close()
        return int(rows[0][0]) if rows else 0

    def _open(self) -> Any:
        connection = self._engine.raw_connection()
        if self._engine.dialect.name == "postgresql":
            # Each read its own transaction; never "idle in transaction" between decisions.
            connection.dbapi_connection.autocommit = True  # type: ignore[union-attr]
        return connection

    def _discard(self) -> None:
        connection, self._connection = self._connection, None
        self._seen = self._noticed = None
        if connection is not None:
            try:
                # Not back to the pool: its autocommit setting is this probe's alone.
                connection.invalidate()
            except Exception:  # already broken
                log.debug("closing the revocation probe connection failed", exc_info=True)

    def close(self) -> None:
        with self._lock:
            self._discard()


class RevocationState:
    """Revoked tokens and ended tasks that have not expired yet; thread-safe.

    Args:
        engine: the store.
        clock: seconds since the epoch (tests move it).
    """

    def __init__(self, engine: Engine, *, clock: Callable[[], float] | None = None) -> None:
        self._engine = engine
        self._probe = VersionProbe(engine)
        self._clock = clock or (lambda: datetime.now(UTC).timestamp())
        self._lock = threading.Lock()
        self._version: int | None = None
        self._tokens: dict[str, float] = {}  # jti -> until (epoch seconds)
        self._tasks: dict[str, float] = {}  # task id -> until

    def follow(self, feed: ChangeFeed) -> None:
        """Let the change feed spare version reads (:meth:`VersionProbe.follow`)."""
        self._probe.follow(feed)

    def refresh(self) -> None:
        """Reload when the store's version moved since the last load.

        Raises:
            StoreUnavailable: the version cannot be read (callers fail closed).
        """
        version = self._probe.read()
        if version == self._version:
            return
        with self._lock:
            if version == self._version:
                return
            now = datetime.fromtimestamp(self._clock(), UTC)
            with self._engine.connect() as connection:
                entries = active_revocations(connection, now)
            tokens = {e.target: e.until.timestamp() for e in entries if e.kind == "token"}
            ended = {e.target: e.until.timestamp() for e in entries if e.kind == "task"}
            # Revocations this process applied itself stay until the store shows them.
            self._tokens, self._tasks, self._version = tokens, ended, version

    def note(self, kind: str, target: str, until: float) -> None:
        """Apply a revocation this process just committed, without waiting for a reload."""
        with self._lock:
            table = self._tasks if kind == "task" else self._tokens
            table = {**table, target: until}
            if kind == "task":
                self._tasks = table
            else:
                self._tokens = table

    def read_without_waiting(self, allowed: bool) -> None:
        """Let :meth:`current` read the version on SQLite where waiting is not allowed
        (:meth:`VersionProbe.known_without_waiting`): for an owner that decides on an event
        loop and whose store is local (the MCP gateway with ``--db``)."""
        self._probe.reads_without_waiting = allowed

    def current(self) -> bool:
        """Whether the revoked tokens and ended tasks held are known to be the store's
        without waiting for it (what :meth:`refresh` would find them: its read is spared,
        or made here when :meth:`read_without_waiting` allows)."""
        version = self._version
        return version is not None and self._probe.known_without_waiting() == version

    def task_ended(self, task_id: str) -> bool:
        return task_id in self._tasks

    def revoked(self, chain: tuple[str, ...]) -> str | None:
        """The first revoked ``jti`` of a token's chain, or ``None``."""
        tokens = self._tokens
        for jti in chain:
            if jti in tokens:
                return jti
        return None

    @property
    def version(self) -> int | None:
        return self._version

    def close(self) -> None:
        self._probe.close()
