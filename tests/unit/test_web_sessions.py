"""Dashboard sessions: CSRF tokens compared in constant time, never an exception."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tether.web.sessions import SessionStore, same_token


@given(st.one_of(st.none(), st.integers(), st.text(max_size=60)))
def test_any_submitted_value_is_compared_without_raising(given_value: object) -> None:
    expected = SessionStore().open("credential").csrf
    assert same_token(given_value, expected) is (given_value == expected)


def test_a_non_ascii_token_is_refused_not_a_500() -> None:
    # compare_digest raises TypeError on a str that is not ASCII (a review found it).
    assert same_token("é" * 43, "a" * 43) is False
    assert same_token("", "") is False
