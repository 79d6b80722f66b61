"""Approvals in the store, on SQLite and PostgreSQL: made, decided by the right people
only, and used exactly once, also when retries race."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from approval_people import People
from sqlalchemy import select

from tether.approvals import (
    APPROVAL_DENIED,
    APPROVAL_EXPIRED,
    APPROVAL_MISMATCH,
    APPROVAL_PENDING,
    APPROVAL_UNKNOWN,
    APPROVAL_USED,
    Approval,
    ApprovalStatus,
    ApprovalStore,
    Verdict,
    binding_hash,
    decide,
)
from tether.approvals.errors import (
    ApprovalAlreadyDecided,
    ApprovalExpired,
    ApprovalNotFound,
    ApprovalRequestInvalid,
    ApproverNotUser,
)
from tether.callers.errors import RoleForbidden, SelfApprovalForbidden
from tether.policy import DecisionRequest, EntityRef
from tether.store.tables import audit_log

PAY = DecisionRequest(
    EntityRef("agent", "billing-bot"),
    "pay_invoice",
    EntityRef("invoice", "INV-7"),
    {"amount": 1200, "time": "2026-01-01T00:00:00Z"},
)
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def pending(store: ApprovalStore, request: DecisionRequest = PAY, **kw: object) -> Approval:
    return store.create(
        request,
        reasons=["payments-need-approval"],
        requested_by=str(kw.get("requested_by", "gateway")),
        decision_id="d-1",
        binding=binding_hash(request),
        expires_at=T0 + timedelta(minutes=15),
        now=T0,
    )


def use(store: ApprovalStore, approval: Approval, request: DecisionRequest = PAY, **kw: object):  # type: ignore[no-untyped-def]
    return store.use(
        approval.id,
        binding=binding_hash(request),
        requested_by=str(kw.get("requested_by", "gateway")),
        decision_id="d-2",
        now=kw.get("now", T0 + timedelta(minutes=1)),  # type: ignore[arg-type]
    )


def test_a_new_approval_is_pending_and_names_its_parties(people: People) -> None:
    store = ApprovalStore(people.engine)
    approval = pending(store)
    assert approval.status(T0) is ApprovalStatus.PENDING
    stored = store.get(approval.id)
    assert stored == approval
    assert set(stored.parties) == {"billing-bot", "gateway", "olga"}
    assert stored.request["context"] == {"amount": 1200}
    assert stored.ticket(T0) == {
        "id": approval.id,
        "status": "pending",
        "expires_at": (T0 + timedelta(minutes=15)).isoformat(),
        "poll": f"/v1/approvals/{approval.id}",
    }
    assert stored.status(T0 + timedelta(minutes=15)) is ApprovalStatus.EXPIRED


def test_an_approved_approval_is_used_once(people: People) -> None:
    store = ApprovalStore(people.engine)
    approval = pending(store)
    assert use(store, approval).code == APPROVAL_PENDING
    decided = decide(
        people.engine,
        approval.id,
        Verdict.APPROVE,
        approver_id="carol",
        comment="ok",
        now=T0 + timedelta(seconds=30),
    )
    assert decided.decided is ApprovalStatus.APPROVED
    first = use(store, approval)
    assert first.code is None
    assert first.approval is not None
    assert first.approval.used_decision_id == "d-2"
    assert use(store, approval).code == APPROVAL_USED
    assert store.get(approval.id).status(T0) is ApprovalStatus.USED


@pytest.mark.parametrize(
    "request_change",
    [
        {"context": {"amount": 1201}},
        {"resource": EntityRef("invoice", "INV-8")},
        {"action": "refund"},
        {"subject": EntityRef("agent", "other-bot")},
    ],
)
def test_another_request_does_not_match(people: People, request_change: dict[str, object]) -> None:
    store = ApprovalStore(people.engine)
    approval = pending(store)
    decide(people.engine, approval.id, Verdict.APPROVE, approver_id="carol", now=T0)
    fields = {"subject": PAY.subject, "action": PAY.action, "resource": PAY.resource}
    fields["context"] = PAY.context
    other = DecisionRequest(**{**fields, **request_change})  # type: ignore[arg-type]
    assert use(store, approval, other).code == APPROVAL_MISMATCH
    # A volatile key differs: still the same request.
    retry = DecisionRequest(
        PAY.subject, PAY.action, PAY.resource, {**PAY.context, "time": "later", "request_id": "r"}
    )
    assert use(store, approval, retry).code is None


def test_another_pep_cannot_use_it(people: People) -> None:
    store = ApprovalStore(people.engine)
    approval = pending(store)
    decide(people.engine, approval.id, Verdict.APPROVE, approver_id="carol", now=T0)
    assert use(store, approval, requested_by="other-pep").code == APPROVAL_MISMATCH
    assert use(store, approval).code is None


def test_denied_expired_and_unknown_are_refused(people: People) -> None:
    store = ApprovalStore(people.engine)
    denied = pending(store)
    decide(people.engine, denied.id, Verdict.DENY, approver_id="dave", now=T0)
    assert use(store, denied).code == APPROVAL_DENIED
    late = pending(store)
    decide(people.engine, late.id, Verdict.APPROVE, approver_id="carol", now=T0)
    assert use(store, late, now=T0 + timedelta(minutes=15)).code == APPROVAL_EXPIRED
    never = pending(store)
    assert use(store, never, now=T0 + timedelta(hours=1)).code == APPROVAL_EXPIRED
    for bad in ("nope", "", 42, None, "x" * 100):
        retry = store.use(bad, binding="h", requested_by="gateway", decision_id="d", now=T0)
        assert retry.code == APPROVAL_UNKNOWN


@pytest.mark.parametrize(
    ("approver", "error"),
    [
        ("billing-bot", ApproverNotUser),  # the subject (an agent: never approves)
        ("gateway", ApproverNotUser),  # the requesting PEP
        ("nobody", ApproverNotUser),  # not an identity at all
        ("erin", RoleForbidden),  # a user, but an auditor
        ("olga", SelfApprovalForbidden),  # an approver, but the subject's owner
    ],
)
def test_only_an_approving_user_who_is_no_party_decides(
    people: People, approver: str, error: type[Exception]
) -> None:
    store = ApprovalStore(people.engine)
    approval = pending(store)
    with pytest.raises(error):
        decide(people.engine, approval.id, Verdict.APPROVE, approver_id=approver, now=T0)
    assert store.get(approval.id).decided is ApprovalStatus.PENDING


def test_a_user_never_approves_its_own_request(people: People) -> None:
    store = ApprovalStore(people.engine)
    own = DecisionRequest(EntityRef("user", "carol"), "wire", EntityRef("account", "A"))
    approval = pending(store, own)
    with pytest.raises(SelfApprovalForbidden) as raised:
        decide(people.engine, approval.id, Verdict.APPROVE, approver_id="carol", now=T0)
    assert raised.value.code == "self_approval_forbidden"
    # A user requesting through a PEP of its own is the requester: also refused.
    asked = pending(store, PAY, requested_by="dave")
    with pytest.raises(SelfApprovalForbidden):
        decide(people.engine, asked.id, Verdict.APPROVE, approver_id="dave", now=T0)


def test_a_verdict_is_final_and_an_expired_approval_cannot_be_decided(people: People) -> None:
    store = ApprovalStore(people.engine)
    approval = pending(store)
    decide(people.engine, approval.id, Verdict.DENY, approver_id="dave", now=T0)
    with pytest.raises(ApprovalAlreadyDecided):
        decide(people.engine, approval.id, Verdict.APPROVE, approver_id="carol", now=T0)
    late = pending(store)
    with pytest.raises(ApprovalExpired):
        decide(
            people.engine,
            late.id,
            Verdict.APPROVE,
            approver_id="carol",
            now=T0 + timedelta(minutes=16),
        )
    with pytest.raises(ApprovalNotFound):
        decide(people.engine, "missing", Verdict.APPROVE, approver_id="carol", now=T0)
    with pytest.raises(ApprovalRequestInvalid):
        decide(people.engine, late.id, Verdict.DENY, approver_id="carol", comment="x" * 2001)


def test_every_verdict_is_in_the_audit_log(people: People) -> None:
    store = ApprovalStore(people.engine)
    approval = pending(store)
    decide(people.engine, approval.id, Verdict.APPROVE, approver_id="carol", comment="paid", now=T0)
    with people.engine.connect() as connection:
        rows = connection.execute(select(audit_log).where(audit_log.c.target == approval.id)).all()
    assert len(rows) == 1
    assert (rows[0].actor, rows[0].action) == ("carol", "approval.approve")
    assert rows[0].details["comment"] == "paid"
    assert rows[0].details["subject"] == "agent:billing-bot"


def test_list_filters_by_derived_status(people: People) -> None:
    store = ApprovalStore(people.engine)
    waiting, approved, denied, used, expired = (pending(store) for _ in range(5))
    for approval in (approved, used):
        decide(people.engine, approval.id, Verdict.APPROVE, approver_id="carol", now=T0)
    decide(people.engine, denied.id, Verdict.DENY, approver_id="carol", now=T0)
    assert use(store, used).code is None
    now = T0 + timedelta(minutes=5)
    with people.engine.begin() as connection:  # one of them ran out of time
        from tether.store.approval_tables import approvals

        connection.execute(
            approvals.update().where(approvals.c.id == expired.id).values(expires_at=T0)
        )
    expected = {
        ApprovalStatus.PENDING: {waiting.id},
        ApprovalStatus.APPROVED: {approved.id},
        ApprovalStatus.DENIED: {denied.id},
        ApprovalStatus.USED: {used.id},
        ApprovalStatus.EXPIRED: {expired.id},
    }
    for status, ids in expected.items():
        found = store.list(status=status, now=now)
        assert {a.id for a in found} == ids, status
        assert all(a.status(now) is status for a in found)
    assert len(store.list(now=now)) == 5
    assert [a.id for a in store.list(requested_by="someone-else", now=now)] == []


def test_concurrent_retries_use_an_approval_exactly_once(people: People) -> None:
    store = ApprovalStore(people.engine)
    approval = pending(store)
    decide(people.engine, approval.id, Verdict.APPROVE, approver_id="carol", now=T0)
    racers = 8
    barrier = threading.Barrier(racers)
    codes: list[str | None] = []
    lock = threading.Lock()

    def retry(n: int) -> None:
        barrier.wait()
        result = store.use(
            approval.id,
            binding=binding_hash(PAY),
            requested_by="gateway",
            decision_id=f"race-{n}",
            now=T0 + timedelta(minutes=1),
        )
        with lock:
            codes.append(result.code)

    threads = [threading.Thread(target=retry, args=(n,)) for n in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(codes, key=str) == [None] + [APPROVAL_USED] * (racers - 1)
    assert store.get(approval.id).used_decision_id is not None


def test_concurrent_verdicts_one_wins(people: People) -> None:
    store = ApprovalStore(people.engine)
    approval = pending(store)
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def verdict(approver: str, what: Verdict) -> None:
        barrier.wait()
        try:
            decide(people.engine, approval.id, what, approver_id=approver, now=T0)
            outcomes[approver] = "won"
        except ApprovalAlreadyDecided:
            outcomes[approver] = "lost"

    threads = [
        threading.Thread(target=verdict, args=("carol", Verdict.APPROVE)),
        threading.Thread(target=verdict, args=("dave", Verdict.DENY)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes.values()) == ["lost", "won"]
    winner = next(who for who, result in outcomes.items() if result == "won")
    assert store.get(approval.id).decided_by == winner
