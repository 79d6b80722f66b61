"""Dashboard sessions: kept in the store (SQLite and PostgreSQL), found by their id alone,
sealed under it (no secret in a row), ended at their age and capped; CSRF tokens compared
in constant time; failed sign-ins throttled per address."""

from __future__ import annotations

import secrets

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, select, update

from tether.callers import Caller, Role
from tether.store.dashboard_tables import dashboard_sessions
from tether.web.sessions import SessionStore, same_token
from tether.web.signin import safe_next
from tether.web.throttle import SigninThrottle


@given(st.one_of(st.none(), st.integers(), st.text(max_size=60)))
def test_any_submitted_value_is_compared_without_raising(given_value: object) -> None:
    expected = secrets.token_urlsafe(32)
    assert same_token(given_value, expected) is (given_value == expected)


def test_a_non_ascii_token_is_refused_not_a_500() -> None:
    # compare_digest raises TypeError on a str that is not ASCII (a review found it).
    assert same_token("é" * 43, "a" * 43) is False
    assert same_token("", "") is False


def test_a_session_is_found_by_its_id_only_and_its_row_holds_no_secret(store: Engine) -> None:
    sessions = SessionStore(store)
    admin = sessions.open("alice", credential="the-admin-token")
    person = Caller("oidc:ada", frozenset({Role.AUDITOR}), "oidc", "jti-1", {"email": "a@x"})
    oidc = sessions.open("oidc:ada", caller=person)
    again = SessionStore(store)  # another process, or the same after a restart
    found = again.find(admin.id)
    assert found is not None
    assert (found.credential, found.csrf, found.caller) == ("the-admin-token", admin.csrf, None)
    found_oidc = again.find(oidc.id)
    assert found_oidc is not None
    assert found_oidc.caller == person
    assert again.find(admin.id[:-1] + ("A" if admin.id[-1] != "A" else "B")) is None
    assert again.find("") is None
    with store.connect() as connection:
        rows = [dict(r) for r in connection.execute(select(dashboard_sessions)).mappings()]
    stored = repr(rows)
    for secret in (admin.id, oidc.id, "the-admin-token", admin.csrf, oidc.csrf, "a@x"):
        assert secret not in stored
    again.close(admin.id)
    assert sessions.find(admin.id) is None


def test_a_row_moved_to_another_id_does_not_open(store: Engine) -> None:
    sessions = SessionStore(store)
    one, two = sessions.open("alice", credential="t1"), sessions.open("bob", credential="t2")
    with store.begin() as connection:
        sealed_one = connection.execute(
            select(dashboard_sessions.c.sealed).where(dashboard_sessions.c.person == "alice")
        ).scalar_one()
        connection.execute(
            update(dashboard_sessions)
            .where(dashboard_sessions.c.person == "bob")
            .values(sealed=sealed_one)
        )
    assert sessions.find(two.id) is None  # sealed under another id: refused, not alice's
    assert sessions.find(one.id) is not None


def test_sessions_end_at_their_age(store: Engine) -> None:
    now = [1_000_000.0]
    sessions = SessionStore(store, max_age_s=60, clock=lambda: now[0])
    opened = sessions.open("alice", credential="t")
    now[0] += 59
    assert sessions.find(opened.id) is not None
    now[0] += 2
    assert sessions.find(opened.id) is None
    sessions.open("bob", credential="t")  # expired rows go at the next sign-in
    assert len(sessions) == 1


def test_a_session_may_be_shorter_than_the_maximum_never_longer(store: Engine) -> None:
    now = [1_000_000.0]
    sessions = SessionStore(store, max_age_s=60, clock=lambda: now[0])
    short = sessions.open("oidc:alice", max_age_s=10)
    capped = sessions.open("oidc:bob", max_age_s=3600)
    assert (short.expires, capped.expires) == (now[0] + 10, now[0] + 60)
    now[0] += 11
    assert sessions.find(short.id) is None
    assert sessions.find(capped.id) is not None


def test_one_person_holds_at_most_max_per_person_sessions_the_oldest_ends(store: Engine) -> None:
    now = [1_000_000.0]

    def tick() -> float:
        now[0] += 1
        return now[0]

    sessions = SessionStore(store, max_per_person=3, max_sessions=100, clock=tick)
    opened = [sessions.open("alice", credential=f"t{i}") for i in range(5)]
    bob = sessions.open("bob", credential="b")
    assert [sessions.find(s.id) is not None for s in opened] == [False, False, True, True, True]
    assert sessions.find(bob.id) is not None
    assert len(sessions) == 4


def test_the_store_never_holds_more_than_max_sessions(store: Engine) -> None:
    now = [1_000_000.0]

    def tick() -> float:
        now[0] += 1
        return now[0]

    sessions = SessionStore(store, max_per_person=100, max_sessions=10, clock=tick)
    opened = [sessions.open(f"person-{i}", credential="t") for i in range(25)]
    assert len(sessions) == 10
    assert [s.id for s in opened if sessions.find(s.id)] == [s.id for s in opened[-10:]]


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


def test_only_a_path_of_this_site_is_a_place_to_go_after_signing_in() -> None:
    assert safe_next("/identities/odd%20id?x=1") == "/identities/odd%20id?x=1"
    for elsewhere in ("//evil.example", "/\t/evil.example", "/\n/evil", "/a\\b", "https://x", ""):
        assert safe_next(elsewhere) == ""
