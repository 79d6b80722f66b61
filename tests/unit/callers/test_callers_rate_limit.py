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
