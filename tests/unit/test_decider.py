"""The decider on the in-memory ports of ``tether.testing``: what is decided and recorded."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from tether.decider import Decider, WouldBlock
from tether.estate.compiled import CompiledEstate
from tether.policy import DecisionRequest, EntityRecord, EntityRef, Outcome, parse_policy_file
from tether.testing import FixedEstate, MemorySink, NoTickets

POLICIES = """
@id("read") permit(principal, action == Action::"read", resource);
@id("export") @outcome("approval_required")
permit(principal, action == Action::"export", resource);
"""
READ = DecisionRequest(EntityRef("User", "alice"), "read", EntityRef("Doc", "d1"))
WRITE = DecisionRequest(EntityRef("User", "alice"), "write", EntityRef("Doc", "d1"))
EXPORT = DecisionRequest(EntityRef("User", "alice"), "export", EntityRef("Doc", "d1"))


def _estate() -> FixedEstate:
    specs, problems = parse_policy_file("policies/p.cedar", POLICIES)
    assert problems == []
    entities = [EntityRecord("User", "alice", {}), EntityRecord("User", "bob", {})]
    return FixedEstate(CompiledEstate(policies=specs, entities=entities), revision=7)


def _decider(
    estate: FixedEstate | None = None,
    sink: MemorySink | None = None,
    behaviour: Mapping[str, Mapping[str, Any]] | None = None,
    **options: bool,
) -> tuple[Decider, MemorySink, NoTickets]:
    sink = MemorySink() if sink is None else sink
    tickets = NoTickets()
    view = _estate() if estate is None else estate
    decider = Decider(view, sink, tickets, {} if behaviour is None else behaviour, **options)
    return decider, sink, tickets


def test_each_evaluation_is_recorded_once_with_its_revision_and_caller() -> None:
    decider, sink, _ = _decider()
    allowed = decider.evaluate(READ, request_id="r1", caller="pep-1")
    denied = decider.evaluate(WRITE)
    assert allowed.decision.outcome is Outcome.ALLOW
    assert denied.decision.outcome is Outcome.DENY
    assert [row["decision_id"] for row in sink.rows] == [allowed.decision_id, denied.decision_id]
    first = sink.rows[0]
    assert (first["outcome"], first["estate_revision"], first["caller"]) == ("allow", 7, "pep-1")
    assert first["request_id"] == "r1"
    assert decider.outcome_counts == {"allow": 1, "deny": 1}


def test_decide_and_search_record_nothing() -> None:
    decider, sink, _ = _decider()
    assert decider.decide(READ).permits
    assert decider.search_subjects("User", READ) == [
        EntityRef("User", "alice"),
        EntityRef("User", "bob"),
    ]
    assert decider.search_actions(READ) == ["read"]
    assert sink.rows == []


def test_an_unhealthy_sink_means_no_decision_is_made() -> None:
    decider, sink, _ = _decider()
    sink.fail("the store is down")
    refused = decider.evaluate(READ).decision
    assert not refused.permits
    assert refused.error_code == "decisions_unrecorded"
    assert sink.lost == 1
    sink.recover()
    assert decider.evaluate(READ).decision.permits


def test_failing_open_is_a_setting() -> None:
    decider, sink, _ = _decider(fail_closed_unrecorded=False)
    sink.fail()
    assert decider.evaluate(READ).decision.permits


def test_an_offboarded_identity_is_refused_before_policy() -> None:
    estate = _estate()
    decider, sink, _ = _decider(estate)
    estate.offboard("alice")
    assert decider.evaluate(READ).decision.error_code == "identity_offboarded"
    assert decider.decide(READ).error_code == "identity_offboarded"
    assert sink.rows[0]["outcome"] == "deny"


def test_approval_required_goes_to_the_settler_and_never_blocks_an_event_loop() -> None:
    decider, sink, tickets = _decider()
    with pytest.raises(WouldBlock):
        decider.evaluate(EXPORT, may_block=False)
    assert sink.rows == []  # nothing recorded before WouldBlock
    assert tickets.asked == []
    recorded = decider.evaluate(EXPORT)
    assert recorded.decision.outcome is Outcome.APPROVAL_REQUIRED
    assert [request for request, _ in tickets.asked] == [EXPORT]


def test_observers_see_every_row_and_behaviour_reaches_the_context() -> None:
    behaviour: dict[str, Mapping[str, Any]] = {}
    decider, _, _ = _decider(behaviour=behaviour)
    seen: list[str] = []
    decider.evaluate(READ)
    decider.observe(lambda row: seen.append(row["decision_id"]))
    later = decider.evaluate(READ)
    assert seen == [later.decision_id]  # from the moment it was added
    assert "behaviour" not in decider.context(READ)
    behaviour["alice"] = {"drift_score": 80, "restricted": True}
    assert decider.context(READ)["behaviour"] == {"drift_score": 80, "restricted": True}
