"""The count of open connections by address: caps and releases (against a model)."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from tether.api.server import ConnectionLimits, OpenConnections

ADDRESSES = st.sampled_from(["10.0.0.1", "10.0.0.2", "::1"])


def test_the_per_address_cap_refuses_only_that_address() -> None:
    book = OpenConnections(ConnectionLimits(max_connections=10, max_connections_per_address=2))
    assert book.admit("a") is None
    assert book.admit("a") is None
    assert book.admit("a") == "max_connections_per_address"
    assert book.admit("b") is None
    book.release("a")
    assert book.admit("a") is None
    assert (book.total, book.by_address, book.refused) == (3, {"a": 2, "b": 1}, 1)


def test_the_global_cap_refuses_every_address() -> None:
    book = OpenConnections(ConnectionLimits(max_connections=2, max_connections_per_address=2))
    assert book.admit("a") is None
    assert book.admit("b") is None
    assert book.admit("c") == "max_connections"
    book.release("a")
    assert book.admit("c") is None


@given(st.lists(st.tuples(st.booleans(), ADDRESSES), max_size=200))
def test_counts_match_a_model_and_never_exceed_the_caps(ops: list[tuple[bool, str]]) -> None:
    limits = ConnectionLimits(max_connections=5, max_connections_per_address=3)
    book = OpenConnections(limits)
    model: Counter[str] = Counter()
    for opening, address in ops:
        if opening:
            admitted = book.admit(address) is None
            expected = sum(model.values()) < 5 and model[address] < 3
            assert admitted == expected
            if admitted:
                model[address] += 1
        elif model[address]:
            book.release(address)
            model[address] -= 1
        assert book.total == sum(model.values()) <= limits.max_connections
        assert book.by_address == {a: n for a, n in model.items() if n}
