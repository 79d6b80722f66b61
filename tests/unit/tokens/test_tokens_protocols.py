"""Introspection (RFC 7662), revocation (RFC 7009), metadata (RFC 8414), key rotation."""

from __future__ import annotations

from sqlalchemy import select

from tether.services import Tether
from tether.store.tables import audit_log
from tether.tokens import authorization_server_metadata, introspect, revoke
from tether.tokens.access_token import sign_task_token
from tether.tokens.authority import TaskAuthority
from token_support import ISSUER, Clock, WorkloadKey, delegate, issue, open_task


def test_an_active_token_introspects_its_claims_and_task(
    tether: Tether, workload_key: WorkloadKey
) -> None:
    task = open_task(tether.tasks, workload_key)
    root = issue(tether.tasks, workload_key, task.id)
    child = delegate(tether.tasks, workload_key, root.token, scope="read_invoice")
    answer = introspect(tether.tasks, child.token)
    assert answer["active"] is True
    assert (answer["sub"], answer["client_id"], answer["txn"]) == ("billing-bot",) * 2 + (task.id,)
    assert (answer["scope"], answer["token_type"], answer["iss"]) == (
        "read_invoice",
        "Bearer",
        ISSUER,
    )
    assert answer["act"] == {"sub": "helper-bot"}
    assert answer["delegation_depth"] == 1
    assert answer["task"]["purpose"] == task.purpose
    assert "act" not in introspect(tether.tasks, root.token)


def test_any_inactive_token_answers_active_false_and_its_code(
    tether: Tether, workload_key: WorkloadKey, clock: Clock
) -> None:
    task = open_task(tether.tasks, workload_key)
    root = issue(tether.tasks, workload_key, task.id)
    assert introspect(tether.tasks, "nonsense") == {
        "active": False,
        "error_code": "token_malformed",
    }
    assert introspect(tether.tasks, workload_key.svid(at=clock.now)) == {
        "active": False,
        "error_code": "token_type_invalid",
    }
    tether.tasks.end_task(task.id, actor="cli")
    assert introspect(tether.tasks, root.token) == {"active": False, "error_code": "task_ended"}


def test_a_token_tether_never_recorded_is_unknown(
    tether: Tether, workload_key: WorkloadKey
) -> None:
    task = open_task(tether.tasks, workload_key)
    claims = issue(tether.tasks, workload_key, task.id).claims
    from dataclasses import replace

    forged = sign_task_token(tether.keys, replace(claims, jti="never-issued"))
    assert introspect(tether.tasks, forged) == {"active": False, "error_code": "token_unknown"}


def test_revocation_cascades_and_ignores_what_is_not_a_token(
    tether: Tether, workload_key: WorkloadKey
) -> None:
    task = open_task(tether.tasks, workload_key)
    root = issue(tether.tasks, workload_key, task.id)
    child = delegate(tether.tasks, workload_key, root.token)
    sibling = issue(tether.tasks, workload_key, task.id)
    assert revoke(tether.tasks, "not-a-token", actor=None) == ()
    assert set(revoke(tether.tasks, root.token, actor=None)) == {root.claims.jti, child.claims.jti}
    assert revoke(tether.tasks, root.token, actor="pep") == ()  # already revoked: nothing more
    assert introspect(tether.tasks, child.token)["error_code"] == "token_revoked"
    assert introspect(tether.tasks, sibling.token)["active"] is True
    with tether.engine.connect() as connection:
        event = (
            connection.execute(select(audit_log).where(audit_log.c.action == "token.revoke"))
            .mappings()
            .one()
        )
    assert (event["actor"], event["target"]) == ("billing-bot", root.claims.jti)


def test_metadata_names_the_endpoints_of_the_issuer() -> None:
    document = authorization_server_metadata("https://tether.example/")
    assert document["issuer"] == "https://tether.example"
    assert document["token_endpoint"] == "https://tether.example/oauth2/token"
    assert document["introspection_endpoint"].endswith("/oauth2/introspect")
    assert document["revocation_endpoint"].endswith("/oauth2/revoke")
    assert document["jwks_uri"] == "https://tether.example/.well-known/jwks.json"
    assert document["grant_types_supported"] == ["urn:ietf:params:oauth:grant-type:token-exchange"]
    assert document["response_types_supported"] == []


def test_rotation_keeps_old_keys_verifying_until_their_tokens_expire(
    tether: Tether, workload_key: WorkloadKey, clock: Clock
) -> None:
    task = open_task(tether.tasks, workload_key)
    before = issue(tether.tasks, workload_key, task.id)
    old = tether.keys.active()
    new = tether.tasks.rotate_keys()
    assert new.kid != old.kid
    retired = next(k for k in tether.keys.keys() if k.kid == old.kid)  # noqa: SIM118 (a method)
    assert retired.status == "retired"
    assert retired.verify_until is not None
    assert (retired.verify_until - new.created_at).total_seconds() >= 300 + 60
    kids = {k["kid"] for k in tether.keys.jwks()["keys"]}
    assert kids == {old.kid, new.kid}
    after = issue(tether.tasks, workload_key, task.id)
    assert after.kid == new.kid
    assert introspect(tether.tasks, before.token)["active"] is True


def test_a_rotation_by_another_process_is_picked_up(
    tether: Tether, workload_key: WorkloadKey, clock: Clock
) -> None:
    from tether.tokens import KeyRing

    task = open_task(tether.tasks, workload_key)
    issue(tether.tasks, workload_key, task.id)
    elsewhere = KeyRing(tether.engine, tether.keys._master)
    rotated = elsewhere.rotate()
    other = TaskAuthority(
        tether.engine, tether.settings, elsewhere, lambda: tether.snapshot.estate, clock=clock
    )
    try:
        token = issue(other, workload_key, task.id)
        assert token.kid == rotated.kid
        # This process still has the old ring; the unknown kid makes it reload.
        assert introspect(tether.tasks, token.token)["active"] is True
        assert issue(tether.tasks, workload_key, task.id).kid == rotated.kid
    finally:
        other.close()
