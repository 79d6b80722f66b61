"""Cedar is handed only the context the policies read: the same decisions, errors included."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.policy import (
    DecisionRequest,
    EntityRecord,
    EntityRef,
    PolicyEngine,
    build_context,
    parse_policy_file,
)
from tether.policy._context_use import context_use, cut_context

POLICIES = """
@id("a-is-one")
permit(principal, action == Action::"read", resource) when { context has a && context.a == 1 };
@id("level")
permit(principal, action == Action::"write", resource) when { context.tether.level >= 3 };
@id("b-c-like")
forbid(principal, action, resource) when { context has b.c && context.b.c like "x*" };
@id("owner-in-context")
permit(principal, action == Action::"list", resource) when { context.e.name == "alice" };
@id("decimal")
permit(principal, action == Action::"sum", resource) when { context.d.lessThan(decimal("1.5")) };
@id("nested-deep")
permit(principal, action == Action::"read", resource) when { context.tether.deep.k == true };
"""
ALICE = EntityRef("User", "alice")
DOC = EntityRef("Doc", "d1")
ESTATE = [EntityRecord("User", "alice", {"name": "alice"}), EntityRecord("Doc", "d1", {})]
ACTIONS = ["read", "write", "list", "sum", "other"]


def engines(text: str) -> tuple[PolicyEngine, PolicyEngine]:
    """An engine that cuts the context, and the same one handing Cedar all of it."""
    specs, problems = parse_policy_file("ctx.cedar", text)
    assert problems == []
    cutting = PolicyEngine(specs, ESTATE, cache_size=0)
    whole = PolicyEngine(specs, ESTATE, cache_size=0)
    whole._cut_context = False
    return cutting, whole


def uses(text: str) -> Any:
    specs, problems = parse_policy_file("ctx.cedar", text)
    assert problems == []
    return context_use(p.est for p in specs)


def test_the_keys_read_are_found_two_levels_deep() -> None:
    assert uses(POLICIES) == {
        "a": None,
        "b": None,  # `context has b.c` asks whether `b` is there: kept whole
        "d": None,
        "e": frozenset({"name"}),
        "tether": frozenset({"level", "deep"}),
    }


@pytest.mark.parametrize(
    "condition",
    [
        "context == {}",
        '[context].contains({"a": 1})',
        "(if context has a then context else {}).a == 1",
    ],
)
def test_any_other_use_of_the_context_keeps_all_of_it(condition: str) -> None:
    assert uses(f"permit(principal, action, resource) when {{ {condition} }};") is None


def test_a_value_read_whole_keeps_its_keys_and_escapes_are_never_cut() -> None:
    use = {"t": frozenset({"x"}), "w": None}
    entity = {"__entity": {"type": "User", "id": "alice"}}
    decimal = {"__extn": {"fn": "decimal", "arg": "1.0"}}
    context = {"t": {"x": 1, "y": 2}, "w": {"y": 3}, "z": 4}
    assert cut_context(context, use) == {"t": {"x": 1}, "w": {"y": 3}}
    assert cut_context({"t": entity, "w": 1}, use) == {"t": entity, "w": 1}
    assert cut_context({"t": decimal}, use) == {"t": decimal}
    assert cut_context(context, None) is context
    refused = {**context, "z": {"__entity": 5}}  # Cedar refuses it: nothing is cut
    assert cut_context(refused, use) is refused
    deep: Any = "leaf"
    for _ in range(40):
        deep = [deep]
    assert cut_context({**context, "z": deep}, use)["z"] == deep


def test_the_keys_no_policy_reads_do_not_reach_cedar() -> None:
    cutting, _ = engines(POLICIES)
    request = DecisionRequest(ALICE, "write", DOC, {"request_id": "r-1", "a": 1})
    extra = {"level": 3, "subject_id": "alice"}
    handed = cut_context(build_context(request, extra), cutting._context_use)
    assert handed == {"a": 1, "tether": {"level": 3}}  # no request_id, action, subject_id
    decision = cutting.decide(request, extra)
    assert decision.permits
    assert decision.reasons == ("level",)


_SCALARS = st.one_of(
    st.integers(-5, 5),
    st.sampled_from(["x1", "y", "", "alice"]),
    st.booleans(),
    st.floats(0, 3, allow_nan=False).map(lambda f: round(f, 2)),
)
_KEYS = st.sampled_from(["a", "b", "c", "d", "e", "k", "level", "deep", "name", "z"])
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.dictionaries(_KEYS, inner, max_size=4),
        st.lists(inner, max_size=3),
        st.just({"__entity": {"type": "User", "id": "alice"}}),
        # What Cedar refuses to parse: a denial with its error, read or not.
        st.just({"__entity": 5}),
        st.just({"__extn": {"fn": "nope", "arg": "1"}}),
        st.none(),
        st.just(2**70),
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    action=st.sampled_from(ACTIONS),
    context=st.dictionaries(_KEYS, _VALUES, max_size=6),
    extra=st.dictionaries(_KEYS, _VALUES, max_size=4),
)
def test_a_cut_context_gives_the_same_decision_as_the_whole(
    action: str, context: dict[str, Any], extra: dict[str, Any]
) -> None:
    cutting, whole = ENGINES
    request = DecisionRequest(ALICE, action, DOC, context)
    assert cutting.decide(request, extra) == whole.decide(request, extra)


ENGINES = engines(POLICIES)
