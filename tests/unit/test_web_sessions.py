"""Dashboard sessions: CSRF tokens compared in constant time, sessions capped, failed
sign-ins throttled per address."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tether.web.sessions import SessionStore, same_token
from tether.web.throttle import SigninThrottle


@given(st.one_of(st.none(), st.integers(), st.text(max_size=60)))
def test_any_submitted_value_is_compared_without_raising(given_value: object) -> None:
    expected = SessionStore().open("alice", credential="credential").csrf
    assert same_token(given_value, expected) is (given_value == expected)


def test_a_non_ascii_token_is_refused_not_a_500() -> None:
    # compare_digest raises TypeError on a str that is not ASCII (a review found it).
    assert same_token("é" * 43, "a" * 43) is False
    assert same_token("", "") is False


def test_one_person_holds_at_most_max_per_person_sessions_the_oldest_ends() -> None:
    store = SessionStore(max_per_person=3, max_sessions=100)
    opened = [store.open("alice", credential=f"t{i}") for i in range(5)]
    bob = store.open("bob", credential="b")
    assert [store.find(s.id) is not None for s in opened] == [False, False, True, True, True]
    assert store.find(bob.id) == bob
    assert len(store) == 4


def test_the_store_never_holds_more_than_max_sessions() -> None:
    store = SessionStore(max_per_person=100, max_sessions=10)
    opened = [store.open(f"person-{i}", credential="t") for i in range(25)]
    assert len(store) == 10
    assert [s.id for s in opened if store.find(s.id)] == [s.id for s in opened[-10:]]


def test_failed_signins_are_refused_past_the_limit_until_the_window_moves_on() -> None:
    now = [1000.0]
    throttle = SigninThrottle(max_failures=3, window_s=60, clock=lambda: now[0])
    for _ in range(3):
        assert throttle.wait_s("10.0.0.1") == 0
        throttle.failed("10.0.0.1")
        now[0] += 1
    assert throttle.wait_s("10.0.0.1") == 57  # now 1003; the first failure leaves at 1060
    assert throttle.wait_s("10.0.0.2") == 0  # another address is not held back
    now[0] = 1060.5
    assert throttle.wait_s("10.0.0.1") == 0


def test_the_throttle_table_is_bounded() -> None:
    now = [0.0]
    throttle = SigninThrottle(max_failures=2, window_s=10, max_addresses=5, clock=lambda: now[0])
    for i in range(5):
        throttle.failed(f"a{i}")
    now[0] = 20.0  # all quiet past the window: dropped when a new address comes
    throttle.failed("fresh")
    assert throttle.wait_s("fresh") == 0
    assert len(throttle._failures) == 1
