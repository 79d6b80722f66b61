"""``tool_chain``: sensitive-source -> sink flows, chain depth, unseen transitions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from tether.drift.baselines import BaselineLearner
from tether.drift.catalog import DefaultToolCatalog
from tether.drift.detectors import load_detector, tool_chain
from tether.drift.model import (
    DetectionContext,
    IdentityView,
    IntendedCall,
    Observation,
    TaskView,
)
from tether.drift.scoring import thresholds_for, to_finding

AGENT = IdentityView("mail-bot", "agent", "agent", lambda a, r: True, blast_radius=0.5)
TASK = TaskView(
    task_id="t1",
    purpose="answer alice",
    actions=frozenset({"read_inbox", "send_email"}),
    resources=("*",),
    calls=(IntendedCall("read_inbox"), IntendedCall("send_email", {"to": "alice@corp.example"})),
)
_refs = iter(range(10**9))


def _obs(
    tool: str, *, call_id: str | None = None, parent: str | None = None, **arguments: Any
) -> Observation:
    return Observation(
        ref=f"event:{next(_refs)}",
        at=datetime(2026, 1, 1, tzinfo=UTC),
        identity_id="mail-bot",
        action=tool,
        tool_name=tool,
        task_id="t1",
        call_id=call_id,
        parent_call_id=parent,
        arguments=arguments,
    )


def _ctx(
    history: list[Observation], task: TaskView | None = TASK, baseline: Any = None
) -> DetectionContext:
    return DetectionContext(AGENT, task, baseline, tuple(history), DefaultToolCatalog())


def test_registered_under_its_name() -> None:
    assert load_detector("tool_chain").detect is tool_chain.detect


def test_read_messages_then_send_to_a_new_recipient_is_a_flow() -> None:
    read = _obs("read_inbox")
    send = _obs("send_email", to="drop@evil.example")
    (signal,) = tool_chain.detect(send, _ctx([read]))
    assert signal.details["flow"] == ["read_inbox", "send_email"]
    assert signal.evidence == (send.ref, read.ref)
    assert "to new target `drop@evil.example`" in signal.reason
    finding = to_finding(signal, send, _ctx([read]), thresholds_for("agent"))
    assert finding.severity.value in ("high", "critical")


def test_the_intended_flow_is_silent() -> None:
    read = _obs("read_inbox")
    assert tool_chain.detect(_obs("send_email", to="Alice@corp.example"), _ctx([read])) == []


def test_a_sink_without_a_sensitive_read_before_it_is_no_flow() -> None:
    assert tool_chain.detect(_obs("send_email", to="drop@evil.example"), _ctx([])) == []


def test_without_intent_the_baseline_decides_what_is_new() -> None:
    seen = [replace(_obs("send_email", to="bob@corp.example"), resource="email:bob@corp.example")]
    baseline = BaselineLearner("mail-bot").add_all(seen).build(1)
    read = _obs("read_inbox")
    known = replace(_obs("send_email", to="bob@corp.example"), resource_type="email")
    new = _obs("send_email", to="eve@else.example")
    flows = [
        s for s in tool_chain.detect(known, _ctx([read], None, baseline)) if "flow" in s.details
    ]
    assert flows == []
    flows = [s for s in tool_chain.detect(new, _ctx([read], None, baseline)) if "flow" in s.details]
    assert [s.deviation for s in flows] == [1.0]


def test_deep_chains_are_reported() -> None:
    history = [_obs("plan", call_id="c0")] + [
        _obs("plan", call_id=f"c{i}", parent=f"c{i - 1}") for i in range(1, 4)
    ]
    deep = _obs("get_current_day", call_id="c4", parent="c3")
    (signal,) = tool_chain.detect(deep, _ctx(history))
    assert signal.details["depth"] == 4
    shallow = _obs("get_current_day", call_id="c2b", parent="c1")
    assert tool_chain.detect(shallow, _ctx(history)) == []


def test_transitions_unseen_in_the_baseline() -> None:
    usual = [_obs("read_inbox"), _obs("send_email")]
    baseline = BaselineLearner("mail-bot").add_all(usual).build(1)
    ctx = _ctx([_obs("read_inbox")], None, baseline)
    assert tool_chain.detect(_obs("send_email"), ctx) == []
    (signal,) = tool_chain.detect(_obs("delete_file"), ctx)
    assert signal.details["transition"] == "read_inbox->delete_file"
