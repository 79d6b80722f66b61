"""The verified-token cache and the revocation state shared through the store."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tether.errors import StoreUnavailable
from tether.services import Tether
from tether.tokens import TaskAuthority, VerifiedTokenCache
from tether.tokens.access_token import TaskTokenClaims
from tether.tokens.cache import RevocationState, VerifiedToken, VersionProbe
from tether.tokens.tasks import TaskIntent, TaskRecord
from token_support import Clock, WorkloadKey, delegate, issue, open_task


def entry(jti: str, expires_at: int) -> VerifiedToken:
    now = datetime.now(UTC)
    task = TaskRecord("t", "bot", "agent", None, "p", TaskIntent(("a",), ()), "open", now, now, "x")
    claims = TaskTokenClaims("i", "bot", "tether", "t", jti, ("a",), 0, expires_at)
    return VerifiedToken(claims, (jti,), task)


def test_entries_live_until_the_token_expires() -> None:
    cache = VerifiedTokenCache()
    cache.put("token-a", entry("a", 100), now=0)
    assert cache.get("token-a", now=105) is not None  # within the skew
    assert cache.get("token-a", now=106) is None
    assert len(cache) == 0
    assert cache.get("token-b", now=0) is None


def test_the_cache_is_bounded_dropping_expired_entries_first() -> None:
    cache = VerifiedTokenCache(max_entries=4)
    cache.put("old-1", entry("o1", 10), now=0)
    cache.put("old-2", entry("o2", 10), now=0)
    cache.put("live-1", entry("l1", 1000), now=0)
    cache.put("live-2", entry("l2", 1000), now=0)
    cache.put("live-3", entry("l3", 1000), now=100)
    assert len(cache) == 3
    for i in range(10):
        cache.put(f"more-{i}", entry(f"m{i}", 1000), now=100)
    assert len(cache) <= 4
    assert cache.get("more-9", now=100) is not None


def test_a_revocation_by_another_process_wins_at_the_next_check(
    tether: Tether, workload_key: WorkloadKey, clock: Clock
) -> None:
    """Two authorities on one store stand for two servers (or a server and the CLI)."""
    here = tether.tasks
    there = TaskAuthority(
        tether.engine, tether.settings, tether.keys, lambda: tether.snapshot.estate, clock=clock
    )
    try:
        task = open_task(here, workload_key)
        root = issue(here, workload_key, task.id)
        child = delegate(here, workload_key, root.token)
        other = issue(here, workload_key, open_task(here, workload_key).id)
        for token in (root.token, child.token, other.token):
            assert there.inspect(token).verified is not None  # cached there
        version = there.revocations.version
        here.revoke_jti(root.claims.jti, actor="cli")
        assert there.inspect(child.token).error.code == "token_revoked"  # type: ignore[union-attr]
        assert there.revocations.version != version
        assert there.inspect(other.token).verified is not None
        there.end_task(task.id, actor="cli")
        assert here.inspect(root.token).error.code == "task_ended"  # type: ignore[union-attr]
    finally:
        there.close()


def test_the_revocation_state_forgets_what_expired(
    tether: Tether, workload_key: WorkloadKey, clock: Clock
) -> None:
    task = open_task(tether.tasks, workload_key, ttl="2m")
    root = issue(tether.tasks, workload_key, task.id)
    tether.tasks.revoke_jti(root.claims.jti, actor="cli")
    tether.tasks.end_task(task.id, actor="cli")
    state = RevocationState(tether.engine, clock=clock)
    try:
        state.refresh()
        assert state.revoked((root.claims.jti,)) == root.claims.jti
        assert state.task_ended(task.id)
        clock.advance(3600)
        later = RevocationState(tether.engine, clock=clock)
        later.refresh()
        assert later.revoked((root.claims.jti,)) is None
        assert not later.task_ended(task.id)
        later.close()
    finally:
        state.close()


def test_the_version_probe_reconnects_once_then_fails_closed(tether: Tether) -> None:
    probe = VersionProbe(tether.engine)
    try:
        assert probe.read() == 0
        probe._connection.dbapi_connection.close()  # a dropped connection
        assert probe.read() == 0
        probe._open = lambda: (_ for _ in ()).throw(OSError("down"))  # type: ignore[method-assign]
        probe._discard()
        with pytest.raises(StoreUnavailable, match="revocation state"):
            probe.read()
    finally:
        probe.close()


def test_a_version_read_costs_no_transaction_left_open(tether: Tether) -> None:
    probe = VersionProbe(tether.engine)
    try:
        for _ in range(3):
            probe.read()
        # A write by another connection is not blocked by the probe (SQLite's write lock,
        # PostgreSQL's idle-in-transaction): revoking still commits.
        from tether.tokens.ledger import bump_version

        with tether.engine.begin() as connection:
            bump_version(connection)
        assert probe.read() == 1
    finally:
        probe.close()


def test_reads_without_waiting_tell_the_next_check_of_a_revocation_elsewhere(
    sqlite_tether: Tether, workload_key: WorkloadKey, clock: Clock
) -> None:
    """On SQLite, allowed by its owner: the version read where waiting is not allowed, so
    an event loop still sees each revocation at the very next check."""
    here = sqlite_tether.tasks
    there = TaskAuthority(
        sqlite_tether.engine,
        sqlite_tether.settings,
        sqlite_tether.keys,
        lambda: sqlite_tether.snapshot.estate,
        clock=clock,
    )
    try:
        task = open_task(here, workload_key)
        token = issue(here, workload_key, task.id).token
        assert here.inspect(token).verified is not None  # verified, revocations loaded
        assert here.inspect_in_memory(token) is None  # SQLite: a read, not allowed
        here.revocations.read_without_waiting(True)
        assert here.inspect_in_memory(token).verified is not None  # type: ignore[union-attr]
        there.end_task(task.id, actor="cli")
        assert here.inspect_in_memory(token) is None  # the version moved: load in a thread
        assert here.inspect(token).error.code == "task_ended"  # type: ignore[union-attr]
        in_memory = here.inspect_in_memory(token)
        assert in_memory is not None
        assert in_memory.error.code == "task_ended"
        other = issue(here, workload_key, open_task(here, workload_key).id).token
        assert here.inspect(other).verified is not None
        with here.revocations._probe._lock:  # another thread reading: not known without it
            assert here.inspect_in_memory(other) is None
        here.revocations.read_without_waiting(False)
        assert here.inspect_in_memory(other) is None
    finally:
        there.close()


def test_a_read_without_waiting_that_fails_is_not_known(sqlite_tether: Tether) -> None:
    probe = VersionProbe(sqlite_tether.engine)
    probe.reads_without_waiting = True
    try:
        assert probe.known_without_waiting() is None  # no connection open yet: not here
        assert probe.read() == 0
        assert probe.known_without_waiting() == 0
        probe._connection.dbapi_connection.close()  # a dropped connection
        assert probe.known_without_waiting() is None
        assert probe.read() == 0  # reconnected where waiting is fine
    finally:
        probe.close()
