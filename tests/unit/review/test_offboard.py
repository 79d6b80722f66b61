"""Offboarding on each backend: tokens (delegated ones too), tasks, keys, decisions, evidence."""

from __future__ import annotations

from pathlib import Path

import pytest
from lifecycle_fixtures import (  # noqa: F401 (fixtures)
    clock_fixture,
    make_tether,
    tether_fixture,
    workload_key_fixture,
)
from sqlalchemy import select

from tether.callers import add_api_key
from tether.errors import Forbidden, InvalidRequest, NotFound
from tether.estate import apply_estate
from tether.identity.errors import IdentityProofError
from tether.policy import DecisionRequest, EntityRef
from tether.review.offboard import offboard_identity, offboard_records
from tether.services import Tether
from tether.store.caller_tables import api_keys
from tether.store.tables import audit_log, identities
from tether.tokens import ExchangeRequest, exchange, introspect
from token_support import (
    BILLING,
    HELPER,
    Clock,
    WorkloadKey,
    delegate,
    exchange_form,
    issue,
    open_task,
)


def _request(subject: EntityRef) -> DecisionRequest:
    return DecisionRequest(subject, "read_invoice", EntityRef("invoice", "INV-1"), {})


def test_offboarding_revokes_every_token_ends_tasks_and_denies(
    tether: Tether, workload_key: WorkloadKey
) -> None:
    authority = tether.tasks
    first = open_task(authority, workload_key)
    second = open_task(authority, workload_key, actions=("read_invoice",), resources=("invoice:*",))
    parent = issue(authority, workload_key, first.id)
    other = issue(authority, workload_key, second.id)
    child = delegate(authority, workload_key, parent.token, HELPER, scope="read_invoice")
    subject = EntityRef("agent", "billing-bot")
    assert tether.evaluate(_request(subject)).decision.permits

    done = offboard_identity(authority, "billing-bot", actor="admin-alice", reason="retired")
    tether.refresh_offboarded()

    assert set(done.tasks_ended) == {first.id, second.id}
    assert set(done.tokens_revoked) == {parent.claims.jti, other.claims.jti, child.claims.jti}
    for issued in (parent, other, child):
        assert introspect(authority, issued.token)["active"] is False
    assert authority.list_tasks(identity_id="billing-bot", state="open") == []
    denied = tether.evaluate(_request(subject)).decision
    assert not denied.permits
    assert denied.reasons == ("identity_offboarded",)
    # Its proof no longer buys a task or a token.
    with pytest.raises(Forbidden) as refused:
        open_task(authority, workload_key)
    assert refused.value.code == "identity_inactive"
    proof = workload_key.svid(BILLING, at=authority.now().timestamp())
    with pytest.raises((Forbidden, IdentityProofError)):
        exchange(authority, ExchangeRequest.from_form(exchange_form(proof, task_id=first.id)))
    # The evidence is kept: identity, offboarding record and one audit entry.
    with tether.engine.connect() as connection:
        status = connection.execute(
            select(identities.c.status).where(identities.c.id == "billing-bot")
        ).scalar_one()
        audit = connection.execute(
            select(audit_log.c.actor, audit_log.c.details).where(
                audit_log.c.action == "identity.offboard"
            )
        ).all()
    assert status == "offboarded"
    assert len(audit) == 1
    assert audit[0].actor == "admin-alice"
    assert set(audit[0].details["tokens_revoked"]) == set(done.tokens_revoked)
    record = offboard_records(tether.engine)["billing-bot"]
    assert record.reason == "retired"
    assert set(record.revoked["tasks_ended"]) == {first.id, second.id}


def test_offboarding_a_sub_agent_revokes_only_what_it_holds(
    tether: Tether, workload_key: WorkloadKey
) -> None:
    authority = tether.tasks
    task = open_task(authority, workload_key)
    parent = issue(authority, workload_key, task.id)
    child = delegate(authority, workload_key, parent.token, HELPER, scope="read_invoice")

    done = offboard_identity(authority, "helper-bot", actor="cli")

    assert done.tasks_ended == ()
    assert done.tokens_revoked == (child.claims.jti,)
    assert introspect(authority, child.token)["active"] is False
    assert introspect(authority, parent.token)["active"] is True
    tether.refresh_offboarded()
    assert tether.evaluate(_request(EntityRef("agent", "billing-bot"))).decision.permits


def test_offboarding_disables_api_keys_and_is_idempotent(tether: Tether) -> None:
    issued = add_api_key(tether.engine, "legacy-pep", actor="tests")
    first = offboard_identity(tether.tasks, "legacy-pep", actor="cli")
    again = offboard_identity(tether.tasks, "legacy-pep", actor="cli")

    assert first.api_keys_disabled == (issued.key_id,)
    assert first.previous_status == "active"
    assert again.already_offboarded is True
    assert again.api_keys_disabled == ()
    assert again.previous_status == "active"
    with tether.engine.connect() as connection:
        revoked_at = connection.execute(
            select(api_keys.c.revoked_at).where(api_keys.c.key_id == issued.key_id)
        ).scalar_one()
    assert revoked_at is not None


def test_unknown_identities_and_bad_reasons_are_refused(tether: Tether) -> None:
    with pytest.raises(NotFound) as missing:
        offboard_identity(tether.tasks, "nobody", actor="cli")
    assert missing.value.code == "identity_not_found"
    with pytest.raises(InvalidRequest):
        offboard_identity(tether.tasks, "etl", actor="cli", reason="  ")
    assert offboard_records(tether.engine) == {}


def test_offboarded_survives_a_new_apply_and_a_new_process(
    tether: Tether, tmp_path: Path, workload_key: WorkloadKey
) -> None:
    offboard_identity(tether.tasks, "etl", actor="cli")
    apply_estate(tether.engine, tmp_path / "estate", actor="tests")
    with tether.engine.connect() as connection:
        status = connection.execute(
            select(identities.c.status).where(identities.c.id == "etl")
        ).scalar_one()
    assert status == "offboarded"
    other = make_tether(tether.engine, tmp_path, Clock(), workload_key)
    try:
        assert "etl" in other.offboarded
        decision = other.decide(
            DecisionRequest(
                EntityRef("service_account", "etl"), "read_table", EntityRef("table", "t"), {}
            )
        )
        assert decision.reasons == ("identity_offboarded",)
    finally:
        other.close()
