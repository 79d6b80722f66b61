"""``tether.sdk.Client`` and ``AsyncClient`` against a scripted tether (httpx MockTransport):
requests as the protocols say, answers parsed into values, errors mapped with their codes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from sdk_support import BILLING, KEY, FakeTether, decision, events_ok, fake_jwt, problem

from tether import tokens
from tether.api.results import MAX_RESULT_BODY
from tether.api.results import MAX_RESULT_JSON as MAX_RESULT_JSON_SERVED
from tether.drift.provenance import MAX_RESULT_CHARS as MAX_RESULT_CHARS_READ
from tether.sdk import (
    AccessRequest,
    ApiKey,
    ApprovalStatus,
    AuthenticationError,
    BadRequestError,
    BearerToken,
    Client,
    ConflictError,
    Decision,
    NotFoundError,
    Outcome,
    PermissionDeniedError,
    RateLimitError,
    Resource,
    ServerError,
    TetherAPIError,
    TetherTimeout,
    TetherUnavailable,
    TokenGrant,
    ToolCall,
    UnexpectedResponse,
)
from tether.sdk import _operations as ops
from tether.sdk.client import KEPT_URLS
from tether.sdk.events import MAX_RESULT_CHARS, MAX_RESULT_JSON
from tether.telemetry.ingest import otel
from tether.telemetry.ingest._base import Context

EVALUATION = "/access/v1/evaluation"
GRANT = TokenGrant(
    fake_jwt(sub="billing-bot", txn="task-1", jti="tok-1"),
    datetime.now(UTC),
    ("read_invoice",),
    "task-1",
    "billing-bot",
    "tok-1",
)


def test_evaluate_sends_the_task_token_as_a_subject_property_and_the_key_as_authorization() -> None:
    fake = FakeTether().on(
        "POST",
        EVALUATION,
        decision("constrain", reasons=["invoice-redaction"], obligations={"max_rows": "100"}),
    )
    with fake.client() as client:
        answer = client.evaluate(GRANT, "read_invoice", "invoice:INV-1", context={"a": 1})
    request = fake.requests[0]
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert json.loads(request.content) == {
        "subject": {"properties": {"token": GRANT.access_token}},
        "action": {"name": "read_invoice"},
        "resource": {"type": "invoice", "id": "INV-1"},
        "context": {"a": 1},
    }
    assert answer == Decision(
        True, Outcome.CONSTRAIN, ("invoice-redaction",), {"max_rows": "100"}, None, "d-1"
    )


def test_a_subject_and_properties_go_as_named() -> None:
    fake = FakeTether().on("POST", EVALUATION, decision("deny", reasons=["r"], error_code="x"))
    with fake.client() as client:
        answer = client.evaluate(BILLING, "read", Resource("invoice", "I", {"owner": "a"}))
    assert fake.bodies(EVALUATION)[0]["subject"] == {"type": "agent", "id": "billing-bot"}
    assert fake.bodies(EVALUATION)[0]["resource"]["properties"] == {"owner": "a"}
    assert (answer.allowed, answer.outcome, answer.error_code) == (False, Outcome.DENY, "x")


def test_a_peps_request_id_goes_as_x_request_id_and_none_is_made_up() -> None:
    fake = FakeTether().on("POST", EVALUATION, decision())
    fake.on("POST", "/access/v1/evaluations", httpx.Response(200, json={"evaluations": []}))
    with fake.client() as client:
        client.evaluate(BILLING, "read", "doc:1", request_id="pep-42")
        client.evaluate(BILLING, "read", "doc:1")
        client.evaluations([AccessRequest(BILLING, "read", Resource("doc", "1"))], request_id="b-7")
    sent = [r.headers.get("x-request-id") for r in fake.requests]
    assert sent == ["pep-42", None, "b-7"]  # left out: tether makes one
    with fake.client() as client, pytest.raises(ValueError, match="X-Request-ID"):
        client.evaluate(BILLING, "read", "doc:1", request_id="bad\nid")
    assert len(fake.requests) == 3  # refused before anything was sent


def test_an_approval_required_decision_carries_its_ticket() -> None:
    ticket = {
        "id": "ap-1",
        "status": "pending",
        "expires_at": "2026-12-06T10:00:00+00:00",
        "poll": "/v1/approvals/ap-1",
    }
    fake = FakeTether().on("POST", EVALUATION, decision("approval_required", approval=ticket))
    with fake.client() as client:
        answer = client.evaluate(BILLING, "pay", "payments:P-1")
    assert answer.approval is not None
    assert (answer.approval.id, answer.approval.status) == ("ap-1", ApprovalStatus.PENDING)
    assert answer.approval.expires_at == datetime(2026, 12, 6, 10, tzinfo=UTC)


def test_a_bearer_token_callable_is_read_for_every_request() -> None:
    svids = iter(["svid-1", "svid-2"])
    fake = FakeTether().on("POST", EVALUATION, decision())
    with fake.client(credential=BearerToken(lambda: next(svids))) as client:
        client.evaluate(BILLING, "read", "doc:1")
        client.evaluate(BILLING, "read", "doc:1")
    assert [r.headers["authorization"] for r in fake.requests] == [
        "Bearer svid-1",
        "Bearer svid-2",
    ]


@pytest.mark.parametrize(
    ("answer", "error", "code", "status"),
    [
        (problem(400, "context_too_deep"), BadRequestError, "context_too_deep", 400),
        (problem(401, "api_key_invalid"), AuthenticationError, "api_key_invalid", 401),
        (problem(403, "role_forbidden"), PermissionDeniedError, "role_forbidden", 403),
        (problem(404, "task_not_found"), NotFoundError, "task_not_found", 404),
        (problem(409, "approval_already_decided"), ConflictError, "approval_already_decided", 409),
        (problem(413, "too_many_evaluations"), BadRequestError, "too_many_evaluations", 413),
        (problem(429, "rate_limited", **{"retry-after": "2"}), RateLimitError, "rate_limited", 429),
        (problem(503, "store_unavailable"), ServerError, "store_unavailable", 503),
        (httpx.Response(500, text="boom"), ServerError, "server_error", 500),
        (httpx.Response(418, text="teapot"), TetherAPIError, "http_error", 418),
    ],
)
def test_error_statuses_become_errors_with_tethers_code(
    answer: httpx.Response, error: type[TetherAPIError], code: str, status: int
) -> None:
    fake = FakeTether().on("POST", EVALUATION, answer)
    with fake.client() as client, pytest.raises(error) as raised:
        client.evaluate(BILLING, "read", "doc:1")
    assert type(raised.value) is error
    assert (raised.value.error_code, raised.value.status) == (code, status)
    assert raised.value.code == code


def test_401_keeps_the_challenge_and_429_the_wait() -> None:
    challenge = 'Bearer realm="tether", error="invalid_token"'
    fake = FakeTether().on(
        "POST",
        EVALUATION,
        problem(401, "token_expired", **{"www-authenticate": challenge}),
        problem(429, "rate_limited", **{"retry-after": "3"}),
    )
    with fake.client() as client:
        with pytest.raises(AuthenticationError) as unauthenticated:
            client.evaluate(BILLING, "read", "doc:1")
        with pytest.raises(RateLimitError) as limited:
            client.evaluate(BILLING, "read", "doc:1")
    assert unauthenticated.value.www_authenticate == challenge
    assert unauthenticated.value.detail == "refused"
    assert limited.value.retry_after_s == 3.0


def test_an_oauth_error_body_keeps_error_and_error_code() -> None:
    body = {
        "error": "invalid_grant",
        "error_description": "the proof expired",
        "error_code": "token_expired",
    }
    fake = FakeTether().on("POST", "/oauth2/token", httpx.Response(400, json=body))
    with fake.client() as client, pytest.raises(BadRequestError) as raised:
        client.exchange("task-1", proof="svid")
    assert raised.value.oauth_error == "invalid_grant"
    assert raised.value.error_code == "token_expired"
    assert str(raised.value) == "the proof expired"


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, text="<html>"),
        httpx.Response(200, json={"decision": "yes"}),
        httpx.Response(200, json={"decision": True, "context": {"outcome": "deny"}}),
        httpx.Response(200, json={"decision": True, "context": {"outcome": "maybe"}}),
        httpx.Response(200, json={"decision": True, "context": []}),
    ],
)
def test_an_answer_the_protocol_does_not_allow_is_unexpected(answer: httpx.Response) -> None:
    fake = FakeTether().on("POST", EVALUATION, answer)
    with fake.client() as client, pytest.raises(UnexpectedResponse) as raised:
        client.evaluate(BILLING, "read", "doc:1")
    assert raised.value.error_code == "unexpected_response"


@pytest.mark.parametrize(
    ("failure", "error", "code"),
    [
        (httpx.ConnectError("connection refused"), TetherUnavailable, "tether_unreachable"),
        (httpx.ReadTimeout("slow"), TetherTimeout, "tether_timeout"),
        (httpx.ConnectTimeout("slow"), TetherTimeout, "tether_timeout"),
        (httpx.RemoteProtocolError("dropped"), TetherUnavailable, "tether_unreachable"),
    ],
)
def test_no_answer_is_tether_unavailable(
    failure: Exception, error: type[TetherUnavailable], code: str
) -> None:
    fake = FakeTether().on("POST", EVALUATION, failure)
    with fake.client() as client, pytest.raises(error) as raised:
        client.evaluate(BILLING, "read", "doc:1")
    assert type(raised.value) is error
    assert raised.value.error_code == code
    assert "http://tether.test" in str(raised.value)


def test_a_real_closed_port_is_tether_unavailable() -> None:
    from tether.sdk import Client

    with Client("http://127.0.0.1:9", timeout=1) as client, pytest.raises(TetherUnavailable):
        client.evaluate(BILLING, "read", "doc:1")


def test_evaluations_send_the_semantic_and_read_every_item() -> None:
    item_error = {
        "decision": False,
        "context": {
            "outcome": "deny",
            "reasons": ["invalid-request"],
            "error": {
                "status": 400,
                "error_code": "request_invalid",
                "message": "evaluation 1: resource.id is required",
            },
        },
    }
    answer = {"evaluations": [{"decision": True, "context": {"outcome": "allow"}}, item_error]}
    fake = FakeTether().on("POST", "/access/v1/evaluations", httpx.Response(200, json=answer))
    requests = [
        AccessRequest(BILLING, "read", Resource("doc", "1")),
        AccessRequest(GRANT, "send", Resource("email", "a@b"), {"n": 1}),
    ]
    with fake.client() as client:
        first, second = client.evaluations(requests, semantic="deny_on_first_deny")
    body = fake.bodies("/access/v1/evaluations")[0]
    assert body["options"] == {"evaluations_semantic": "deny_on_first_deny"}
    assert body["evaluations"][1]["subject"] == {"properties": {"token": GRANT.access_token}}
    assert body["evaluations"][1]["context"] == {"n": 1}
    assert first.allowed
    assert not second.allowed
    assert second.error_code == "request_invalid"
    assert second.errors == ("evaluation 1: resource.id is required",)


TASK = {
    "task_id": "task-1",
    "identity": "billing-bot",
    "status": "open",
    "purpose": "invoices",
    "intent": {"actions": ["read_invoice"], "resources": ["invoice:*"], "data_classes": []},
    "opened_at": "2026-12-06T03:00:00+00:00",
    "expires_at": "2026-12-06T03:10:00+00:00",
    "ended_at": None,
    "end_reason": None,
}


def test_open_task_authenticates_with_the_workload_proof() -> None:
    fake = FakeTether().on("POST", "/v1/tasks", httpx.Response(201, json=TASK))
    with fake.client() as client:
        task = client.open_task(
            purpose="invoices",
            actions=["read_invoice"],
            resources=["invoice:*"],
            ttl="10m",
            proof="svid-billing",
        )
    request = fake.requests[0]
    assert request.headers["authorization"] == "Bearer svid-billing"
    assert json.loads(request.content) == {
        "purpose": "invoices",
        "intent": {"actions": ["read_invoice"], "resources": ["invoice:*"], "data_classes": []},
        "ttl": "10m",
    }
    assert (task.id, task.identity, task.status) == ("task-1", "billing-bot", "open")
    assert task.intent.resources == ("invoice:*",)
    assert task.expires_at == datetime(2026, 12, 6, 3, 10, tzinfo=UTC)


def test_a_task_needs_a_proof_when_the_client_has_no_bearer_token() -> None:
    with FakeTether().client() as client, pytest.raises(ValueError, match="proof"):
        client.open_task(purpose="p", actions=["a"], resources=["r:*"])


def test_a_bearer_token_client_is_its_own_proof() -> None:
    fake = FakeTether().on("POST", "/v1/tasks", httpx.Response(201, json=TASK))
    with fake.client(credential=BearerToken("svid-self")) as client:
        client.open_task(purpose="p", actions=["a"], resources=["r:*"])
    assert fake.requests[0].headers["authorization"] == "Bearer svid-self"


def form_of(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


def test_exchange_sends_an_rfc_8693_form_and_reads_the_grant() -> None:
    token = fake_jwt(sub="billing-bot", txn="task-1", jti="jti-9")
    answer = {
        "access_token": token,
        "issued_token_type": ops.ACCESS_TOKEN_TYPE,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "read_invoice send_email",
    }
    fake = FakeTether().on("POST", "/oauth2/token", httpx.Response(200, json=answer))
    with fake.client() as client:
        grant = client.exchange("task-1", proof="svid", scope=["read_invoice"])
        client.exchange(None, proof="svid-helper", parent=grant)
    first, delegated = (form_of(r) for r in fake.requests)
    assert first == {
        "grant_type": tokens.GRANT_TYPE,
        "subject_token": "svid",
        "subject_token_type": tokens.JWT_TYPE,
        "resource": tokens.TASK_RESOURCE + "task-1",
        "scope": "read_invoice",
    }
    assert delegated == {
        "grant_type": tokens.GRANT_TYPE,
        "subject_token": token,
        "subject_token_type": tokens.ACCESS_TOKEN_TYPE,
        "actor_token": "svid-helper",
        "actor_token_type": tokens.JWT_TYPE,
    }
    assert fake.requests[1].headers["authorization"] == "Bearer svid-helper"
    assert (grant.task_id, grant.identity, grant.token_id) == ("task-1", "billing-bot", "jti-9")
    assert grant.scope == ("read_invoice", "send_email")
    assert 295 < (grant.expires_at - datetime.now(UTC)).total_seconds() <= 300
    assert token not in repr(grant)


def test_end_task_quotes_the_id_and_reads_what_was_revoked() -> None:
    ended = {
        **TASK,
        "status": "ended",
        "end_reason": "done",
        "revoked_tokens": 2,
        "already_ended": False,
    }
    fake = FakeTether().on("POST", "/v1/tasks/a%2Fb/end", httpx.Response(200, json=ended))
    with fake.client() as client:
        task = client.end_task("a/b", reason="done", proof="svid")
    assert fake.requests[0].url.raw_path == b"/v1/tasks/a%2Fb/end"
    assert fake.bodies("/v1/tasks/a%2Fb/end") == [{"reason": "done"}]
    assert (task.status, task.revoked_tokens, task.already_ended) == ("ended", 2, False)


def approval(status: str) -> httpx.Response:
    return httpx.Response(
        200,
        json={"id": "ap-1", "status": status, "decided_by": "carol", "poll": "/v1/approvals/ap-1"},
    )


def test_wait_for_approval_long_polls_until_decided() -> None:
    fake = FakeTether().on("GET", "/v1/approvals/ap-1", approval("pending"), approval("approved"))
    with fake.client() as client:
        found = client.wait_for_approval("ap-1", timeout=5)
    assert found.status is ApprovalStatus.APPROVED
    assert found.decided_by == "carol"
    waits = [int(r.url.params["wait"]) for r in fake.requests]
    assert len(waits) == 2
    assert all(0 < w <= 5 for w in waits)


def test_wait_for_approval_is_bounded() -> None:
    fake = FakeTether().on(
        "GET", "/v1/approvals/ap-1", approval("pending"), approval("pending"), approval("used")
    )
    with fake.client() as client:
        found = client.wait_for_approval("ap-1", timeout=0)
        long = client.wait_for_approval("ap-1", timeout=100)
    assert found.status is ApprovalStatus.PENDING
    assert long.status is ApprovalStatus.USED
    # One read at once for timeout 0; a long wait asks for at most 30 s at a time.
    assert [r.url.params["wait"] for r in fake.requests] == ["0", "30", "30"]


def test_report_posts_otel_spans_that_tethers_adapter_reads_back() -> None:
    fake = FakeTether().on("POST", "/v1/events", events_ok)
    call = ToolCall(
        tool="read_invoice",
        call_id="call_1",
        arguments_sha256="ab" * 32,
        started_at=datetime(2026, 12, 6, 3, tzinfo=UTC),
        ended_at=datetime.now(UTC),
        result_records=3,
        result_bytes=120,
        task_id="task-1",
        token_id="tok-1",
        decision_id="d-1",
        agent_id="billing-bot",
        resource="invoice:INV-1",
    )
    with fake.client() as client:
        receipt = client.report([call])
    body = fake.bodies("/v1/events")[0]
    assert body["source"] == "otel"
    assert receipt.ingested == 1
    (event,) = list(otel.decode(body["events"][0], Context()))
    assert not isinstance(event, str)
    assert (event.tool_name, event.call_id, event.task_id, event.token_id) == (
        "read_invoice",
        "call_1",
        "task-1",
        "tok-1",
    )
    assert (event.records, event.bytes, event.resource) == (3, 120, "invoice:INV-1")
    assert event.decision_id == "d-1"
    assert event.principal.key == "billing-bot"
    assert event.at == datetime(2026, 12, 6, 3, tzinfo=UTC)


def test_the_protocol_constants_are_tethers_own() -> None:
    assert (ops.GRANT_TYPE, ops.JWT_TYPE, ops.ACCESS_TOKEN_TYPE, ops.TASK_RESOURCE) == (
        tokens.GRANT_TYPE,
        tokens.JWT_TYPE,
        tokens.ACCESS_TOKEN_TYPE,
        tokens.TASK_RESOURCE,
    )


# --- the async client runs the same operations ------------------------------------------------


def run_async(fake: FakeTether, use: Callable[[Any], Any]) -> Any:
    async def main() -> Any:
        async with fake.async_client() as client:
            return await use(client)

    return asyncio.run(main())


def test_the_async_client_decides_the_same() -> None:
    fake = FakeTether().on("POST", EVALUATION, decision("allow", reasons=["p"]))
    answer = run_async(fake, lambda c: c.evaluate(GRANT, "read_invoice", "invoice:INV-1"))
    assert answer.allowed
    assert answer.reasons == ("p",)
    assert fake.bodies(EVALUATION)[0]["subject"] == {"properties": {"token": GRANT.access_token}}


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (problem(403, "role_forbidden"), PermissionDeniedError),
        (httpx.ConnectError("refused"), TetherUnavailable),
        (httpx.ReadTimeout("slow"), TetherTimeout),
    ],
)
def test_the_async_client_raises_the_same(answer: Any, error: type[Exception]) -> None:
    fake = FakeTether().on("POST", EVALUATION, answer)
    with pytest.raises(error):
        run_async(fake, lambda c: c.evaluate(BILLING, "read", "doc:1"))


def test_the_async_client_long_polls_and_reports() -> None:
    fake = (
        FakeTether()
        .on("GET", "/v1/approvals/ap-1", approval("pending"), approval("denied"))
        .on("POST", "/v1/events", events_ok)
    )
    found = run_async(fake, lambda c: c.wait_for_approval("ap-1", timeout=3))
    assert found.status is ApprovalStatus.DENIED
    assert len(fake.requests) == 2


def test_values_are_frozen_and_hashable() -> None:
    value = Decision(True, Outcome.CONSTRAIN, ("p",), {"max_rows": "1"})
    assert hash(value) == hash(Decision(True, Outcome.CONSTRAIN, ("p",), {"max_rows": "2"}))
    assert len({Resource("a", "1", {"x": 1}), Resource("a", "1", {"x": 1})}) == 1
    with pytest.raises(AttributeError):
        value.allowed = False  # type: ignore[misc]


# --- results, for drift's provenance -----------------------------------------------------------


def receipt(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    return httpx.Response(202, json={"decision_id": body["decision_id"], "task_id": "task-1"})


def test_report_result_binds_the_result_to_the_task_token_and_decision() -> None:
    fake = FakeTether().on("POST", "/v1/results", receipt)
    decided = Decision.from_json({"decision": True, "context": {"decision_id": "d-9"}})
    result = {"content": [{"type": "text", "text": "IBAN DE00"}], "isError": False}
    with fake.client() as client:
        answer = client.report_result(GRANT, decided, result)
    assert (answer.decision_id, answer.task_id) == ("d-9", "task-1")
    (sent,) = fake.bodies("/v1/results")
    assert sent == {"token": GRANT.access_token, "decision_id": "d-9", "result": result}
    assert list(sent["result"]) == ["content", "isError"]  # its own order, as shown
    assert fake.sent("/v1/results")[0].headers["authorization"] == f"Bearer {KEY}"


def test_a_result_too_large_goes_as_the_start_of_its_text() -> None:
    fake = FakeTether().on("POST", "/v1/results", receipt)
    rows = [{"note": '"quoted" \\ ' * 20, "i": i} for i in range(3000)]
    with fake.client() as client:
        client.report_result(GRANT.access_token, "d-1", rows)
        client.report_result(GRANT.access_token, "d-2", "x" * 600_000)
    cut, text = (b["result"] for b in fake.bodies("/v1/results"))
    assert isinstance(cut, str)
    assert cut.startswith('[{"note":"\\"quoted\\"')
    assert len(json.dumps(cut).encode()) <= MAX_RESULT_JSON == MAX_RESULT_JSON_SERVED
    assert text == "x" * MAX_RESULT_CHARS == "x" * MAX_RESULT_CHARS_READ
    assert all(len(r.content) <= MAX_RESULT_BODY for r in fake.sent("/v1/results"))


def test_report_result_needs_a_recorded_decision_and_names_refusals() -> None:
    fake = FakeTether().on("POST", "/v1/results", problem(413, "result_too_large"))
    undecided = Decision.from_json({"decision": True, "context": {}})
    with fake.client() as client:
        with pytest.raises(ValueError, match="no id"):
            client.report_result(GRANT, undecided, {})
        with pytest.raises(TetherAPIError) as refused:
            client.report_result(GRANT, "d-1", {})
    assert refused.value.error_code == "result_too_large"
    assert refused.value.status == 413


def test_the_async_client_reports_results_the_same() -> None:
    fake = FakeTether().on("POST", "/v1/results", receipt)
    answer = run_async(fake, lambda c: c.report_result(GRANT, "d-3", "plain text"))
    assert answer.decision_id == "d-3"
    assert fake.bodies("/v1/results")[0]["result"] == "plain text"


def test_requests_go_to_their_paths_under_the_base_url_however_many_paths() -> None:
    # The client merges each path with its base URL once and keeps a bounded number.
    fake = FakeTether().on("POST", "/prefix/access/v1/evaluation", decision("allow"))
    client = Client(
        "http://tether.test/prefix/",
        credential=ApiKey(KEY),
        transport=httpx.MockTransport(fake.handle),
    )
    tasks = [f"task-{n}" for n in range(KEPT_URLS + 10)]
    with client:
        for task_id in [*tasks, *tasks[:3]]:
            with pytest.raises(NotFoundError):
                client.end_task(task_id, proof="proof")
            assert client.evaluate(GRANT, "read_invoice", "invoice:INV-1").allowed

    ended = [str(r.url) for r in fake.requests if r.url.path.endswith("/end")]
    assert ended == [f"http://tether.test/prefix/v1/tasks/{t}/end" for t in [*tasks, *tasks[:3]]]
    assert len(fake.sent("/prefix/access/v1/evaluation")) == len(tasks) + 3
