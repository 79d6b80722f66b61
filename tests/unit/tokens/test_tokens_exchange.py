"""RFC 8693 token exchange: request parsing, issue, narrow, delegate; only ever narrower."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from tether.errors import TetherError
from tether.services import Tether
from tether.store.tables import audit_log
from tether.store.token_tables import issued_tokens
from tether.tokens import (
    ACCESS_TOKEN_TYPE,
    GRANT_TYPE,
    ExchangeRequest,
    exchange,
    token_response,
)
from token_support import (
    HELPER,
    SUB_HELPER,
    Clock,
    WorkloadKey,
    delegate,
    exchange_form,
    issue,
    open_task,
)


def refused(tether: Tether, form: dict[str, list[str]]) -> TetherError:
    with pytest.raises(TetherError) as caught:
        exchange(tether.tasks, ExchangeRequest.from_form(form))
    return caught.value


def oauth(error: TetherError) -> tuple[str, str]:
    return getattr(error, "oauth_error", "invalid_request"), error.code


def issued_count(tether: Tether) -> int:
    with tether.engine.connect() as connection:
        return len(connection.execute(select(issued_tokens.c.jti)).all())


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        ({}, ("invalid_request", "parameter_missing")),
        ({"grant_type": ["password"]}, ("unsupported_grant_type", "unsupported_grant_type")),
        ({"grant_type": [GRANT_TYPE, GRANT_TYPE]}, ("invalid_request", "parameter_repeated")),
        ({"grant_type": [GRANT_TYPE]}, ("invalid_request", "parameter_missing")),
        (
            {"grant_type": [GRANT_TYPE], "subject_token_type": ["urn:x:saml"]},
            ("invalid_request", "token_type_unsupported"),
        ),
        (
            {"grant_type": [GRANT_TYPE], "subject_token_type": [ACCESS_TOKEN_TYPE]},
            ("invalid_request", "parameter_missing"),
        ),
    ],
)
def test_malformed_requests(form: dict[str, list[str]], expected: tuple[str, str]) -> None:
    with pytest.raises(TetherError) as caught:
        ExchangeRequest.from_form(form)
    assert oauth(caught.value) == expected


BASE = exchange_form("a.b.c")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"resource": ["https://api.example/"]}, ("invalid_target", "resource_invalid")),
        ({"resource": ["urn:tether:task:"]}, ("invalid_target", "resource_invalid")),
        (
            {"resource": ["urn:tether:task:a", "urn:tether:task:b"]},
            ("invalid_target", "parameter_repeated"),
        ),
        ({"scope": [""]}, ("invalid_request", "scope_invalid")),
        ({"scope": ["a  b"]}, ("invalid_request", "scope_invalid")),
        ({"actor_token": ["x"]}, ("invalid_request", "parameter_missing")),
        (
            {"actor_token": ["x"], "actor_token_type": [ACCESS_TOKEN_TYPE]},
            ("invalid_request", "token_type_unsupported"),
        ),
        (
            {"requested_token_type": ["urn:x"]},
            ("invalid_request", "requested_token_type_unsupported"),
        ),
    ],
)
def test_malformed_parameters(change: dict[str, list[str]], expected: tuple[str, str]) -> None:
    with pytest.raises(TetherError) as caught:
        ExchangeRequest.from_form({**BASE, **change})
    assert oauth(caught.value) == expected


def test_unknown_parameters_are_ignored() -> None:
    request = ExchangeRequest.from_form({**BASE, "client_secret": ["x"], "scope": ["a b a"]})
    assert request.scope == ("a", "b")


def test_a_proof_is_exchanged_for_the_tasks_token(
    tether: Tether, workload_key: WorkloadKey, clock: Clock
) -> None:
    task = open_task(tether.tasks, workload_key)
    issued = issue(tether.tasks, workload_key, task.id)
    claims = issued.claims
    assert (claims.subject, claims.task_id, claims.depth) == ("billing-bot", task.id, 0)
    assert claims.scope == ("read_invoice", "send_email")
    assert claims.expires_at - claims.issued_at == 300  # the class's token_ttl
    answer = token_response(issued, clock.now)
    assert answer["issued_token_type"] == ACCESS_TOKEN_TYPE
    assert (answer["token_type"], answer["expires_in"]) == ("Bearer", 300)
    assert answer["scope"] == "read_invoice send_email"
    with tether.engine.connect() as connection:
        event = (
            connection.execute(select(audit_log).where(audit_log.c.action == "token.issue"))
            .mappings()
            .one()
        )
    assert event["target"] == claims.jti
    assert event["details"]["task"] == task.id
    assert issued.token not in str(event["details"])


def test_the_token_never_outlives_its_task(
    tether: Tether, workload_key: WorkloadKey, clock: Clock
) -> None:
    task = open_task(tether.tasks, workload_key, ttl="2m")
    claims = issue(tether.tasks, workload_key, task.id).claims
    assert claims.expires_at == int(task.expires_at.timestamp())


def test_scope_narrows_the_intent_and_never_widens_it(
    tether: Tether, workload_key: WorkloadKey
) -> None:
    task = open_task(tether.tasks, workload_key)
    narrow = issue(tether.tasks, workload_key, task.id, scope="send_email")
    assert narrow.claims.scope == ("send_email",)
    before = issued_count(tether)
    form = exchange_form(
        workload_key.svid(at=tether.tasks.now().timestamp()), task_id=task.id, scope="pay_invoice"
    )
    assert oauth(refused(tether, form)) == ("invalid_scope", "scope_exceeds_intent")
    assert issued_count(tether) == before


def test_only_the_tasks_own_identity_gets_its_token(
    tether: Tether, workload_key: WorkloadKey
) -> None:
    task = open_task(tether.tasks, workload_key)
    now = tether.tasks.now().timestamp()
    cases: list[tuple[dict[str, list[str]], tuple[str, str]]] = [
        (
            exchange_form(workload_key.svid(HELPER, at=now), task_id=task.id),
            ("invalid_target", "task_not_owned"),
        ),
        (
            exchange_form(workload_key.svid(at=now), task_id="no-such-task"),
            ("invalid_target", "task_not_found"),
        ),
        (exchange_form(workload_key.svid(at=now)), ("invalid_target", "resource_missing")),
        (
            exchange_form(workload_key.svid(at=now), task_id=task.id, audience="elsewhere"),
            ("invalid_target", "audience_not_allowed"),
        ),
        (
            exchange_form(
                workload_key.svid(at=now),
                task_id=task.id,
                actor_token=workload_key.svid(HELPER, at=now),
            ),
            ("invalid_request", "actor_token_unexpected"),
        ),
    ]
    for form, expected in cases:
        assert oauth(refused(tether, form)) == expected
    assert issued_count(tether) == 0
    assert issue(tether.tasks, workload_key, task.id).claims.audience == "tether"


def test_no_token_for_an_ended_or_expired_task(
    tether: Tether, workload_key: WorkloadKey, clock: Clock
) -> None:
    ended = open_task(tether.tasks, workload_key)
    tether.tasks.end_task(ended.id, actor="cli")
    form = exchange_form(workload_key.svid(at=clock.now), task_id=ended.id)
    assert oauth(refused(tether, form)) == ("invalid_target", "task_ended")
    short = open_task(tether.tasks, workload_key, ttl="1m")
    clock.advance(61)
    form = exchange_form(workload_key.svid(at=clock.now), task_id=short.id)
    assert oauth(refused(tether, form)) == ("invalid_target", "task_expired")


def test_a_task_token_narrows_to_a_token_of_the_same_subject(
    tether: Tether, workload_key: WorkloadKey, clock: Clock
) -> None:
    task = open_task(tether.tasks, workload_key)
    parent = issue(tether.tasks, workload_key, task.id)
    clock.advance(10)
    child = exchange(
        tether.tasks, ExchangeRequest.from_form(exchange_form(parent.token, scope="read_invoice"))
    )
    assert (child.claims.subject, child.claims.actors, child.claims.scope) == (
        "billing-bot",
        (),
        ("read_invoice",),
    )
    assert child.claims.expires_at == parent.claims.expires_at  # never renewed this way
    form = exchange_form(child.token, scope="read_invoice send_email")
    assert oauth(refused(tether, form)) == ("invalid_scope", "scope_exceeds_parent")
    form = exchange_form(child.token, task_id="another-task")
    assert oauth(refused(tether, form)) == ("invalid_target", "resource_not_parent_task")


def test_delegation_nests_act_and_stops_at_the_class_depth(
    tether: Tether, workload_key: WorkloadKey
) -> None:
    task = open_task(tether.tasks, workload_key)
    root = issue(tether.tasks, workload_key, task.id)
    first = delegate(tether.tasks, workload_key, root.token, HELPER, scope="read_invoice")
    assert first.claims.actors == ("helper-bot",)
    assert first.claims.scope == ("read_invoice",)
    second = delegate(tether.tasks, workload_key, first.token, SUB_HELPER)
    assert second.claims.actors == ("sub-helper", "helper-bot")
    assert second.claims.depth == 2
    assert second.claims.scope == ("read_invoice",)  # inherits the narrowed scope
    before = issued_count(tether)
    now = tether.tasks.now().timestamp()
    form = exchange_form(second.token, actor_token=workload_key.svid(HELPER, at=now))
    error = refused(tether, form)
    assert oauth(error) == ("invalid_request", "delegation_depth_exceeded")
    assert "allows 2" in error.message
    form = exchange_form(
        first.token, actor_token=workload_key.svid(SUB_HELPER, at=now), scope="send_email"
    )
    assert oauth(refused(tether, form)) == ("invalid_scope", "scope_exceeds_parent")
    assert issued_count(tether) == before
    with tether.engine.connect() as connection:
        rows = {r.jti: r for r in connection.execute(select(issued_tokens)).mappings()}
    assert rows[second.claims.jti]["parent_jti"] == first.claims.jti
    assert rows[second.claims.jti]["chain"] == [root.claims.jti, first.claims.jti]
    refusals = _events(tether, "token.refused")
    assert [e["details"]["error_code"] for e in refusals] == [
        "delegation_depth_exceeded",
        "scope_exceeds_parent",
    ]


def test_a_class_without_delegation_allows_none(tether: Tether, workload_key: WorkloadKey) -> None:
    from token_support import ETL

    task = open_task(
        tether.tasks,
        workload_key,
        ETL,
        actions=("read_table",),
        resources=("table:*",),
        data_classes=("internal",),
    )
    now = tether.tasks.now().timestamp()
    root = issue(tether.tasks, workload_key, task.id, sub=ETL)
    form = exchange_form(root.token, actor_token=workload_key.svid(HELPER, at=now))
    error = refused(tether, form)
    assert oauth(error) == ("invalid_request", "delegation_depth_exceeded")


def test_a_revoked_token_cannot_be_exchanged(tether: Tether, workload_key: WorkloadKey) -> None:
    task = open_task(tether.tasks, workload_key)
    root = issue(tether.tasks, workload_key, task.id)
    tether.tasks.revoke_jti(root.claims.jti, actor="cli")
    before = issued_count(tether)
    now = tether.tasks.now().timestamp()
    form = exchange_form(root.token, actor_token=workload_key.svid(HELPER, at=now))
    assert oauth(refused(tether, form)) == ("invalid_request", "token_revoked")
    assert oauth(refused(tether, exchange_form(root.token))) == ("invalid_request", "token_revoked")
    assert issued_count(tether) == before
    assert _events(tether, "token.refused")[0]["details"]["error_code"] == "token_revoked"


def test_the_authenticated_caller_must_be_the_exchanging_workload(
    tether: Tether, workload_key: WorkloadKey
) -> None:
    task = open_task(tether.tasks, workload_key)
    now = tether.tasks.now().timestamp()
    request = ExchangeRequest.from_form(exchange_form(workload_key.svid(at=now), task_id=task.id))
    with pytest.raises(TetherError) as caught:
        exchange(tether.tasks, request, client="helper-bot")
    assert caught.value.code == "client_mismatch"
    root = exchange(tether.tasks, request, client="billing-bot")
    form = exchange_form(root.token, actor_token=workload_key.svid(HELPER, at=now))
    with pytest.raises(TetherError) as caught:
        exchange(tether.tasks, ExchangeRequest.from_form(form), client="billing-bot")
    assert caught.value.code == "client_mismatch"
    assert exchange(tether.tasks, ExchangeRequest.from_form(form), client="helper-bot")


def _events(tether: Tether, action: str) -> list[dict[str, Any]]:
    with tether.engine.connect() as connection:
        return [
            dict(r)
            for r in connection.execute(
                select(audit_log).where(audit_log.c.action == action).order_by(audit_log.c.seq)
            ).mappings()
        ]
