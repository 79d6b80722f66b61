"""Request properties versus estate attributes, and what context values become in Cedar."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.policy import (
    RESERVED_CONTEXT_KEYS,
    DecisionRequest,
    EntityRecord,
    EntityRef,
    Outcome,
    PolicyEngine,
    build_context,
    parse_policy_file,
    to_cedar_value,
)

ALICE = EntityRef("User", "alice")
DOC = EntityRef("Doc", "d1")
ESTATE = [
    EntityRecord("User", "alice", {"role": "viewer"}),
    EntityRecord("Doc", "d1", {"owner": "bob"}),
]


def engine(text: str, entities: list[EntityRecord] = ESTATE) -> PolicyEngine:
    specs, problems = parse_policy_file("ctx.cedar", text)
    assert problems == []
    return PolicyEngine(specs, entities)


ADMIN_ONLY = engine('permit(principal, action, resource) when { principal.role == "admin" };')


def ask(
    eng: PolicyEngine,
    *,
    subject: EntityRef = ALICE,
    resource: EntityRef = DOC,
    context: dict[str, Any] | None = None,
    subject_properties: dict[str, Any] | None = None,
    resource_properties: dict[str, Any] | None = None,
    action_properties: dict[str, Any] | None = None,
) -> Outcome:
    return eng.decide(
        DecisionRequest(
            subject,
            "read",
            resource,
            context or {},
            subject_properties or {},
            resource_properties or {},
            action_properties or {},
        )
    ).outcome


# --- request properties add, never override ------------------------------------------------


def test_request_property_cannot_override_an_estate_attribute() -> None:
    assert ask(ADMIN_ONLY) is Outcome.DENY
    assert ask(ADMIN_ONLY, subject_properties={"role": "admin"}) is Outcome.DENY


def test_override_attempt_alongside_a_new_property_still_loses() -> None:
    # A new key forces the slow path (the entity is rebuilt): the estate value must still win.
    assert ask(ADMIN_ONLY, subject_properties={"role": "admin", "team": "x"}) is Outcome.DENY


def test_request_property_adds_a_missing_attribute_to_a_known_entity() -> None:
    eng = engine(
        'permit(principal, action, resource) when { principal has team && principal.team == "a" '
        '&& principal.role == "viewer" };'
    )
    assert ask(eng) is Outcome.DENY
    assert ask(eng, subject_properties={"team": "a"}) is Outcome.ALLOW
    assert ask(eng, subject_properties={"team": "b"}) is Outcome.DENY


def test_resource_properties_follow_the_same_rule() -> None:
    eng = engine(
        'permit(principal, action, resource) when { resource.owner == "alice" };\n'
        'permit(principal, action, resource) when { resource has label && resource.label == "x" };'
    )
    assert ask(eng, resource_properties={"owner": "alice"}) is Outcome.DENY
    assert ask(eng, resource_properties={"label": "x"}) is Outcome.ALLOW


def test_properties_describe_an_entity_the_estate_does_not_know() -> None:
    stranger = EntityRef("User", "mallory")
    assert ask(ADMIN_ONLY, subject=stranger) is Outcome.DENY
    assert ask(ADMIN_ONLY, subject=stranger, subject_properties={"role": "admin"}) is Outcome.ALLOW


def test_unknown_subject_and_known_resource_with_properties_together() -> None:
    eng = engine(
        'permit(principal, action, resource) when { principal.role == "admin" && '
        'resource.owner == "bob" && resource has tier && resource.tier == 2 };'
    )
    outcome = ask(
        eng,
        subject=EntityRef("User", "carol"),
        subject_properties={"role": "admin"},
        resource_properties={"tier": 2, "owner": "carol"},
    )
    assert outcome is Outcome.ALLOW


def test_properties_never_touch_the_engine_for_the_next_request() -> None:
    eng = engine("permit(principal, action, resource) when { principal has team };")
    assert ask(eng, subject_properties={"team": "a"}) is Outcome.ALLOW
    assert ask(eng) is Outcome.DENY


def test_estate_parents_survive_request_properties() -> None:
    entities = [
        EntityRecord("Group", "admins", {}),
        EntityRecord("User", "alice", {}, (EntityRef("Group", "admins"),)),
    ]
    eng = engine('permit(principal in Group::"admins", action, resource);', entities)
    assert ask(eng, subject_properties={"x": 1}) is Outcome.ALLOW


# --- context values ----------------------------------------------------------------------------


def test_float_context_becomes_a_decimal() -> None:
    eng = engine(
        'permit(principal, action, resource) when { context.score.lessThan(decimal("0.7")) };'
    )
    assert ask(eng, context={"score": 0.5}) is Outcome.ALLOW
    assert ask(eng, context={"score": 0.9}) is Outcome.DENY
    assert ask(eng, context={"score": 1.0}) is Outcome.DENY


def test_float_too_precise_for_a_decimal_becomes_a_string() -> None:
    assert to_cedar_value(0.123456) == "0.123456"
    assert to_cedar_value(1e20) == "100000000000000000000.0"
    assert to_cedar_value(0.25) == {"__extn": {"fn": "decimal", "arg": "0.25"}}
    assert to_cedar_value(-3.0) == {"__extn": {"fn": "decimal", "arg": "-3.0"}}


def test_null_context_values_are_absent() -> None:
    eng = engine("permit(principal, action, resource) unless { context has flag };")
    assert ask(eng, context={"flag": None}) is Outcome.ALLOW
    assert ask(eng, context={"flag": False}) is Outcome.DENY
    assert to_cedar_value({"a": [1, None, {"b": None}]}) == {"a": [1, {}]}


def test_integers_beyond_cedar_long_become_strings() -> None:
    assert to_cedar_value(2**63 - 1) == 2**63 - 1
    assert to_cedar_value(2**63) == str(2**63)
    assert to_cedar_value(-(2**63) - 1) == str(-(2**63) - 1)


@pytest.mark.parametrize("key", RESERVED_CONTEXT_KEYS)
def test_callers_cannot_set_reserved_context_keys(key: str) -> None:
    request = DecisionRequest(ALICE, "read", DOC, {key: {"sensitivity": 0}, "ok": 1})
    context = build_context(request, {"sensitivity": 4})
    assert context["tether"] == {"sensitivity": 4}
    assert context["action"] == {}
    assert context["ok"] == 1


def test_tether_context_reaches_policies() -> None:
    eng = engine(
        "forbid(principal, action, resource) when { context.tether.sensitivity >= 3 };\n"
        "permit(principal, action, resource);"
    )
    request = DecisionRequest(ALICE, "read", DOC, {"tether": {"sensitivity": 0}})
    assert eng.decide(request, {"sensitivity": 4}).outcome is Outcome.DENY
    assert eng.decide(request, {"sensitivity": 1}).outcome is Outcome.ALLOW


def test_action_properties_are_context_action() -> None:
    eng = engine('permit(principal, action, resource) when { context.action.method == "GET" };')
    assert ask(eng, action_properties={"method": "GET"}) is Outcome.ALLOW
    assert ask(eng, action_properties={"method": "POST"}) is Outcome.DENY
    assert ask(eng, context={"action": {"method": "GET"}}) is Outcome.DENY


@pytest.mark.parametrize(
    "value",
    [
        {"__extn": {"fn": "bogus", "arg": "1"}},
        {"__extn": "x"},
        {"__entity": {"type": "1", "id": "x"}},
        {"__entity": {"type": "User"}},
    ],
)
def test_cedar_escapes_smuggled_in_context_deny(value: Any) -> None:
    eng = engine("permit(principal, action, resource);")
    decision = eng.decide(DecisionRequest(ALICE, "read", DOC, {"x": value}))
    assert decision.outcome in (Outcome.ALLOW, Outcome.DENY)


@pytest.mark.parametrize("where", ["context", "subject_properties", "action_properties"])
def test_deeply_nested_values_deny_instead_of_raising(where: str) -> None:
    deep: dict[str, Any] = {"leaf": 1}
    for _ in range(1000):  # JSON parsers accept ~1000 levels; Python recursion does not
        deep = {"a": deep}
    eng = engine("permit(principal, action, resource);")
    decision = eng.decide(DecisionRequest(ALICE, "read", DOC, **{where: deep}))  # type: ignore[arg-type]
    assert decision.outcome is Outcome.DENY
    assert decision.errors


# --- arbitrary JSON never breaks a decision ---------------------------------------------------

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=15,
)
JSON_OBJECT = st.dictionaries(
    st.one_of(
        st.sampled_from(["score", "flag", "amount", "tether", "action", "__extn"]), st.text()
    ),
    JSON,
    max_size=5,
)
FUZZ_ENGINE = engine(
    "permit(principal, action, resource) when { context has flag && context.flag == true };\n"
    "permit(principal, action, resource) when { principal has team };\n"
    "forbid(principal, action, resource) when { context has amount && context.amount == 7 };\n"
    'permit(principal, action == Action::"read", resource) when { resource.owner == "bob" };'
)


@settings(max_examples=300, deadline=None)
@given(
    context=JSON_OBJECT,
    subject_properties=JSON_OBJECT,
    resource_properties=JSON_OBJECT,
    action_properties=JSON_OBJECT,
)
def test_arbitrary_json_allows_or_denies_and_never_raises(
    context: dict[str, Any],
    subject_properties: dict[str, Any],
    resource_properties: dict[str, Any],
    action_properties: dict[str, Any],
) -> None:
    for subject in (ALICE, EntityRef("User", "stranger")):
        decision = FUZZ_ENGINE.decide(
            DecisionRequest(
                subject,
                "read",
                DOC,
                context,
                subject_properties,
                resource_properties,
                action_properties,
            )
        )
        assert decision.outcome in (Outcome.ALLOW, Outcome.DENY)
        assert decision.permits is (decision.outcome is Outcome.ALLOW)
        if decision.errors:
            assert decision.outcome is Outcome.DENY
