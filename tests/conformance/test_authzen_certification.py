"""AuthZEN 1.0 certification scenario, Basic, Batch and Discovery, against a real server.

``examples/authzen-cert`` is the fixture of certification-scenario.md §C.1. The section
numbers in test ids and docstrings are the scenario's (``c.2.2.1`` is §C.2.2.1). Beyond
what the harness checks, every answer must be a tether decision (``decision_id``,
``outcome``, ``reasons`` in ``context``) and be in the decision log.

The servers here speak plain HTTP on loopback, so the scenario's "HTTPS URL" checks of
§C.6.5 become "the URLs use the scheme and authority the metadata was fetched from".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from authzen_cert_fixture import (
    ALICE,
    BOB,
    BOB_ADMIN,
    CONTEXT,
    HARD_DELETE,
    READ,
    RECORD_1,
    RECORD_1_ACTIVE,
    RECORD_2,
    RECORD_2_ARCHIVED,
    RULE1,
    RULE4,
    RULES,
    SOFT_DELETE,
    WRITE,
    request,
)
from authzen_harness import (
    BACKEND_PARAMS,
    EVALUATION,
    EVALUATIONS,
    SEARCH_ACTION,
    SEARCH_RESOURCE,
    SEARCH_SUBJECT,
    ServerProcess,
    check_decision,
    evaluate,
    evaluate_batch,
    post,
    recorded_decisions,
    serve_estate,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=BACKEND_PARAMS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    yield from serve_estate(request, tmp_path_factory, "authzen-cert")


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


# --- §C.2.2 and §C.3.4.2-3: the mandated decisions, on every way of asking one ---------

WAYS = {
    "evaluation": lambda body: (EVALUATION, body),
    "evaluation-with-context": lambda body: (EVALUATION, {**body, "context": CONTEXT}),
    "evaluations-without-array": lambda body: (EVALUATIONS, body),
    "evaluations-empty-array": lambda body: (EVALUATIONS, {**body, "evaluations": []}),
}


@pytest.mark.parametrize("way", list(WAYS))
@pytest.mark.parametrize(("body", "expected"), list(RULES.values()), ids=list(RULES))
def test_mandated_decision(
    client: httpx.Client, body: dict[str, Any], expected: bool, way: str
) -> None:
    """§C.1.4 rules 1-8 hold with and without context (§C.1.6), on both endpoints."""
    path, sent = WAYS[way](body)
    answer = evaluate(client, sent, path)
    assert answer["decision"] is expected, answer
    assert set(answer) == {"decision", "context"}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(request(ALICE, READ, RECORD_1, context=CONTEXT), id="c.2.2.3-context"),
        pytest.param(
            request(
                {**ALICE, "properties": {"department": "Sales", "role": "manager"}},
                {**READ, "properties": {"method": "GET"}},
                {**RECORD_1, "properties": {"status": "active", "owner": "bob"}},
            ),
            id="c.2.2.8-additional-properties",
        ),
        pytest.param(
            {**RULE1, "foo": "bar", "futureField": {"nested": True}},
            id="c.2.2.9-unknown-fields",
        ),
        pytest.param(
            request(
                {**ALICE, "unknown": 1},
                {**READ, "unknown": [1, 2]},
                {**RECORD_1, "unknown": {"a": None}},
                context={**CONTEXT, "nested": {"deep": [1.5, None, "x"]}},
            ),
            id="unknown-fields-inside-entities",
        ),
    ],
)
def test_accepted_request(client: httpx.Client, body: dict[str, Any]) -> None:
    assert evaluate(client, body)["decision"] is True


@pytest.mark.parametrize(
    ("rule", "outcome", "reasons"),
    [
        ("rule1-alice-read-record-1", "allow", ["readers-read-records"]),
        ("rule4-bob-write-record-1", "deny", ["no-permit-matched"]),
        ("rule5-alice-write-archived", "deny", ["archived-records-are-read-only"]),
        ("rule6-admin-write-archived", "allow", ["admins-curate-archive"]),
        ("rule7-alice-soft-delete", "allow", ["owners-soft-delete-records"]),
        ("rule8-alice-hard-delete", "deny", ["no-hard-deletes"]),
    ],
)
def test_reasons_name_the_determining_policy(
    client: httpx.Client, rule: str, outcome: str, reasons: list[str]
) -> None:
    """Reasons are the ``@id`` of the determining policies (or why none matched)."""
    context = evaluate(client, RULES[rule][0])["context"]
    assert (context["outcome"], context["reasons"]) == (outcome, reasons)


def test_request_properties_never_override_the_estate(client: httpx.Client) -> None:
    """Properties add attributes; what the estate declares about record-1 stands."""
    archived_claim = {**RECORD_1, "properties": {"status": "archived", "owner": "bob"}}
    assert evaluate(client, request(ALICE, WRITE, archived_claim))["decision"] is True
    assert evaluate(client, request(BOB, WRITE, archived_claim))["decision"] is False


def test_context_cannot_smuggle_action_properties(client: httpx.Client) -> None:
    """``context.action`` and ``context.tether`` are tether's: a caller's are dropped."""
    spoof = {"action": {"soft": True}, "tether": {"subject_id": "bob"}}
    answer = evaluate(client, request(ALICE, HARD_DELETE, RECORD_1, context=spoof))
    assert answer["decision"] is False
    assert answer["context"]["reasons"] == ["no-hard-deletes"]


def test_idempotent(client: httpx.Client) -> None:
    """§C.2.6: the same request, again and again, gets the same decision."""
    for body, expected in (RULES["rule1-alice-read-record-1"], RULES["rule4-bob-write-record-1"]):
        answers = [evaluate(client, body) for _ in range(5)]
        assert {a["decision"] for a in answers} == {expected}
        assert len({tuple(a["context"]["reasons"]) for a in answers}) == 1
        assert len({a["context"]["decision_id"] for a in answers}) == 5  # five decisions


# --- §C.3: Access Evaluations ---------------------------------------------------------

CONTEXT_INHERITANCE = {
    "subject": ALICE,
    "action": READ,
    "context": {"time": "2025-06-27T18:03-07:00"},
    "evaluations": [
        {"resource": RECORD_1},
        {
            "resource": RECORD_2,
            "context": {"time": "2025-06-27T19:00-07:00", "source": "batch-override"},
        },
    ],
}
DEFAULT_INHERITANCE = {
    "subject": ALICE,
    "action": WRITE,
    "resource": RECORD_1_ACTIVE,
    "evaluations": [{}, {"resource": RECORD_2_ARCHIVED}],
}

BATCHES = [
    pytest.param(
        {
            "subject": ALICE,
            "action": READ,
            "evaluations": [{"resource": RECORD_1}, {"resource": RECORD_2}],
        },
        [True, None],
        id="c.3.2.1-evaluations-array",
    ),
    pytest.param(
        {
            "subject": BOB,
            "resource": RECORD_1,
            "evaluations": [{"action": READ}, {"action": WRITE}],
        },
        [True, False],
        id="c.3.2.2-fixture-decisions-in-order",
    ),
    pytest.param(
        {
            "subject": ALICE,
            "action": WRITE,
            "evaluations": [{"resource": RECORD_1_ACTIVE}, {"resource": RECORD_2_ARCHIVED}],
        },
        [True, False],
        id="c.3.2.3-resource-properties",
    ),
    pytest.param(
        {
            "action": WRITE,
            "resource": RECORD_2_ARCHIVED,
            "evaluations": [{"subject": ALICE}, {"subject": BOB_ADMIN}],
        },
        [False, True],
        id="c.3.2.4-subject-properties",
    ),
    pytest.param(
        {"evaluations": [request(ALICE, READ, RECORD_1), request(BOB, WRITE, RECORD_1)]},
        [True, False],
        id="c.3.2.5-fully-specified",
    ),
    pytest.param(CONTEXT_INHERITANCE, [True, None], id="c.3.2.6-context-inheritance"),
    pytest.param(DEFAULT_INHERITANCE, [True, False], id="c.3.2.7-default-inheritance"),
    pytest.param(
        {"evaluations": [body for body, _ in RULES.values()]},
        [expected for _, expected in RULES.values()],
        id="all-eight-rules-in-one-batch",
    ),
]


@pytest.mark.parametrize(("body", "expected"), BATCHES)
def test_batch(client: httpx.Client, body: dict[str, Any], expected: list[bool | None]) -> None:
    """§C.3.2/§C.3.3: one decision per item, in request order; values where mandated."""
    response = post(client, EVALUATIONS, body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert "decision" not in answer  # §C.3.3.4: omitted when `evaluations` is present
    items = answer["evaluations"]
    assert len(items) == len(expected)
    decided = [check_decision(item) for item in items]
    for got, want in zip(decided, expected, strict=True):
        assert want is None or got is want, decided


def test_batch_inherits_context_and_entities_whole(client: httpx.Client) -> None:
    """§C.3.2.6-7: the log shows what each item was decided on: defaults or overrides."""
    first, second = evaluate_batch(client, CONTEXT_INHERITANCE)
    third, fourth = evaluate_batch(client, DEFAULT_INHERITANCE)
    ids = [item["context"]["decision_id"] for item in (first, second, third, fourth)]
    rows = recorded_decisions(client, set(ids))
    assert rows[ids[0]]["context"] == {"time": "2025-06-27T18:03-07:00"}
    assert rows[ids[1]]["context"] == {"time": "2025-06-27T19:00-07:00", "source": "batch-override"}
    assert (rows[ids[2]]["resource_id"], rows[ids[2]]["action"]) == ("record-1", "write")
    assert (rows[ids[3]]["resource_id"], rows[ids[3]]["subject_id"]) == ("record-2", "alice")


def _item_error(item: dict[str, Any], member: str) -> None:
    assert item["decision"] is False
    context = item["context"]
    assert context["outcome"] == "deny"
    assert context["reasons"] == ["invalid-request"]
    error = context["error"]
    assert error["status"] == 400
    assert error["error_code"] == "authzen_request_invalid"
    assert f"`{member}`" in error["message"], error


@pytest.mark.parametrize(
    ("bad_item", "member"),
    [
        pytest.param({}, "resource", id="c.3.4.1-missing-resource"),
        pytest.param({"resource": {"type": "record"}}, "resource.id", id="missing-resource-id"),
        pytest.param({"resource": "record-2"}, "resource", id="resource-not-an-object"),
        pytest.param("record-2", "evaluations[1]", id="item-not-an-object"),
    ],
)
def test_execute_all_reports_a_bad_item_in_place(
    client: httpx.Client, bad_item: Any, member: str
) -> None:
    """§C.3.4.1: a bad item is ``decision: false`` in its place; the others are decided."""
    body = {
        "subject": ALICE,
        "action": READ,
        "options": {"evaluations_semantic": "execute_all"},
        "evaluations": [{"resource": RECORD_1}, bad_item, {"resource": RECORD_2}],
    }
    first, second, third = evaluate_batch(client, body)
    assert check_decision(first) is True
    _item_error(second, member)
    check_decision(third)


PERMIT, DENY = request(ALICE, READ, RECORD_1), request(BOB, WRITE, RECORD_1)
PERMIT_TOO, DENY_TOO = request(ALICE, SOFT_DELETE, RECORD_1), request(ALICE, HARD_DELETE, RECORD_1)


@pytest.mark.parametrize(
    ("semantic", "items", "expected"),
    [
        pytest.param("execute_all", [PERMIT, DENY, PERMIT_TOO, DENY_TOO], [1, 0, 1, 0], id="all"),
        pytest.param(None, [PERMIT, DENY, PERMIT_TOO, DENY_TOO], [1, 0, 1, 0], id="default-all"),
        pytest.param("deny_on_first_deny", [PERMIT, DENY, PERMIT_TOO], [1, 0], id="deny-stops"),
        pytest.param("deny_on_first_deny", [DENY, PERMIT], [0], id="deny-first-item"),
        pytest.param("deny_on_first_deny", [PERMIT, PERMIT_TOO], [1, 1], id="deny-none"),
        pytest.param("permit_on_first_permit", [DENY, PERMIT, DENY_TOO], [0, 1], id="permit-stops"),
        pytest.param("permit_on_first_permit", [PERMIT, DENY], [1], id="permit-first-item"),
        pytest.param("permit_on_first_permit", [DENY, DENY_TOO], [0, 0], id="permit-none"),
    ],
)
def test_evaluations_semantic(
    client: httpx.Client, semantic: str | None, items: list[Any], expected: list[int]
) -> None:
    """API §7.1.2.1: the short-circuit semantics answer up to the deciding item."""
    body: dict[str, Any] = {"evaluations": items}
    if semantic is not None:
        body["options"] = {"evaluations_semantic": semantic, "another_option": "ignored"}
    answers = evaluate_batch(client, body)
    assert [int(check_decision(a)) for a in answers] == expected


def test_deny_on_first_deny_stops_at_a_bad_item(client: httpx.Client) -> None:
    """A failed item is a denial (API §7.1.2.1): ``deny_on_first_deny`` stops there."""
    body = {
        "options": {"evaluations_semantic": "deny_on_first_deny"},
        "evaluations": [PERMIT, {"subject": ALICE, "action": READ}, PERMIT_TOO],
    }
    first, second = evaluate_batch(client, body)
    assert check_decision(first) is True
    _item_error(second, "resource")


# --- §C.2.4 and friends: bad requests are 400 problem+json naming what is wrong ---------


def _bad(
    case_id: str,
    body: Any,
    member: str,
    *,
    path: str = EVALUATION,
    code: str = "authzen_request_invalid",
    content_type: str | None = "application/json",
    raw: bytes | None = None,
) -> Any:
    return pytest.param(path, body, raw, content_type, member, code, id=case_id)


BAD_REQUESTS = [
    _bad("c.2.4.1-missing-subject", {"action": READ, "resource": RECORD_1}, "`subject`"),
    _bad("c.2.4.1-missing-action", {"subject": ALICE, "resource": RECORD_1}, "`action`"),
    _bad("c.2.4.1-missing-resource", {"subject": ALICE, "action": READ}, "`resource`"),
    _bad(
        "c.2.4.2-subject-without-type", request({"id": "alice"}, READ, RECORD_1), "`subject.type`"
    ),
    _bad("c.2.4.2-subject-without-id", request({"type": "user"}, READ, RECORD_1), "`subject.id`"),
    _bad("c.2.4.2-action-without-name", request(ALICE, {}, RECORD_1), "`action.name`"),
    _bad(
        "c.2.4.2-resource-without-type", request(ALICE, READ, {"id": "record-1"}), "`resource.type`"
    ),
    _bad("c.2.4.2-resource-without-id", request(ALICE, READ, {"type": "record"}), "`resource.id`"),
    _bad(
        "c.2.4.3-text-plain",
        RULE1,
        "`application/json`",
        code="unsupported_media_type",
        content_type="text/plain",
    ),
    _bad(
        "c.2.4.3-form",
        RULE1,
        "`application/json`",
        code="unsupported_media_type",
        content_type="application/x-www-form-urlencoded",
    ),
    _bad(
        "c.2.4.3-no-content-type",
        RULE1,
        "`application/json`",
        code="unsupported_media_type",
        content_type=None,
    ),
    _bad(
        "c.2.4.4-malformed-json",
        None,
        "not valid JSON",
        code="malformed_json",
        raw=b'{"subject": {"type": "user",',
    ),
    _bad(
        "c.2.4.4-trailing-garbage",
        None,
        "not valid JSON",
        code="malformed_json",
        raw=b'{"subject": {}} x',
    ),
    _bad("c.2.4.5-empty-body", None, "empty", code="empty_body", raw=b""),
    _bad("c.2.4.5-blank-body", None, "empty", code="empty_body", raw=b"  \n"),
    _bad("c.2.4.6-subject-is-a-string", request("alice", READ, RECORD_1), "`subject`"),
    _bad(
        "c.2.4.6-action-name-is-a-number", request(ALICE, {"name": 123}, RECORD_1), "`action.name`"
    ),
    _bad("resource-is-an-array", request(ALICE, READ, [RECORD_1]), "`resource`"),
    _bad(
        "subject-id-is-a-number", request({"type": "user", "id": 7}, READ, RECORD_1), "`subject.id`"
    ),
    _bad(
        "subject-type-is-empty",
        request({"type": "", "id": "alice"}, READ, RECORD_1),
        "`subject.type`",
    ),
    _bad(
        "properties-is-a-string",
        request(ALICE, READ, {**RECORD_1, "properties": "x"}),
        "`resource.properties`",
    ),
    _bad("context-is-a-string", request(ALICE, READ, RECORD_1, context="x"), "`context`"),
    _bad("body-is-an-array", [RULE1], "JSON object"),
    _bad("body-is-null", None, "JSON object", raw=b"null"),
    _bad(
        "evaluations-compat-missing-subject",
        {"action": READ, "resource": RECORD_1},
        "`subject`",
        path=EVALUATIONS,
    ),
    _bad(
        "evaluations-is-an-object", {**RULE1, "evaluations": {}}, "`evaluations`", path=EVALUATIONS
    ),
    _bad(
        "evaluations-top-level-subject-is-a-string",
        {"subject": "alice", "action": READ, "evaluations": [{"resource": RECORD_1}]},
        "`subject`",
        path=EVALUATIONS,
    ),
    _bad(
        "evaluations-semantic-unknown",
        {"options": {"evaluations_semantic": "first"}, "evaluations": [RULE1]},
        "`options.evaluations_semantic`",
        path=EVALUATIONS,
    ),
    _bad(
        "evaluations-options-is-a-string",
        {"options": "all", "evaluations": [RULE1]},
        "`options`",
        path=EVALUATIONS,
    ),
    _bad(
        "evaluations-malformed-json",
        None,
        "not valid JSON",
        path=EVALUATIONS,
        code="malformed_json",
        raw=b"{",
    ),
    _bad(
        "evaluations-text-plain",
        RULE1,
        "`application/json`",
        path=EVALUATIONS,
        code="unsupported_media_type",
        content_type="text/plain",
    ),
]


@pytest.mark.parametrize(("path", "body", "raw", "content_type", "member", "code"), BAD_REQUESTS)
def test_bad_request(
    client: httpx.Client,
    path: str,
    body: Any,
    raw: bytes | None,
    content_type: str | None,
    member: str,
    code: str,
) -> None:
    """A 400 is RFC 9457 problem+json whose ``detail`` says which member is wrong."""
    content = raw if raw is not None else httpx.Request("POST", "/", json=body).content
    headers = {"x-request-id": "bad-request-1"}
    if content_type is not None:
        headers["content-type"] = content_type
    response = client.post(path, content=content, headers=headers)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"] == "bad-request-1"
    problem = response.json()
    assert problem["status"] == 400
    assert problem["title"] == "Bad Request"
    assert problem["error_code"] == code
    assert problem["type"].endswith(code)
    assert member in problem["detail"], problem
    assert "``" not in problem["detail"], "a member with no name"


def test_json_with_charset_is_accepted(client: httpx.Client) -> None:
    content = httpx.Request("POST", "/", json=RULE1).content
    response = client.post(
        EVALUATION, content=content, headers={"content-type": "application/json; charset=utf-8"}
    )
    assert response.status_code == 200
    assert response.json()["decision"] is True


def test_only_post_is_allowed(client: httpx.Client) -> None:
    response = client.get(EVALUATION)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.headers["content-type"] == "application/problem+json"


# --- §C.2.5: X-Request-ID -------------------------------------------------------------

SEARCHES = {
    SEARCH_SUBJECT: {"subject": {"type": "user"}, "action": READ, "resource": RECORD_1},
    SEARCH_RESOURCE: {"subject": ALICE, "action": READ, "resource": {"type": "record"}},
    SEARCH_ACTION: {"subject": ALICE, "resource": RECORD_1},
}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (EVALUATION, RULE1),
        (EVALUATIONS, {"evaluations": [RULE1, RULE4]}),
        *SEARCHES.items(),
    ],
)
def test_request_id_is_echoed(client: httpx.Client, path: str, body: dict[str, Any]) -> None:
    """§C.2.5.1 on every AuthZEN endpoint."""
    request_id = "bfe9eb29-ab87-4ca3-be83-a1d5d8305716"
    response = post(client, path, body, {"X-Request-ID": request_id})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == request_id


def test_request_id_is_generated_when_absent(client: httpx.Client) -> None:
    """§C.2.5.2: no header is no failure; tether makes one up, fresh per request."""
    first, second = post(client, EVALUATION, RULE1), post(client, EVALUATION, RULE1)
    assert first.status_code == second.status_code == 200
    assert first.headers["x-request-id"]
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


def test_request_id_is_recorded_with_the_decision(client: httpx.Client) -> None:
    response = post(client, EVALUATION, RULE4, {"X-Request-ID": "trace-rule-4"})
    decision_id = response.json()["context"]["decision_id"]
    row = recorded_decisions(client, {decision_id})[decision_id]
    assert row["request_id"] == "trace-rule-4"


# --- every decision answered is recorded ----------------------------------------------


def test_every_decision_answered_is_recorded(client: httpx.Client) -> None:
    answered: dict[str, dict[str, Any]] = {}
    for body, _ in RULES.values():
        answer = evaluate(client, body)
        answered[answer["context"]["decision_id"]] = answer
    for item in evaluate_batch(client, {"evaluations": [b for b, _ in RULES.values()]}):
        check_decision(item)
        answered[item["context"]["decision_id"]] = item
    assert len(answered) == 16
    rows = recorded_decisions(client, set(answered))
    for decision_id, answer in answered.items():
        row = rows[decision_id]
        assert row["decision"] is answer["decision"]
        assert row["outcome"] == answer["context"]["outcome"]
        assert row["reasons"] == answer["context"]["reasons"]
        assert row["estate_revision"] is not None


# --- §C.6: discovery ------------------------------------------------------------------


def test_discovery(server: ServerProcess, client: httpx.Client) -> None:
    response = client.get("/.well-known/authzen-configuration")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    metadata = response.json()
    base = server.url
    assert metadata["policy_decision_point"] == base
    expected = {
        "access_evaluation_endpoint": EVALUATION,
        "access_evaluations_endpoint": EVALUATIONS,
        "search_subject_endpoint": SEARCH_SUBJECT,
        "search_resource_endpoint": SEARCH_RESOURCE,
        "search_action_endpoint": SEARCH_ACTION,
    }
    for key, path in expected.items():
        assert metadata[key] == f"{base}{path}", key
    assert isinstance(metadata.get("capabilities", []), list)
    assert all(isinstance(c, str) for c in metadata.get("capabilities", []))
    assert "signed_metadata" not in metadata or isinstance(metadata["signed_metadata"], str)


def test_discovered_endpoints_answer(client: httpx.Client) -> None:
    """A PEP that only knows the metadata URL can reach every API through it."""
    metadata = client.get("/.well-known/authzen-configuration").json()
    # The same PEP credentials, on absolute URLs.
    auth = {"Authorization": client.headers["Authorization"]}
    with httpx.Client(timeout=10, headers=auth) as absolute:
        answer = absolute.post(metadata["access_evaluation_endpoint"], json=RULE1).json()
        assert answer["decision"] is True
        batch = absolute.post(
            metadata["access_evaluations_endpoint"], json={"evaluations": [RULE4]}
        )
        assert batch.json()["evaluations"][0]["decision"] is False
        for key, path in (
            ("search_subject_endpoint", SEARCH_SUBJECT),
            ("search_resource_endpoint", SEARCH_RESOURCE),
            ("search_action_endpoint", SEARCH_ACTION),
        ):
            found = absolute.post(metadata[key], json=SEARCHES[path])
            assert found.status_code == 200
            assert found.json()["results"], key
