"""Cedar is handed, per principal and action, only the policies whose scope may hold and the
context they read: the same decisions as the whole set with the whole context."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tether.policy import (
    Decision,
    DecisionRequest,
    EntityRecord,
    EntityRef,
    PolicyEngine,
    PolicySpec,
    parse_policy_file,
)
from tether.policy._scope import action_may_match, ancestors_of, principal_may_match

POLICIES = """
@id("agents-read")
permit(principal is Agent, action == Action::"read", resource) when { context.a == 1 };
@id("ops-write")
permit(principal in Team::"ops", action in [Action::"write", Action::"read"], resource)
when { context.tether.level >= 3 };
@id("ops-agents-deep")
@outcome("approval_required")
forbid(principal is Agent in Team::"ops", action, resource) when { context.depth > 3 };
@id("alice-own")
permit(principal == User::"alice", action == Action::"delete", resource)
when { context.b like "x*" };
@id("group")
permit(principal, action in Action::"readers", resource) when { context.c == true };
@id("erroring-for-users")
forbid(principal is User, action == Action::"write", resource) when { context.n + 1 > 0 };
"""
ESTATE = [
    EntityRecord("Team", "ops", {}, (EntityRef("Team", "all"),)),
    EntityRecord("Agent", "bot", {}, (EntityRef("Team", "ops"),)),
    EntityRecord("Agent", "loner", {}),
    EntityRecord("User", "alice", {}, (EntityRef("Team", "all"),)),
    EntityRecord("User", "bob", {}, (EntityRef("Team", "ops"),)),
    EntityRecord("Doc", "d1", {}),
]
NESTED_ACTIONS = [
    *ESTATE,
    EntityRecord("Action", "read", {}, (EntityRef("Action", "readers"),)),
]
PRINCIPALS = [
    EntityRef("Agent", "bot"),
    EntityRef("Agent", "loner"),
    EntityRef("Agent", "stranger"),
    EntityRef("User", "alice"),
    EntityRef("User", "bob"),
    EntityRef("Team", "ops"),
]
ACTIONS = ["read", "write", "delete", "readers", "other"]


def specs(text: str) -> list[PolicySpec]:
    found, problems = parse_policy_file("slices.cedar", text)
    assert problems == []
    return found


def engines(
    policies: list[PolicySpec], entities: list[EntityRecord]
) -> tuple[PolicyEngine, PolicyEngine]:
    """A slicing engine, and the same one handing Cedar a principal's whole set and the
    whole context."""
    slicing = PolicyEngine(policies, entities, cache_size=0)
    whole = PolicyEngine(policies, entities, cache_size=0)
    whole._slicing = False
    whole._cut_context = False
    return slicing, whole


def same(decision: Decision) -> tuple[Any, ...]:
    """A decision with its reasons as a set (Cedar lists determining policies unordered)."""
    return (
        decision.outcome,
        sorted(decision.reasons),
        dict(decision.obligations),
        sorted(decision.errors),
    )


def test_scopes_are_judged_false_only_where_that_is_certain() -> None:
    bot, ancestors = ("Agent", "bot"), {("Team", "ops"), ("Team", "all")}
    team = {"type": "Team", "id": "ops"}
    assert not principal_may_match({"op": "is", "entity_type": "User"}, bot, ancestors)
    assert principal_may_match({"op": "in", "entity": team}, bot, ancestors)
    assert principal_may_match({"op": "in", "entity": {"__entity": team}}, bot, ancestors)
    assert not principal_may_match({"op": "in", "entity": team}, ("Agent", "x"), set())
    assert not principal_may_match(
        {"op": "is", "entity_type": "Agent", "in": {"entity": team}}, ("Agent", "x"), set()
    )
    assert principal_may_match({"op": "==", "slot": "?principal"}, bot, ancestors)
    assert principal_may_match({"op": "All"}, bot, ancestors)
    read = {"type": "Action", "id": "read"}
    assert not action_may_match({"op": "==", "entity": read}, "write")
    assert not action_may_match({"op": "in", "entities": [read]}, None)
    assert action_may_match({"op": "in", "entities": [read]}, "read")
    assert action_may_match({"op": "==", "entity": {"type": "NS::Action", "id": "r"}}, "w")
    assert ancestors_of(bot, {bot: [("Team", "ops")], ("Team", "ops"): [("Team", "all")]}) == (
        ancestors
    )


def test_a_slice_holds_only_the_policies_that_may_apply() -> None:
    slicing, _ = engines(specs(POLICIES), ESTATE)
    bot = EntityRef("Agent", "bot")
    assert slicing._slice_for(bot, "read").context_use == {
        "a": None,
        "depth": None,
        "tether": frozenset({"level"}),
    }
    assert slicing._slice_for(EntityRef("Agent", "loner"), "delete").context_use == {}
    assert slicing._slice_for(EntityRef("User", "alice"), "delete").context_use == {"b": None}
    # An action no policy names shares one slice per principal.
    assert slicing._slice_for(bot, "nope") is slicing._slice_for(bot, "other")
    # With action entities that have parents, no action scope is judged ahead.
    nested, _ = engines(specs(POLICIES), NESTED_ACTIONS)
    assert nested._slice_for(EntityRef("Agent", "loner"), "delete").context_use == {
        "a": None,
        "c": None,
    }


@settings(max_examples=250, deadline=None)
@given(
    principal=st.sampled_from(PRINCIPALS),
    action=st.sampled_from(ACTIONS),
    nested=st.booleans(),
    context=st.fixed_dictionaries(
        {},
        optional={
            "a": st.sampled_from([1, 2, "1"]),
            "b": st.sampled_from(["x1", "y"]),
            "c": st.booleans(),
            "depth": st.integers(0, 6),
            "n": st.sampled_from([1, "one"]),
            "request_id": st.text(max_size=3),
        },
    ),
    level=st.integers(0, 5),
    asserted=st.sampled_from([{}, {"team": "ops"}]),
)
def test_a_slice_gives_the_same_decision_as_the_whole_set(
    principal: EntityRef,
    action: str,
    nested: bool,
    context: dict[str, Any],
    level: int,
    asserted: dict[str, Any],
) -> None:
    slicing, whole = ENGINES[nested]
    request = DecisionRequest(principal, action, EntityRef("Doc", "d1"), context, asserted)
    extra = {"level": level, "subject_id": principal.id}
    assert same(slicing.decide(request, extra)) == same(whole.decide(request, extra))


def test_the_bench_estate_gets_the_same_decisions_sliced() -> None:
    root = str(Path(__file__).resolve().parents[3])  # bench/ sits beside src/, not in it
    if root not in sys.path:
        sys.path.append(root)
    from bench.estate import build_estate

    estate = build_estate()
    slicing, whole = engines(list(estate.compiled.policies), list(estate.compiled.entities))
    for bench_request in estate.requests:
        extra = estate.cedar_request(bench_request)["context"]["tether"]
        assert slicing.decide(bench_request.decision_request(), extra).outcome.value == (
            bench_request.expected
        )
        for depth in (1, 5, -3):
            context = {**bench_request.context, "chain_depth": depth, "request_id": "r"}
            request = DecisionRequest(
                bench_request.subject, bench_request.action, bench_request.resource, context
            )
            assert same(slicing.decide(request, extra)) == same(whole.decide(request, extra))


ENGINES = {
    False: engines(specs(POLICIES), ESTATE),
    True: engines(specs(POLICIES), NESTED_ACTIONS),
}
