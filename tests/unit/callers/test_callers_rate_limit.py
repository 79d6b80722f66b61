"""Token buckets per caller."""

from __future__ import annotations

import pytest

from tether.callers import RateLimiter, retry_after_seconds


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(2, 5, clock=clock)
    assert [limiter.take("a") for _ in range(5)] == [None] * 5
    wait = limiter.take("a")
    assert wait == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.take("a") is None
    assert limiter.take("a") is not None


def test_callers_do_not_share_a_bucket() -> None:
    limiter = RateLimiter(1, 1, clock=Clock())
    assert limiter.take("a") is None
    assert limiter.take("a") is not None
    assert limiter.take("b") is None


def test_a_bucket_never_holds_more_than_the_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(10, 3, clock=clock)
    limiter.take("a")
    clock.now += 3600
    assert [limiter.take("a") for _ in range(4)][-1] is not None


def test_many_distinct_keys_do_not_grow_the_table_without_bound() -> None:
    clock = Clock()
    limiter = RateLimiter(1000, 1, clock=clock, max_buckets=100)
    for n in range(1000):
        limiter.take(f"k{n}")
        clock.now += 0.01
    assert len(limiter._buckets) <= 100


@pytest.mark.parametrize(("wait", "header"), [(0.001, 1), (1.0, 1), (1.01, 2), (30.5, 31)])
def test_retry_after_is_whole_seconds_at_least_one(wait: float, header: int) -> None:
    assert retry_after_seconds(wait) == header


def test_a_nonsense_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="positive rate"):
        RateLimiter(0, 10)


def test_a_debit_spends_tokens_admitted_elsewhere_and_waiting_pays_them_back() -> None:
    now = [100.0]
    limiter = RateLimiter(10, 10, clock=lambda: now[0])
    limiter.counting = True
    assert limiter.take("a") is None
    assert limiter.drain_admitted() == {"a": 1}
    assert limiter.drain_admitted() == {}
    limiter.debit("a", 25)  # 9 left, 25 spent elsewhere: -10 at most (-burst)
    wait = limiter.take("a")
    assert wait == pytest.approx(1.1)  # from -10 to 1 token at 10/s
    now[0] += 1.15
    assert limiter.take("a") is None
    limiter.debit("new", 4)  # a caller first seen through a debit starts from a full bucket
    assert [limiter.take("new") for _ in range(7)][-1] is not None


def test_two_replicas_share_one_limit_through_postgresql(postgres_url: str) -> None:
    from tether.callers import RateShare
    from tether.store import migrate
    from tether.store.engine import open_engine

    engine = open_engine(postgres_url)
    migrate.upgrade(engine)
    now = [1_000.0]
    a_limits = RateLimiter(10, 20, clock=lambda: now[0])
    b_limits = RateLimiter(10, 20, clock=lambda: now[0])
    a = RateShare(engine, a_limits, replica="a", clock=lambda: now[0])
    b = RateShare(engine, b_limits, replica="b", clock=lambda: now[0])
    try:
        assert a.exchange({}) == {}  # both started
        assert b.exchange({}) == {}
        assert a.exchange({"pep": 15, "other": 1}) == {}
        assert b.exchange({}) == {"pep": 15, "other": 1}
        assert b.exchange({}) == {}  # nothing new: nothing debited twice
        now[0] += 0.5
        assert a.exchange({"pep": 3}) == {}  # the same second: the row grows
        assert b.exchange({"pep": 2}) == {"pep": 3}
        assert a.exchange({}) == {"pep": 2}
        now[0] += 10  # past the horizon (20 / 10 + 1 s): old counts are not debited again
        assert a.exchange({"pep": 4}) == {}
        # A replica starting now learns what the others admitted without charging it:
        # it starts from full buckets, as a lone server does; then it is charged.
        fresh = RateShare(engine, RateLimiter(10, 20), replica="c", clock=lambda: now[0])
        assert fresh.exchange({}) == {}
        assert a.exchange({"pep": 1}) == {}
        assert fresh.exchange({}) == {"pep": 1}
    finally:
        engine.dispose()
