"""Obligations: parsing, normalisation and the stricter-wins merge (with property tests)."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.policy import (
    DecisionRequest,
    EntityRef,
    Outcome,
    PolicyEngine,
    PolicyInvalid,
    merge_obligations,
    parse_obligations,
    parse_policy_file,
)


def test_parse_splits_on_semicolons_and_trims() -> None:
    assert parse_obligations(" max_rows = 100 ;redact=ssn;; ", policy="p") == {
        "max_rows": "100",
        "redact": "ssn",
    }


def test_parse_normalises_values() -> None:
    parsed = parse_obligations("max_rows=0100; read_only=TRUE; redact=ssn, iban,ssn", policy="p")
    assert parsed == {"max_rows": "100", "read_only": "true", "redact": "iban,ssn"}


def test_parse_repeated_key_keeps_the_stricter_value() -> None:
    assert parse_obligations("max_rows=500; max_rows=100", policy="p") == {"max_rows": "100"}


@pytest.mark.parametrize("text", ["max_rows", "=5", "max_rows=", "a=1; b", "redact=,"])
def test_parse_rejects_items_without_name_and_value(text: str) -> None:
    with pytest.raises(PolicyInvalid, match=r"policy `p1`: obligation `.*` must have the form"):
        parse_obligations(text, policy="p1")


def test_parse_rejects_one_key_with_two_kinds() -> None:
    with pytest.raises(PolicyInvalid, match="`max_rows`"):
        parse_obligations("max_rows=100; max_rows=all", policy="p")


@pytest.mark.parametrize(
    ("a", "b", "merged"),
    [
        ("100", "500", "100"),
        ("-1", "3", "-1"),
        ("0", "0", "0"),
        ("true", "false", "true"),
        ("false", "false", "false"),
        ("ssn", "iban", "iban,ssn"),
        ("iban,ssn", "ssn,tax_id", "iban,ssn,tax_id"),
        ("10/s", "5/s", "10/s,5/s"),
    ],
)
def test_stricter_value_wins(a: str, b: str, merged: str) -> None:
    assert merge_obligations([{"k": a}, {"k": b}]) == {"k": merged}
    assert merge_obligations([{"k": b}, {"k": a}]) == {"k": merged}


def test_merge_keeps_keys_only_one_side_has() -> None:
    assert merge_obligations([{"a": "1"}, {"b": "x"}, {}]) == {"a": "1", "b": "x"}


def test_merge_refuses_values_of_different_kinds() -> None:
    with pytest.raises(PolicyInvalid, match="`max_rows`"):
        merge_obligations([{"max_rows": "100"}, {"max_rows": "unlimited"}])


def test_engine_refuses_an_obligation_with_two_kinds_across_policies() -> None:
    specs, problems = parse_policy_file(
        "o.cedar",
        '@id("a") @outcome("constrain") @obligations("max_rows=100")\n'
        "permit(principal, action, resource);\n"
        '@id("b") @outcome("constrain") @obligations("max_rows=all")\n'
        "permit(principal, action, resource);",
    )
    assert problems == []
    with pytest.raises(PolicyInvalid, match=r"`max_rows` is an integer in policy `a` but a set in"):
        PolicyEngine(specs)


# --- properties ---------------------------------------------------------------------------
# Values are generated normalised (as parse_obligations produces them) and each key keeps
# one kind, as the engine guarantees for a loaded policy set.

KEYS = {"max_rows": "integer", "limit": "integer", "read_only": "boolean", "redact": "set"}
_ITEM = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=6).filter(
    lambda item: item not in ("true", "false")  # a lone `true` is a boolean, not a set
)


def _value(kind: str) -> st.SearchStrategy[str]:
    if kind == "integer":
        return st.integers(min_value=-(10**6), max_value=10**12).map(str)
    if kind == "boolean":
        return st.sampled_from(["true", "false"])
    return st.frozensets(_ITEM, min_size=1, max_size=4).map(lambda s: ",".join(sorted(s)))


OBLIGATIONS = st.fixed_dictionaries({}, optional={key: _value(kind) for key, kind in KEYS.items()})
RAW_TEXT = st.lists(
    st.sampled_from(sorted(KEYS)).flatmap(
        lambda key: _value(KEYS[key]).map(lambda value: f"{key}={value}")
    ),
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(a=OBLIGATIONS, b=OBLIGATIONS)
def test_merge_is_commutative(a: Mapping[str, str], b: Mapping[str, str]) -> None:
    assert merge_obligations([a, b]) == merge_obligations([b, a])


@settings(max_examples=300, deadline=None)
@given(a=OBLIGATIONS, b=OBLIGATIONS, c=OBLIGATIONS)
def test_merge_is_associative(
    a: Mapping[str, str], b: Mapping[str, str], c: Mapping[str, str]
) -> None:
    left = merge_obligations([merge_obligations([a, b]), c])
    right = merge_obligations([a, merge_obligations([b, c])])
    assert left == right == merge_obligations([a, b, c])


@settings(max_examples=300, deadline=None)
@given(a=OBLIGATIONS)
def test_merge_is_idempotent(a: Mapping[str, str]) -> None:
    assert merge_obligations([a, a]) == dict(a)
    assert merge_obligations([a]) == dict(a)


@settings(max_examples=300, deadline=None)
@given(a=OBLIGATIONS, b=OBLIGATIONS)
def test_merge_is_never_weaker_than_either_side(a: Mapping[str, str], b: Mapping[str, str]) -> None:
    merged = merge_obligations([a, b])
    assert set(merged) == set(a) | set(b)
    for key, value in merged.items():
        for side in (a, b):
            if key not in side:
                continue
            if KEYS[key] == "integer":
                assert int(value) <= int(side[key])
            elif KEYS[key] == "boolean":
                assert value == "true" or side[key] == "false"
            else:
                assert set(side[key].split(",")) <= set(value.split(","))


@settings(max_examples=200, deadline=None)
@given(items=RAW_TEXT)
def test_parse_of_one_annotation_equals_merging_its_items(items: list[str]) -> None:
    single = [parse_obligations(item, policy="p") for item in items]
    assert parse_obligations("; ".join(items), policy="p") == merge_obligations(single)


@settings(max_examples=60, deadline=None)
@given(parts=st.lists(OBLIGATIONS.filter(bool), min_size=1, max_size=4))
def test_engine_obligations_are_the_merge_of_the_determining_policies(
    parts: list[Mapping[str, str]],
) -> None:
    text = "\n".join(
        f'@id("c{i}") @outcome("constrain") '
        f'@obligations("{"; ".join(f"{k}={v}" for k, v in part.items())}") '
        "permit(principal, action, resource);"
        for i, part in enumerate(parts)
    )
    specs, problems = parse_policy_file("c.cedar", text)
    assert problems == []
    decision = PolicyEngine(specs).decide(
        DecisionRequest(EntityRef("User", "u"), "read", EntityRef("Doc", "d"))
    )
    assert decision.outcome is Outcome.CONSTRAIN
    assert dict(decision.obligations) == merge_obligations(parts)
