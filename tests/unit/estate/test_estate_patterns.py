"""Resource patterns: parsing, and the Cedar they compile to meaning what the glob means."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.estate import Entitlement, ResourcePattern, Where, entitlement_text, parse_pattern
from tether.estate._patterns import fnmatch_literal, glob_regex
from tether.estate.compiled import ResourceClassifier, ResourceRule
from tether.policy import DecisionRequest, EntityRef, PolicyEngine, parse_policy_file

# Characters that are special somewhere: Cedar strings and `like`, regexes, fnmatch.
ALPHABET = st.sampled_from('ab*\\".:/@-é€ x')
IDS = st.text(alphabet=st.sampled_from('ab\\".:/@-é€* \tx'), max_size=8)


def engine_for(pattern: ResourcePattern) -> PolicyEngine:
    grant = Entitlement("bot", 1, ("use",), (pattern,), Where("estate.yaml", 1))
    specs, problems = parse_policy_file("estate.yaml", entitlement_text(grant, "agent"))
    assert problems == []
    return PolicyEngine(specs)


def permits(engine: PolicyEngine, resource_type: str, resource_id: str) -> bool:
    request = DecisionRequest(
        EntityRef("agent", "bot"), "use", EntityRef(resource_type, resource_id)
    )
    context = {"subject_id": "bot", "resource_id": resource_id, "sensitivity": 0}
    decision = engine.decide(request, context)
    assert not decision.errors, decision.errors
    return decision.permits


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=ALPHABET, min_size=1, max_size=8), IDS)
def test_cedar_matches_what_the_glob_means(glob: str, resource_id: str) -> None:
    pattern = parse_pattern(f"doc:{glob}")
    assert isinstance(pattern, ResourcePattern)
    expected = glob_regex(glob).fullmatch(resource_id) is not None
    assert permits(engine_for(pattern), "doc", resource_id) is expected
    assert pattern.matches("doc", resource_id) is expected
    assert not permits(engine_for(pattern), "other", resource_id)


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=ALPHABET, min_size=1, max_size=8), IDS)
def test_classifier_agrees_with_the_glob(glob: str, resource_id: str) -> None:
    classifier = ResourceClassifier([ResourceRule(f"doc:{glob}", "internal", 2)])
    expected = glob_regex(glob).fullmatch(resource_id) is not None
    assert (classifier.classify(EntityRef("doc", resource_id))[0] == "internal") is expected


@given(IDS.filter(bool), IDS)
def test_literal_rules_match_only_their_own_id(entity_id: str, other: str) -> None:
    classifier = ResourceClassifier([ResourceRule(fnmatch_literal(f"doc:{entity_id}"), "x", 1)])
    assert classifier.classify(EntityRef("doc", entity_id)) == ("x", 1)
    if other != entity_id:
        assert classifier.classify(EntityRef("doc", other)) == (None, 0)


def test_star_alone_matches_any_type() -> None:
    pattern = parse_pattern("*")
    assert isinstance(pattern, ResourcePattern)
    engine = engine_for(pattern)
    assert permits(engine, "doc", "1")
    assert permits(engine, "anything", "else")


def test_cedar_forms() -> None:
    def text(p: str) -> str:
        pattern = parse_pattern(p)
        assert isinstance(pattern, ResourcePattern)
        grant = Entitlement("bot", 1, ("use",), (pattern,), Where("f", 1))
        return entitlement_text(grant, "agent")

    assert "when { resource is invoice };" in text("invoice:*")
    assert 'when { resource == table::"revenue_daily" };' in text("table:revenue_daily")
    assert 'when { resource is email && context.tether.resource_id like "*@example.org" };' in text(
        "email:*@example.org"
    )
    assert "when" not in text("*")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "must not be empty"),
        ("invoice", "must look like"),
        ("invoice:", "needs an id"),
        (":x", "Cedar identifier"),
        ("in voice:x", "Cedar identifier"),
        ("is:x", "reserved word"),
        ("Action:x", "reserved word"),
        ("doc:a[b]", "only `*` is a wildcard"),
        ("doc:a\nb", "control characters"),
    ],
)
def test_bad_patterns(text: str, problem: str) -> None:
    found = parse_pattern(text)
    assert isinstance(found, str)
    assert re.search(re.escape(problem), found)
