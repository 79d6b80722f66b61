"""The task authority over a real store (both backends): tasks, workloads, audit events."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from tether.errors import Forbidden, NotFound
from tether.identity import IdentityProofError
from tether.services import Tether
from tether.store.tables import audit_log, identities
from tether.store.token_tables import issued_tokens, tasks
from tether.tokens import TaskRequest
from tether.tokens.errors import (
    IntentExceedsEntitlement,
    TaskNotFound,
    TaskNotOwned,
    TaskRequestInvalid,
    TaskTtlTooLong,
)
from token_support import (
    BILLING,
    ETL,
    UNBOUND,
    Clock,
    WorkloadKey,
    delegate,
    issue,
    open_task,
    task_body,
)


def events(tether: Tether, action: str | None = None) -> list[dict[str, Any]]:
    query = select(audit_log).order_by(audit_log.c.seq)
    if action is not None:
        query = query.where(audit_log.c.action == action)
    with tether.engine.connect() as connection:
        return [dict(r) for r in connection.execute(query).mappings()]


def count(tether: Tether, table: Any) -> int:
    with tether.engine.connect() as connection:
        return len(connection.execute(select(table)).all())


def test_a_workload_opens_a_task_within_its_entitlement(
    tether: Tether, workload_key: WorkloadKey, clock: Clock
) -> None:
    task = open_task(tether.tasks, workload_key)
    assert (task.identity_id, task.identity_kind, task.workload_class) == (
        "billing-bot",
        "agent",
        "agent",
    )
    assert task.opened_by == BILLING
    assert (task.expires_at - task.opened_at).total_seconds() == 600
    assert tether.tasks.task(task.id) == task
    [event] = events(tether, "task.open")
    assert (event["actor"], event["target"]) == ("billing-bot", task.id)
    assert event["details"]["intent"]["actions"] == ["read_invoice", "send_email"]
    assert [t.id for t in tether.tasks.list_tasks(identity_id="billing-bot")] == [task.id]
    assert tether.tasks.list_tasks(state="ended") == []


def test_the_ttl_defaults_to_and_may_not_exceed_the_class_maximum(
    tether: Tether, workload_key: WorkloadKey
) -> None:
    task = open_task(tether.tasks, workload_key, ttl=None)
    assert (task.expires_at - task.opened_at).total_seconds() == 15 * 60
    with pytest.raises(TaskTtlTooLong, match="900 s for class `agent`"):
        open_task(tether.tasks, workload_key, ttl="16m")
    batch = open_task(
        tether.tasks,
        workload_key,
        ETL,
        actions=("read_table",),
        resources=("table:*",),
        data_classes=("internal",),
        ttl="4h",
    )
    assert (batch.expires_at - batch.opened_at).total_seconds() == 4 * 3600


def test_an_intent_beyond_the_entitlement_is_refused_and_recorded(
    tether: Tether, workload_key: WorkloadKey
) -> None:
    with pytest.raises(IntentExceedsEntitlement) as caught:
        open_task(tether.tasks, workload_key, actions=("read_invoice", "delete_invoice"))
    assert [e.message for e in caught.value.field_errors] == [
        "`delete_invoice` on `invoice:*` exceeds the standing entitlement of `billing-bot`",
        "`delete_invoice` on `email:*@example.org` exceeds the standing entitlement of "
        "`billing-bot`",
    ]
    assert count(tether, tasks) == 0
    [event] = events(tether, "task.refused")
    assert event["details"]["error_code"] == "intent_exceeds_entitlement"


def test_unknown_data_classes_are_refused(tether: Tether, workload_key: WorkloadKey) -> None:
    with pytest.raises(TaskRequestInvalid) as caught:
        open_task(tether.tasks, workload_key, data_classes=("secret-sauce",))
    assert caught.value.field_errors[0].path == "intent.data_classes[0]"


def test_an_identity_without_entitlements_opens_nothing(
    tether: Tether, workload_key: WorkloadKey
) -> None:
    with pytest.raises(IntentExceedsEntitlement):
        open_task(tether.tasks, workload_key, "spiffe://example.org/agents/helper-bot")


def test_unknown_workloads_are_refused_and_recorded(
    tether: Tether, workload_key: WorkloadKey, clock: Clock
) -> None:
    with pytest.raises(IdentityProofError) as caught:
        tether.tasks.authenticate(workload_key.svid(UNBOUND, at=clock.now), attempt="task.open")
    assert caught.value.code == "workload_unknown"
    [event] = events(tether, "workload.refused")
    assert (event["actor"], event["target"]) == (UNBOUND, UNBOUND)
    assert event["details"]["error_code"] == "workload_unknown"
    assert event["details"]["attempt"] == "task.open"
    assert count(tether, tasks) == 0


def test_proofs_that_do_not_verify_are_not_recorded(
    tether: Tether, other_key: WorkloadKey, clock: Clock
) -> None:
    forged = other_key.svid(BILLING, header={"kid": "wk-1"}, at=clock.now)
    with pytest.raises(IdentityProofError) as caught:
        tether.tasks.authenticate(forged, attempt="task.open")
    assert caught.value.code == "signature_invalid"
    assert events(tether, "workload.refused") == []


def test_inactive_identities_are_refused(
    tether: Tether, workload_key: WorkloadKey, clock: Clock
) -> None:
    with tether.engine.begin() as connection:
        connection.execute(
            identities.update()
            .where(identities.c.id == "billing-bot")
            .values(status="disabled", updated_at=identities.c.updated_at)
        )
    clock.advance(0)
    tether.tasks.trust.refresh(force=True)
    with pytest.raises(Forbidden) as caught:
        tether.tasks.authenticate(workload_key.svid(at=clock.now), attempt="task.open")
    assert caught.value.code == "identity_inactive"
    request = TaskRequest.from_json(task_body())
    with pytest.raises(Forbidden):
        tether.tasks.open_task(request, identity_id="billing-bot", opened_by="cli")
    with pytest.raises(NotFound):
        tether.tasks.open_task(request, identity_id="nobody", opened_by="cli")


def test_ending_a_task_revokes_its_tokens_and_their_descendants(
    tether: Tether, workload_key: WorkloadKey
) -> None:
    authority = tether.tasks
    task = open_task(authority, workload_key)
    root = issue(authority, workload_key, task.id)
    child = delegate(authority, workload_key, root.token)
    other = open_task(authority, workload_key)
    untouched = issue(authority, workload_key, other.id)
    ended = authority.end_task(task.id, actor="billing-bot", reason="done", owner="billing-bot")
    assert set(ended.revoked) == {root.claims.jti, child.claims.jti}
    assert not ended.already_ended
    assert ended.task.status == "ended"
    assert (ended.task.ended_by, ended.task.end_reason) == ("billing-bot", "done")
    for token in (root.token, child.token):
        assert authority.inspect(token).error.code == "task_ended"  # type: ignore[union-attr]
    assert authority.inspect(untouched.token).verified is not None
    again = authority.end_task(task.id, actor="cli")
    assert again.already_ended
    assert again.revoked == ()
    [event] = events(tether, "task.end")
    assert set(event["details"]["revoked"]) == set(ended.revoked)
    with tether.engine.connect() as connection:
        revoked = connection.execute(
            select(issued_tokens.c.jti).where(issued_tokens.c.revoked_at.is_not(None))
        ).scalars()
        assert set(revoked) == set(ended.revoked)


def test_only_the_owner_or_an_admin_ends_a_task(tether: Tether, workload_key: WorkloadKey) -> None:
    task = open_task(tether.tasks, workload_key)
    with pytest.raises(TaskNotOwned):
        tether.tasks.end_task(task.id, actor="etl", owner="etl")
    with pytest.raises(TaskNotFound):
        tether.tasks.end_task("nope", actor="cli")
    assert tether.tasks.end_task(task.id, actor="admin").task.status == "ended"
    assert tether.tasks.list_tasks(state="ended")[0].id == task.id


def test_tasks_expire(tether: Tether, workload_key: WorkloadKey, clock: Clock) -> None:
    task = open_task(tether.tasks, workload_key, ttl="1m")
    clock.advance(61)
    assert tether.tasks.task(task.id).state(tether.tasks.now()) == "expired"
    assert [t.id for t in tether.tasks.list_tasks(state="expired")] == [task.id]
    assert tether.tasks.list_tasks(state="open") == []
