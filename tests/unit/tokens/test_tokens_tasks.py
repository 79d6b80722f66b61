"""Task requests, intents, and intent within entitlement (pattern containment)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.estate import ResourcePattern, parse_pattern
from tether.policy import EntityRef
from tether.tokens import TaskIntent, TaskRecord, TaskRequest
from tether.tokens.errors import IntentExceedsEntitlement, TaskRequestInvalid
from tether.tokens.tasks import (
    Grant,
    check_within_entitlement,
    intent_excess,
    parse_ttl,
    pattern_within,
)
from token_support import task_body


def pattern(text: str) -> ResourcePattern:
    parsed = parse_pattern(text)
    assert not isinstance(parsed, str), parsed
    return parsed


def paths(error: TaskRequestInvalid) -> list[str]:
    return [e.path for e in error.field_errors]


def test_a_task_request_reads_purpose_intent_and_ttl() -> None:
    request = TaskRequest.from_json(task_body(ttl="10m"))
    assert request.purpose == "send the March invoices"
    assert request.ttl_s == 600
    assert request.intent.actions == ("read_invoice", "send_email")
    assert [p.text for p in request.intent.resources] == ["invoice:*", "email:*@example.org"]
    assert request.intent.data_classes == ("confidential", "internal")
    assert TaskRequest.from_json(task_body(ttl=None)).ttl_s is None
    assert TaskRequest.from_json(task_body(ttl=90)).ttl_s == 90


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ([], ""),
        ({**task_body(), "purpose": " "}, "purpose"),
        ({**task_body(), "purpose": "x" * 1001}, "purpose"),
        ({**task_body(), "ttl": "soon"}, "ttl"),
        ({**task_body(), "ttl": 0}, "ttl"),
        ({**task_body(), "ttl": True}, "ttl"),
        ({**task_body(), "owner": "me"}, "owner"),
        ({**task_body(), "intent": None}, "intent"),
        ({**task_body(), "intent": {"actions": ["a"]}}, "intent.resources"),
        ({**task_body(), "intent": {"actions": [], "resources": ["x:*"]}}, "intent.actions"),
        (
            {**task_body(), "intent": {"actions": ["two words"], "resources": ["x:*"]}},
            "intent.actions[0]",
        ),
        (
            {**task_body(), "intent": {"actions": ["a"], "resources": ["nope"]}},
            "intent.resources[0]",
        ),
        (
            {**task_body(), "intent": {"actions": ["a"], "resources": ["x:*"], "data_classes": 3}},
            "intent.data_classes",
        ),
        (
            {**task_body(), "intent": {"actions": ["a"], "resources": ["x:*"], "tools": []}},
            "intent.tools",
        ),
        ({**task_body(), "intent": {"actions": [5], "resources": ["x:*"]}}, "intent.actions[0]"),
    ],
)
def test_bad_requests_name_the_member(body: Any, where: str) -> None:
    with pytest.raises(TaskRequestInvalid) as caught:
        TaskRequest.from_json(body)
    assert where in paths(caught.value)
    assert caught.value.code == "task_request_invalid"


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(TaskRequestInvalid) as caught:
        TaskRequest.from_json({"purpose": "", "ttl": "x", "intent": {"actions": []}})
    assert {"purpose", "ttl", "intent.actions", "intent.resources"} <= set(paths(caught.value))


@pytest.mark.parametrize(
    ("value", "seconds"), [(5, 5), ("30s", 30), ("15m", 900), ("4h", 14400), ("1d", 86400)]
)
def test_ttl(value: object, seconds: int) -> None:
    assert parse_ttl(value) == seconds


@pytest.mark.parametrize("value", ["0m", "-5", "5 minutes", 1.5, -1, [5]])
def test_bad_ttl(value: object) -> None:
    with pytest.raises(ValueError, match="seconds"):
        parse_ttl(value)


@pytest.mark.parametrize(
    ("inner", "outer", "within"),
    [
        ("invoice:INV-1", "invoice:*", True),
        ("invoice:*", "invoice:*", True),
        ("invoice:INV-*", "invoice:*", True),
        ("invoice:*", "invoice:INV-*", False),
        ("invoice:*", "*", True),
        ("*", "invoice:*", False),
        ("email:*@example.org", "email:*@example.org", True),
        ("email:*@example.org", "email:*", True),
        ("email:ops@example.org", "email:*@example.org", True),
        ("email:*", "email:*@example.org", False),
        ("email:a*@example.org", "email:*@example.org", True),
        ("email:*@evil.example.org", "email:*@example.org", False),  # `@evil.` breaks it
        ("email:*@example.org.evil", "email:*@example.org", False),
        ("table:a*c", "table:a*", True),
        ("table:a*", "table:a*c", False),
        ("table:ab", "table:a*b", True),
        ("payments:*", "invoice:*", False),
    ],
)
def test_pattern_containment(inner: str, outer: str, within: bool) -> None:
    assert pattern_within(pattern(inner), pattern(outer)) is within


GLOB = st.text(alphabet="ab*", min_size=1, max_size=6)


@settings(max_examples=300, deadline=None)
@given(inner=GLOB, outer=GLOB)
def test_containment_agrees_with_every_short_id(inner: str, outer: str) -> None:
    """``P`` within ``E`` exactly when every id ``P`` matches, ``E`` matches (ids up to 7
    characters over the alphabet, plus one with a character neither names)."""
    p, e = pattern(f"t:{inner}"), pattern(f"t:{outer}")
    ids = [""]
    for _ in range(7):
        ids += [i + c for i in ids[-(2 ** (len(ids[-1]) + 1)) :] for c in "ab"]
    ids += ["zz", "aza", "azb"]
    semantic = all(e.matches("t", i) for i in set(ids) if p.matches("t", i))
    if pattern_within(p, e):
        assert semantic
    if not semantic:
        assert not pattern_within(p, e)


GRANTS = [
    Grant(
        frozenset({"read_invoice", "send_email"}),
        (pattern("invoice:*"), pattern("email:*@example.org")),
    ),
    Grant(frozenset({"pay_invoice"}), (pattern("payments:*"),)),
]


def intent(actions: tuple[str, ...], resources: tuple[str, ...]) -> TaskIntent:
    return TaskIntent(actions, tuple(pattern(r) for r in resources))


def test_an_intent_within_the_grants_passes() -> None:
    check_within_entitlement("bot", intent(("read_invoice",), ("invoice:INV-*",)), GRANTS)
    check_within_entitlement(
        "bot", intent(("read_invoice", "send_email"), ("invoice:*", "email:*@example.org")), GRANTS
    )


def test_an_intent_beyond_the_grants_names_each_excess() -> None:
    wide = intent(("read_invoice", "pay_invoice"), ("invoice:*", "email:*"))
    errors = intent_excess("bot", wide, GRANTS)
    messages = [e.message for e in errors]
    assert messages == [
        "`pay_invoice` on `invoice:*` exceeds the standing entitlement of `bot`",
        "`read_invoice` on `email:*` exceeds the standing entitlement of `bot`",
        "`pay_invoice` on `email:*` exceeds the standing entitlement of `bot`",
    ]
    assert [e.path for e in errors] == [
        "intent.resources[0]",
        "intent.resources[1]",
        "intent.resources[1]",
    ]
    with pytest.raises(IntentExceedsEntitlement) as caught:
        check_within_entitlement("bot", wide, GRANTS)
    assert caught.value.code == "intent_exceeds_entitlement"


def test_an_action_needs_one_grant_covering_its_resource() -> None:
    # send_email is granted, and payments:* is granted, but never together.
    assert intent_excess("bot", intent(("send_email",), ("payments:P-1",)), GRANTS)
    assert intent_excess("nobody", intent(("read_invoice",), ("invoice:1",)), [])


def test_intent_outside_names_the_action_resource_or_data_class() -> None:
    declared = TaskIntent(("read_invoice",), (pattern("invoice:*"),), ("confidential",))
    invoice = EntityRef("invoice", "INV-1")
    assert declared.outside("read_invoice", invoice, "confidential") is None
    assert declared.outside("read_invoice", invoice, None) is None  # unclassified
    assert "action `pay_invoice`" in (declared.outside("pay_invoice", invoice, None) or "")
    assert "resource `email:x`" in (
        declared.outside("read_invoice", EntityRef("email", "x"), None) or ""
    )
    assert "data class `restricted`" in (
        declared.outside("read_invoice", invoice, "restricted") or ""
    )


NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _record(declared: TaskIntent) -> TaskRecord:
    return TaskRecord(
        id="t1",
        identity_id="bot",
        identity_kind="agent",
        workload_class="agent",
        purpose="p",
        intent=declared,
        status="open",
        opened_at=NOW,
        expires_at=NOW + timedelta(minutes=5),
        opened_by="spiffe://example.org/bot",
    )


def test_a_task_record_states_and_cedar_context() -> None:
    now = NOW
    task = _record(intent(("read_invoice",), ("invoice:*",)))
    assert task.state(now) == "open"
    assert task.state(now + timedelta(minutes=5)) == "expired"
    assert task.to_json(now)["status"] == "open"
    record = task.cedar(within_intent=False, depth=1, actor="helper")
    assert record == {
        "id": "t1",
        "purpose": "p",
        "intent": {"actions": ["read_invoice"], "resources": ["invoice:*"], "data_classes": []},
        "within_intent": False,
        "delegation_depth": 1,
        "actor": "helper",
    }
    assert "actor" not in task.cedar(within_intent=True, depth=0, actor=None)


def _with_calls(calls: Any) -> dict[str, Any]:
    body = task_body()
    body["intent"]["calls"] = calls
    return body


def test_an_intent_may_declare_its_calls_which_policies_do_not_see() -> None:
    calls = [
        {"tool": "send_email", "arguments": {"to": ["ap@example.org"], "attempt": 1}},
        {"tool": "read_invoice"},
    ]
    intent = TaskRequest.from_json(_with_calls(calls)).intent
    assert [(c.tool, dict(c.arguments)) for c in intent.calls] == [
        ("send_email", {"to": ["ap@example.org"], "attempt": 1}),
        ("read_invoice", {}),
    ]
    assert intent.to_json()["calls"][0] == calls[0]
    assert "calls" not in TaskRequest.from_json(task_body()).intent.to_json()
    task = _record(intent)
    assert "calls" not in task.cedar(within_intent=True, depth=0, actor=None)["intent"]
    assert task.to_json(NOW)["intent"]["calls"][1] == {"tool": "read_invoice", "arguments": {}}


@pytest.mark.parametrize(
    ("calls", "where"),
    [
        ({"tool": "send_email"}, "intent.calls"),
        (["send_email"], "intent.calls[0]"),
        ([{"tool": "send_email", "to": "x"}], "intent.calls[0]"),
        ([{"tool": "delete_invoice"}], "intent.calls[0].tool"),
        ([{"tool": "send_email", "arguments": []}], "intent.calls[0].arguments"),
        ([{"tool": "send_email", "arguments": {"to": {"a": 1}}}], "intent.calls[0].arguments.to"),
        ([{"tool": "send_email", "arguments": {"to": [["x"]]}}], "intent.calls[0].arguments.to"),
        ([{"tool": "send_email", "arguments": {"cc": True}}], "intent.calls[0].arguments.cc"),
    ],
)
def test_bad_intended_calls_name_the_member(calls: Any, where: str) -> None:
    with pytest.raises(TaskRequestInvalid) as caught:
        TaskRequest.from_json(_with_calls(calls))
    assert where in paths(caught.value)
