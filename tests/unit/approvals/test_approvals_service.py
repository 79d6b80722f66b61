"""``Tether.evaluate`` with approvals: a ticket, the approved retry once, never past a deny."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from approval_people import People
from sqlalchemy import Engine, insert, select

from tether.approvals import APPROVAL_USED, ApprovalStatus, Verdict
from tether.config import Settings
from tether.estate.compiled import CompiledEstate
from tether.policy import DecisionRequest, EntityRecord, EntityRef, Outcome, parse_policy_file
from tether.services import Tether, WouldBlock
from tether.store.approval_tables import approvals
from tether.store.tables import decisions, estate_revisions

POLICIES = """
@id("agents-pay")
permit(principal is agent, action == Action::"pay_invoice", resource);
@id("payments-need-approval")
@outcome("approval_required")
forbid(principal is agent, action == Action::"pay_invoice", resource)
when { context has amount && context.amount > 1000 };
@id("agents-export-redacted")
@outcome("constrain")
@obligations("max_rows=100")
permit(principal is agent, action == Action::"export", resource);
@id("exports-need-approval")
@outcome("approval_required")
forbid(principal is agent, action == Action::"export", resource);
@id("no-paying-blocked")
forbid(principal, action, resource == invoice::"BLOCKED") when { context has amount };
"""
BOT = EntityRef("agent", "billing-bot")


def pay(invoice: str = "INV-7", **context: object) -> DecisionRequest:
    return DecisionRequest(
        BOT, "pay_invoice", EntityRef("invoice", invoice), {"amount": 1200, **context}
    )


@pytest.fixture
def tether(people: People, store: Engine, tmp_path: Path) -> Iterator[Tether]:
    specs, problems = parse_policy_file("policies/p.cedar", POLICIES)
    assert problems == []
    bundle = CompiledEstate(
        policies=specs, entities=[EntityRecord("agent", "billing-bot", {})]
    ).to_bundle()
    with store.begin() as connection:
        connection.execute(
            insert(estate_revisions).values(
                digest="0" * 64,
                applied_at=datetime.now(UTC),
                applied_by="test",
                source="test",
                summary={},
                bundle=bundle,
            )
        )
    made = Tether(
        Settings(master_key_file=str(tmp_path / "master.key"), flush_interval_ms=0), engine=store
    )
    yield made
    made.close()


def test_the_approved_retry_is_allowed_once_and_recorded(tether: Tether, store: Engine) -> None:
    asked = tether.evaluate(pay(), caller="gateway")
    assert asked.decision.outcome is Outcome.APPROVAL_REQUIRED
    ticket = asked.approval
    assert ticket is not None
    assert ticket["status"] == "pending"
    approval_id = ticket["id"]
    assert ticket["poll"] == f"/v1/approvals/{approval_id}"
    stored = tether.approvals.store.get(approval_id)
    assert stored.decision_id == asked.decision_id
    assert stored.reasons == ("payments-need-approval",)

    early = tether.evaluate(pay(approval_id=approval_id), caller="gateway")
    assert early.decision.outcome is Outcome.APPROVAL_REQUIRED
    assert early.approval is not None
    assert early.approval["id"] == approval_id

    tether.approvals.decide(approval_id, Verdict.APPROVE, approver_id="carol", comment="ok")
    retry = tether.evaluate(pay(approval_id=approval_id, time="now"), caller="gateway")
    assert retry.decision.outcome is Outcome.ALLOW
    assert retry.decision.reasons == (f"approval:{approval_id}",)
    again = tether.evaluate(pay(approval_id=approval_id), caller="gateway")
    assert again.decision.outcome is Outcome.DENY
    assert again.decision.error_code == APPROVAL_USED
    assert tether.approvals.store.get(approval_id).used_decision_id == retry.decision_id

    tether.decision_log.flush()
    with store.connect() as connection:
        rows = {
            r.decision_id: r
            for r in connection.execute(select(decisions.c.decision_id, decisions.c.reasons))
        }
    assert rows[retry.decision_id].reasons == [f"approval:{approval_id}"]
    assert rows[again.decision_id].reasons == [APPROVAL_USED]


def test_an_approval_never_overrides_a_deny(tether: Tether) -> None:
    asked = tether.evaluate(pay(), caller="gateway")
    assert asked.approval is not None
    approval_id = asked.approval["id"]
    tether.approvals.decide(approval_id, Verdict.APPROVE, approver_id="carol")
    blocked = tether.evaluate(pay("BLOCKED", approval_id=approval_id), caller="gateway")
    assert blocked.decision.outcome is Outcome.DENY
    assert "no-paying-blocked" in blocked.decision.reasons
    # Not used up by the refused request: the bound request may still use it.
    assert tether.approvals.store.get(approval_id).status(tether.approvals.now()) is (
        ApprovalStatus.APPROVED
    )


def test_decisions_without_approval_leave_no_approval(tether: Tether, store: Engine) -> None:
    small = DecisionRequest(BOT, "pay_invoice", EntityRef("invoice", "INV-1"), {"amount": 10})
    assert tether.evaluate(small, caller="gateway").decision.outcome is Outcome.ALLOW
    with store.connect() as connection:
        assert connection.execute(select(approvals.c.id)).all() == []


def test_asking_again_while_pending_reuses_the_ticket_until_it_is_decided(
    tether: Tether, store: Engine
) -> None:
    first = tether.evaluate(pay("INV-9"), caller="gateway").approval
    again = tether.evaluate(pay("INV-9"), caller="gateway").approval
    other_caller = tether.evaluate(pay("INV-9"), caller="other-pep").approval
    other_request = tether.evaluate(pay("INV-10"), caller="gateway").approval
    assert first is not None
    assert again is not None
    assert other_caller is not None
    assert other_request is not None
    assert again["id"] == first["id"]
    assert len({first["id"], other_caller["id"], other_request["id"]}) == 3
    tether.approvals.decide(first["id"], Verdict.DENY, approver_id="carol")
    after = tether.evaluate(pay("INV-9"), caller="gateway").approval
    assert after is not None
    assert after["id"] != first["id"]
    with store.connect() as connection:
        count = connection.execute(select(approvals.c.id)).all()
    assert len(count) == 4


def test_an_approved_retry_still_carries_the_permits_obligations(tether: Tether) -> None:
    export = DecisionRequest(BOT, "export", EntityRef("invoice", "INV-3"), {})
    asked = tether.evaluate(export, caller="gateway")
    assert asked.decision.outcome is Outcome.APPROVAL_REQUIRED
    assert asked.approval is not None
    approval_id = asked.approval["id"]
    tether.approvals.decide(approval_id, Verdict.APPROVE, approver_id="carol")
    retry = DecisionRequest(
        BOT, "export", EntityRef("invoice", "INV-3"), {"approval_id": approval_id}
    )
    allowed = tether.evaluate(retry, caller="gateway").decision
    assert allowed.outcome is Outcome.CONSTRAIN
    assert dict(allowed.obligations) == {"max_rows": "100"}
    assert allowed.reasons == (f"approval:{approval_id}",)


def test_on_the_event_loop_a_ticket_is_left_to_a_thread(tether: Tether, store: Engine) -> None:
    # `may_block=False` (the HTTP edge's inline path): a ticket would be a store write, so
    # nothing is decided, recorded or stored, and the edge evaluates again in a thread.
    with pytest.raises(WouldBlock):
        tether.evaluate(pay(), caller="gateway", may_block=False)
    assert sum(tether.outcome_counts.values()) == 0
    allowed = tether.evaluate(pay(amount=10), caller="gateway", may_block=False)
    assert allowed.decision.outcome is Outcome.ALLOW
    tether.decision_log.flush()
    with store.connect() as connection:
        assert connection.execute(select(approvals.c.id)).all() == []
        stored = connection.execute(select(decisions.c.decision_id)).scalars().all()
    assert stored == [allowed.decision_id]
    asked = tether.evaluate(pay(), caller="gateway")  # where blocking is fine
    assert asked.approval is not None


def test_on_the_event_loop_a_ticket_just_handed_out_is_reused_without_a_thread(
    tether: Tether, store: Engine
) -> None:
    asked = tether.evaluate(pay("INV-11"), caller="gateway")  # the ticket: a store write
    assert asked.approval is not None
    again = tether.evaluate(pay("INV-11"), caller="gateway", may_block=False)
    assert again.decision.outcome is Outcome.APPROVAL_REQUIRED
    assert again.approval is not None
    assert again.approval["id"] == asked.approval["id"]
    with pytest.raises(WouldBlock):  # another caller's ticket is a new one: a store write
        tether.evaluate(pay("INV-11"), caller="other-pep", may_block=False)
    with pytest.raises(WouldBlock):  # a retry with an approval uses it: a store write
        tether.evaluate(
            pay("INV-11", approval_id=asked.approval["id"]), caller="gateway", may_block=False
        )
    tether.approvals.decide(asked.approval["id"], Verdict.DENY, approver_id="carol")
    with pytest.raises(WouldBlock):  # decided: no longer handed out
        tether.evaluate(pay("INV-11"), caller="gateway", may_block=False)
    tether.decision_log.flush()
    with store.connect() as connection:
        stored = connection.execute(select(decisions.c.decision_id)).scalars().all()
    assert sorted(stored) == sorted([asked.decision_id, again.decision_id])
