"""SPIFFE ID syntax (SPIFFE-ID.md §2) as the estate checks it."""

from __future__ import annotations

import pytest

from tether.estate._spiffe import spiffe_id_problem


@pytest.mark.parametrize(
    "value",
    [
        "spiffe://example.org",
        "spiffe://example.org/agents/billing-bot",
        "spiffe://prod.example-1_x.org/ns/default/sa/api.v2",
        "spiffe://10.0.0.1/a",
        "spiffe://example.org/" + "a" * 2000,
    ],
)
def test_valid_ids(value: str) -> None:
    assert spiffe_id_problem(value) is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("spiffe://example.org/" + "a" * 2100, "at most 2048 bytes"),
        ("spiffe://" + "a" * 256, "at most 255 bytes"),
        ("spiffe://exa mple.org/a", "may only hold"),
        ("spiffe://example.org/a b", "may only hold"),
        ("spiffe://[::1]/a", "trust domain"),
        ("spiffe://example.org/", "no trailing `/`"),
        ("spiffe://example.org/./a", "no `.` or `..`"),
    ],
)
def test_invalid_ids(value: str, problem: str) -> None:
    found = spiffe_id_problem(value)
    assert found is not None
    assert problem in found


def test_trust_domain_ids_have_no_path() -> None:
    assert spiffe_id_problem("spiffe://example.org", trust_domain_only=True) is None
    assert spiffe_id_problem("spiffe://example.org/a", trust_domain_only=True) is not None
