"""AuthZEN decisions with a task token in ``subject.properties.token``."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from sqlalchemy import select

from tether.api.authzen import evaluate_many, evaluate_one
from tether.services import Tether
from tether.store.tables import decisions
from tether.tokens import TaskAuthority
from token_support import ETL, Clock, WorkloadKey, delegate, issue, open_task


def ask(
    tether: Tether,
    token: object,
    action: str = "read_invoice",
    resource: tuple[str, str] = ("invoice", "INV-1"),
    subject: dict[str, Any] | None = None,
    **properties: Any,
) -> dict[str, Any]:
    body = {
        "subject": {**(subject or {}), "properties": {"token": token, **properties}},
        "action": {"name": action},
        "resource": {"type": resource[0], "id": resource[1]},
    }
    answer: dict[str, Any] = orjson.loads(evaluate_one(tether, body, "req-1", "pep-1"))
    return answer


def code(answer: dict[str, Any]) -> str | None:
    context = answer["context"]
    assert answer["decision"] is False
    assert context["outcome"] == "deny"
    assert context["reasons"] == [context["error_code"]]
    return str(context["error_code"])


@pytest.fixture
def token(sqlite_tether: Tether, workload_key: WorkloadKey) -> str:
    task = open_task(sqlite_tether.tasks, workload_key)
    return str(issue(sqlite_tether.tasks, workload_key, task.id).token)


def test_within_intent_the_policies_decide_for_the_tokens_subject(
    sqlite_tether: Tether, token: str
) -> None:
    answer = ask(sqlite_tether, token)
    assert answer["decision"] is True
    assert answer["context"]["reasons"] == ["entitlement:billing-bot:1"]
    assert "error_code" not in answer["context"]
    email = ask(sqlite_tether, token, "send_email", ("email", "ops@example.org"))
    assert email["decision"] is True


def test_the_subject_the_pep_names_must_be_the_tokens(sqlite_tether: Tether, token: str) -> None:
    same = ask(sqlite_tether, token, subject={"type": "agent", "id": "billing-bot"})
    assert same["decision"] is True
    other = ask(sqlite_tether, token, subject={"type": "agent", "id": "support-agent"})
    assert code(other) == "token_subject_mismatch"


def test_outside_the_intent_is_denied_naming_what(sqlite_tether: Tether, token: str) -> None:
    wrong_resource = ask(sqlite_tether, token, "send_email", ("email", "x@evil.example"))
    assert code(wrong_resource) == "outside_task_intent"
    assert "email:x@evil.example" in wrong_resource["context"]["errors"][0]


def test_an_action_outside_the_tokens_scope_is_denied(
    sqlite_tether: Tether, workload_key: WorkloadKey
) -> None:
    task = open_task(sqlite_tether.tasks, workload_key)
    narrow = issue(sqlite_tether.tasks, workload_key, task.id, scope="read_invoice").token
    assert ask(sqlite_tether, narrow)["decision"] is True
    answer = ask(sqlite_tether, narrow, "send_email", ("email", "ops@example.org"))
    assert code(answer) == "token_scope_exceeded"
    assert code(ask(sqlite_tether, narrow, "pay_invoice", ("payments", "P-1"))) == (
        "token_scope_exceeded"
    )


def test_expired_revoked_and_ended_tokens_are_denied_precisely(
    sqlite_tether: Tether, workload_key: WorkloadKey, clock: Clock
) -> None:
    authority = sqlite_tether.tasks
    task = open_task(authority, workload_key)
    first = issue(authority, workload_key, task.id)
    second = issue(authority, workload_key, task.id)
    child = delegate(authority, workload_key, second.token)
    assert ask(sqlite_tether, first.token)["decision"] is True  # cached from here on
    assert ask(sqlite_tether, child.token)["decision"] is True
    authority.revoke_jti(second.claims.jti, actor="cli")
    assert code(ask(sqlite_tether, second.token)) == "token_revoked"
    assert code(ask(sqlite_tether, child.token)) == "token_revoked"  # delegated from it
    assert ask(sqlite_tether, first.token)["decision"] is True
    clock.advance(300 + 6)  # past `exp` and the few seconds of skew tolerated
    assert code(ask(sqlite_tether, first.token)) == "token_expired"
    clock.advance(-306)
    authority.end_task(task.id, actor="cli")
    assert code(ask(sqlite_tether, first.token)) == "task_ended"


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("garbage", "token_malformed"),
        (42, "token_malformed"),
        ({"payload": "x"}, "json_serialization_not_allowed"),
    ],
)
def test_tokens_that_are_not_task_tokens(
    sqlite_tether: Tether, token: object, expected: str
) -> None:
    answer = ask(sqlite_tether, token)
    assert code(answer) == expected


def test_a_workload_proof_is_no_task_token(
    sqlite_tether: Tether, workload_key: WorkloadKey, clock: Clock
) -> None:
    assert code(ask(sqlite_tether, workload_key.svid(at=clock.now))) == "token_type_invalid"


def test_a_token_for_another_audience_or_issuer_is_denied(
    sqlite_tether: Tether, token: str, clock: Clock
) -> None:
    base = sqlite_tether.settings
    for settings, expected in (
        (base.with_overrides(audience="payments-api"), "token_audience_mismatch"),
        (base.with_overrides(issuer="https://other.tether"), "token_issuer_mismatch"),
    ):
        elsewhere = TaskAuthority(
            sqlite_tether.engine,
            settings,
            sqlite_tether.keys,
            lambda: sqlite_tether.snapshot.estate,
            clock=clock,
        )
        try:
            inspection = elsewhere.inspect(token)
        finally:
            elsewhere.close()
        assert inspection.error is not None
        assert inspection.error.code == expected


def test_monitor_classes_leave_outside_intent_to_the_policies(
    sqlite_tether: Tether, workload_key: WorkloadKey
) -> None:
    task = open_task(
        sqlite_tether.tasks,
        workload_key,
        ETL,
        actions=("read_table",),
        resources=("table:warehouse_*",),
        data_classes=("internal",),
    )
    token = issue(sqlite_tether.tasks, workload_key, task.id, sub=ETL).token
    inside = ask(sqlite_tether, token, "read_table", ("table", "warehouse_1"))
    assert inside["decision"] is True
    # Outside the declared resources, but the class only monitors: the entitlement allows it.
    outside = ask(sqlite_tether, token, "read_table", ("table", "customers"))
    assert outside["decision"] is True
    assert outside["context"]["reasons"] == ["entitlement:etl:1"]


def test_policies_see_the_task_in_the_context(
    sqlite_tether: Tether, workload_key: WorkloadKey, tmp_path: Any
) -> None:
    """The estate's guard forbids restricted data outside the intent: it reads
    `context.tether.task.within_intent`; Cedar evaluates it on a decision with a token."""
    from tether.policy import DecisionRequest, EntityRef
    from tether.tokens import bind_task_token

    task = open_task(sqlite_tether.tasks, workload_key)
    token = issue(sqlite_tether.tasks, workload_key, task.id).token
    request = DecisionRequest(
        EntityRef("tether_token", "unverified"), "read_invoice", EntityRef("payments", "P-1")
    )
    bound, use = bind_task_token(sqlite_tether.tasks, request, token, subject_given=False)
    assert bound.subject == EntityRef("agent", "billing-bot")
    context: dict[str, Any] = {"data_class": "restricted", "sensitivity": 4}
    decision = use.decide(sqlite_tether.snapshot.engine, bound, context)
    assert decision.error_code == "outside_task_intent"
    # The estate's policies read `within_intent` of the task, nothing else of it.
    assert use.members == frozenset({"within_intent"})
    assert context["task"] == {"within_intent": False}
    everything = type(use)(use.token)
    context = {"data_class": "restricted", "sensitivity": 4}
    everything.decide(sqlite_tether.snapshot.engine, bound, context)
    assert context["task"]["id"] == task.id
    assert context["task"]["intent"]["actions"] == ["read_invoice", "send_email"]
    assert context["task"]["purpose"] == task.purpose
    monitored = type(use)(use.token, enforce_intent=False)
    context = {
        "data_class": "restricted",
        "sensitivity": 4,
        "subject_id": "billing-bot",
        "resource_id": "P-1",
    }
    decision = monitored.decide(sqlite_tether.snapshot.engine, bound, context)
    assert decision.reasons == ("no-restricted-outside-intent",)


def test_the_decision_log_keeps_the_task_and_jti_never_the_token(
    sqlite_tether: Tether, workload_key: WorkloadKey
) -> None:
    task = open_task(sqlite_tether.tasks, workload_key)
    issued = issue(sqlite_tether.tasks, workload_key, task.id)
    ask(sqlite_tether, issued.token, note="kept")
    ask(sqlite_tether, "garbage")
    sqlite_tether.decision_log.flush()
    with sqlite_tether.engine.connect() as connection:
        rows = connection.execute(select(decisions).order_by(decisions.c.seq)).mappings().all()
    good, bad = rows
    assert (good["subject_type"], good["subject_id"]) == ("agent", "billing-bot")
    assert good["context"]["tether"] == {"task_id": task.id, "token_jti": issued.claims.jti}
    assert good["caller"] == "pep-1"
    assert (bad["subject_type"], bad["subject_id"]) == ("tether_token", "unverified")
    assert bad["reasons"] == ["token_malformed"]
    for row in rows:
        stored = str(dict(row))
        assert issued.token not in stored
        assert "garbage" not in stored


def test_evaluations_take_the_token_per_item_or_from_the_defaults(
    sqlite_tether: Tether, token: str
) -> None:
    body = {
        "subject": {"properties": {"token": token}},
        "action": {"name": "read_invoice"},
        "evaluations": [
            {"resource": {"type": "invoice", "id": "INV-1"}},
            {"resource": {"type": "payments", "id": "P-1"}, "action": {"name": "pay_invoice"}},
            {
                "subject": {"properties": {"token": "garbage"}},
                "resource": {"type": "invoice", "id": "2"},
            },
            {
                "subject": {"type": "agent", "id": "billing-bot"},
                "resource": {"type": "invoice", "id": "3"},
            },
        ],
    }
    results = orjson.loads(evaluate_many(sqlite_tether, body, None, None))["evaluations"]
    assert [r["decision"] for r in results] == [True, False, False, True]
    assert results[1]["context"]["error_code"] == "token_scope_exceeded"
    assert results[2]["context"]["error_code"] == "token_malformed"
    assert "error_code" not in results[3]["context"]  # no token: an ordinary decision


def test_a_store_that_cannot_say_whether_a_token_is_revoked_fails_closed(
    sqlite_tether: Tether, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tether.errors import StoreUnavailable

    assert ask(sqlite_tether, token)["decision"] is True

    def broken() -> int:
        raise StoreUnavailable("cannot read the revocation state: OperationalError")

    monkeypatch.setattr(sqlite_tether.tasks.revocations._probe, "read", broken)
    assert code(ask(sqlite_tether, token)) == "store_unavailable"


def test_the_generated_schema_declares_the_task_record_optional(sqlite_tether: Tether) -> None:
    schema = sqlite_tether.snapshot.estate.schema_text or ""
    assert '"task"?: { "id": String, "purpose": String, "intent": {' in schema
    assert '"within_intent": Bool' in schema


def test_the_task_members_policies_name_are_the_ones_in_the_context() -> None:
    from tether.policy import parse_policy_file
    from tether.tokens.authority import referenced_attributes

    specs, problems = parse_policy_file(
        "p.cedar",
        """
        @id("reads-intent")
        permit (principal, action, resource)
        when { context.tether has task && context.tether.task.intent.actions.contains("x")
               && context.tether.task has actor };
        """,
    )
    assert not problems
    named = referenced_attributes(s.est for s in specs)
    assert {"tether", "task", "intent", "actions", "actor"} <= named
    assert "purpose" not in named
