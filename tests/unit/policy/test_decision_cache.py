"""The per-engine decision cache: an answer is remembered only for the exact question."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tether.policy import (
    DecisionRequest,
    EntityRecord,
    EntityRef,
    Outcome,
    PolicyEngine,
    parse_policy_file,
)

POLICIES = """
permit(principal, action == Action::"read", resource) when { resource.level <= 2 };
@id("needs-approval")
@outcome("approval_required")
forbid(principal, action == Action::"read", resource) when { context has big && context.big };
@id("restricted")
forbid(principal, action, resource) when {
    context.tether has behaviour && context.tether.behaviour.restricted
};
@id("by-property")
permit(principal, action == Action::"write", resource) when {
    principal has team && principal.team == "ops"
};
@id("erroring")
permit(principal, action == Action::"delete", resource) when { context.count + 1 > 0 };
"""
ALICE = EntityRef("User", "alice")
ENTITIES = [
    EntityRecord("User", "alice", {}),
    EntityRecord("Doc", "low", {"level": 1}),
    EntityRecord("Doc", "high", {"level": 5}),
]


def engine(cache_size: int = 65_536) -> PolicyEngine:
    specs, problems = parse_policy_file("cache.cedar", POLICIES)
    assert problems == []
    return PolicyEngine(specs, ENTITIES, cache_size=cache_size)


def request(
    action: str = "read",
    doc: str = "low",
    context: dict[str, Any] | None = None,
    subject_properties: dict[str, Any] | None = None,
) -> DecisionRequest:
    return DecisionRequest(
        ALICE, action, EntityRef("Doc", doc), context or {}, subject_properties or {}, {}, {}
    )


def test_the_same_question_is_answered_from_the_cache() -> None:
    eng = engine()
    first = eng.decide(request())
    assert first.outcome is Outcome.ALLOW
    assert eng.decide(request()) is first  # the remembered object, not a new evaluation


def test_context_is_part_of_the_question() -> None:
    eng = engine()
    assert eng.decide(request(context={"big": False})).outcome is Outcome.ALLOW
    assert eng.decide(request(context={"big": True})).outcome is Outcome.APPROVAL_REQUIRED
    assert eng.decide(request(context={"big": False})).outcome is Outcome.ALLOW


def test_context_no_policy_reads_is_not_part_of_the_question() -> None:
    # Cedar is handed only what the policies read (tether.policy._context_use): a new
    # request id asks Cedar nothing new, so the remembered answer is the answer.
    eng = engine()
    first = eng.decide(request(context={"big": False, "request_id": "1"}))
    assert first.outcome is Outcome.ALLOW
    assert eng.decide(request(context={"big": False, "request_id": "2"})) is first
    assert eng.decide(request(context={"big": False})) is first
    # What the policies read still is part of it.
    assert eng.decide(request(context={"big": True, "request_id": "1"})) is not first


def test_an_unread_value_cedar_may_refuse_keeps_the_whole_context_in_the_question() -> None:
    # A float goes to Cedar as a `decimal` escape: not cut, so Cedar sees (and the key
    # holds) the whole context, and a context Cedar refuses stays a refusal.
    eng = engine()
    first = eng.decide(request(context={"big": False}))
    floated = eng.decide(request(context={"big": False, "ratio": 0.5}))
    assert floated is not first
    assert floated.outcome is Outcome.ALLOW
    assert eng.decide(request(context={"big": False, "ratio": 0.5})) is floated
    refused = eng.decide(request(context={"big": False, "odd": {"__expr": "1"}}))
    assert refused.outcome is Outcome.DENY
    assert refused.errors


def test_a_new_drift_record_changes_the_answer_at_once() -> None:
    eng = engine()
    assert eng.decide(request()).outcome is Outcome.ALLOW
    flagged = {"behaviour": {"restricted": True}}
    assert eng.decide(request(), flagged).outcome is Outcome.DENY
    assert eng.decide(request(), {"behaviour": {"restricted": False}}).outcome is Outcome.ALLOW


def test_request_asserted_attributes_are_never_cached() -> None:
    eng = engine()
    ops = eng.decide(request("write", subject_properties={"team": "ops"}))
    dev = eng.decide(request("write", subject_properties={"team": "dev"}))
    assert (ops.outcome, dev.outcome) == (Outcome.ALLOW, Outcome.DENY)
    assert eng.decide(request("write", subject_properties={"team": "ops"})) is not ops
    assert eng.decide(request("write")).outcome is Outcome.DENY


def test_evaluation_errors_are_not_remembered() -> None:
    eng = engine()
    failed = eng.decide(request("delete", context={"count": "x"}))
    assert failed.outcome is Outcome.DENY
    assert failed.errors
    again = eng.decide(request("delete", context={"count": "x"}))
    assert again is not failed
    assert again.errors
    assert eng.decide(request("delete", context={"count": 1})).outcome is Outcome.ALLOW


def test_the_cache_is_bounded() -> None:
    eng = engine(cache_size=3)
    for n in range(10):
        eng.decide(request(context={"n": n}))
        assert len(eng._answers) <= 3


contexts = st.dictionaries(  # "n" and "note" no policy reads
    st.sampled_from(["big", "count", "n", "note"]),
    st.one_of(
        st.booleans(),
        st.integers(-5, 5),
        st.text(max_size=4),
        st.floats(-2, 2, allow_nan=False),  # a `decimal` escape: the context is not cut
        st.none(),
    ),
    max_size=3,
)


@settings(max_examples=150, deadline=None)
@given(
    questions=st.lists(
        st.tuples(
            st.sampled_from(["read", "write", "delete"]),
            st.sampled_from(["low", "high", "unknown"]),
            contexts,
            st.booleans(),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_cached_answers_equal_uncached_answers(
    questions: list[tuple[str, str, dict[str, Any], bool]],
) -> None:
    cached, uncached = engine(cache_size=4), engine(cache_size=0)
    for action, doc, context, restricted in questions * 2:  # every question asked twice
        extra = {"behaviour": {"restricted": restricted}}
        got = cached.decide(request(action, doc, context), extra)
        want = uncached.decide(request(action, doc, context), extra)
        # Cedar names determining policies in no fixed order: compare them as sets.
        assert (got.outcome, set(got.reasons), got.errors) == (
            want.outcome,
            set(want.reasons),
            want.errors,
        )
    assert uncached._answers == {}
