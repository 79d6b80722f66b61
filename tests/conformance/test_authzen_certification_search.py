"""AuthZEN 1.0 certification scenario, Search (§C.4), against a real server.

The fixture is ``examples/authzen-cert`` (certification-scenario.md §C.1.5, S1-S6).
The harness only asks that the expected entities appear. Beyond that, the three
searches must agree exactly with single evaluations over the whole fixture: API §8.1
asks that every result, evaluated, be permitted, and tether also leaves out nothing
that is permitted.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from authzen_cert_fixture import (
    ALICE,
    BOB,
    BOB_ADMIN,
    CONTEXT,
    DELETE,
    READ,
    RECORD_1,
    RECORD_2,
    RECORD_2_ARCHIVED,
    WRITE,
    request,
)
from authzen_harness import (
    BACKEND_PARAMS,
    SEARCH_ACTION,
    SEARCH_RESOURCE,
    SEARCH_SUBJECT,
    ServerProcess,
    evaluate,
    post,
    serve_estate,
)

pytestmark = pytest.mark.slow

USERS = {"type": "user"}
RECORDS = {"type": "record"}


@pytest.fixture(scope="module", params=BACKEND_PARAMS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    yield from serve_estate(request, tmp_path_factory, "authzen-cert")


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def search(client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST a search; check status, media type and the shape of every result."""
    response = post(client, path, body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    answer: dict[str, Any] = response.json()
    results = answer["results"]
    assert isinstance(results, list)
    for result in results:
        if path == SEARCH_ACTION:
            assert isinstance(result["name"], str), result
        else:
            wanted = body["subject" if path == SEARCH_SUBJECT else "resource"]["type"]
            assert result["type"] == wanted, result
            assert isinstance(result["id"], str), result
    page = answer.get("page")
    if page is not None:
        assert isinstance(page, dict)
        assert isinstance(page["next_token"], str)
    return answer


def found(client: httpx.Client, path: str, body: dict[str, Any]) -> list[str]:
    return [r.get("id", r.get("name")) for r in search(client, path, body)["results"]]


# --- S1-S6 and their variants (§C.4.2-§C.4.4) -----------------------------------------

FIXTURE_SEARCHES = [
    pytest.param(SEARCH_SUBJECT, request(USERS, READ, RECORD_1), {"alice", "bob"}, id="c.4.2.1-S1"),
    pytest.param(
        SEARCH_SUBJECT,
        request(USERS, READ, RECORD_1, context=CONTEXT),
        {"alice", "bob"},
        id="c.4.2.2-S1-context",
    ),
    pytest.param(
        SEARCH_SUBJECT, request(ALICE, READ, RECORD_1), {"alice", "bob"}, id="c.4.2.3-S1-subject-id"
    ),
    pytest.param(
        SEARCH_SUBJECT, request(USERS, WRITE, RECORD_2_ARCHIVED), {"bob"}, id="c.4.2.4-S4"
    ),
    pytest.param(SEARCH_RESOURCE, request(ALICE, READ, RECORDS), {"record-1"}, id="c.4.3.1-S2"),
    pytest.param(
        SEARCH_RESOURCE,
        request(ALICE, READ, RECORDS, context=CONTEXT),
        {"record-1"},
        id="c.4.3.2-S2-context",
    ),
    pytest.param(
        SEARCH_RESOURCE, request(ALICE, READ, RECORD_1), {"record-1"}, id="c.4.3.3-S2-resource-id"
    ),
    pytest.param(
        SEARCH_RESOURCE, request(BOB_ADMIN, WRITE, RECORDS), {"record-2"}, id="c.4.3.4-S5"
    ),
    pytest.param(
        SEARCH_ACTION, {"subject": ALICE, "resource": RECORD_1}, {"read", "write"}, id="c.4.4.1-S3"
    ),
    pytest.param(
        SEARCH_ACTION,
        {"subject": ALICE, "resource": RECORD_1, "context": CONTEXT},
        {"read", "write"},
        id="c.4.4.2-S3-context",
    ),
    pytest.param(
        SEARCH_ACTION,
        {"subject": BOB_ADMIN, "resource": RECORD_2_ARCHIVED},
        {"write"},
        id="c.4.4.3-S6",
    ),
]


@pytest.mark.parametrize(("path", "body", "required"), FIXTURE_SEARCHES)
def test_fixture_search(
    client: httpx.Client, path: str, body: dict[str, Any], required: set[str]
) -> None:
    results = found(client, path, body)
    assert required <= set(results), results
    assert len(results) == len(set(results)), "a result appears twice"


@pytest.mark.parametrize(
    ("path", "with_id", "without_id"),
    [
        pytest.param(
            SEARCH_SUBJECT,
            request(ALICE, READ, RECORD_1),
            request(USERS, READ, RECORD_1),
            id="c.4.2.3-subject-id-ignored",
        ),
        pytest.param(
            SEARCH_SUBJECT,
            request({**BOB, "properties": {"role": "admin"}}, WRITE, RECORD_2_ARCHIVED),
            request(USERS, WRITE, RECORD_2_ARCHIVED),
            id="subject-id-and-properties-ignored",
        ),
        pytest.param(
            SEARCH_RESOURCE,
            request(ALICE, READ, RECORD_1),
            request(ALICE, READ, RECORDS),
            id="c.4.3.3-resource-id-ignored",
        ),
        pytest.param(
            SEARCH_RESOURCE,
            request(BOB_ADMIN, WRITE, RECORD_1),
            request(BOB_ADMIN, WRITE, RECORDS),
            id="resource-id-ignored-admin",
        ),
    ],
)
def test_searched_for_id_is_ignored(
    client: httpx.Client, path: str, with_id: dict[str, Any], without_id: dict[str, Any]
) -> None:
    """The searched-for entity's id, if sent, MUST NOT change the result set."""
    assert found(client, path, with_id) == found(client, path, without_id)


def test_searches_agree_with_evaluations(client: httpx.Client) -> None:
    """Over the whole fixture, each search returns exactly what evaluation permits."""
    subjects, resources, actions = (ALICE, BOB), (RECORD_1, RECORD_2), (READ, WRITE, DELETE)
    for subject, action, resource in itertools.product(subjects, actions, resources):
        permitted = evaluate(client, request(subject, action, resource))["decision"]
        who = found(client, SEARCH_SUBJECT, request(USERS, action, resource))
        what = found(client, SEARCH_RESOURCE, request(subject, action, RECORDS))
        how = found(client, SEARCH_ACTION, {"subject": subject, "resource": resource})
        case = f"{subject['id']} {action['name']} {resource['id']}: {permitted}"
        assert (subject["id"] in who) is permitted, case
        assert (resource["id"] in what) is permitted, case
        assert (action["name"] in how) is permitted, case


# --- §C.4.6: nothing matches, so nothing is returned (not an error) ---------------------

NOBODY = {"type": "user", "id": "nonexistent-user"}
NO_RECORD = {"type": "record", "id": "record-404"}
SPACESHIP = {"type": "spaceship", "id": "enterprise"}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        pytest.param(
            SEARCH_ACTION,
            {"subject": NOBODY, "resource": RECORD_1},
            id="c.4.6.1-action-unknown-subject",
        ),
        pytest.param(
            SEARCH_ACTION, {"subject": ALICE, "resource": NO_RECORD}, id="action-unknown-resource"
        ),
        pytest.param(
            SEARCH_ACTION,
            {"subject": SPACESHIP, "resource": RECORD_1},
            id="action-unknown-subject-type",
        ),
        pytest.param(
            SEARCH_ACTION,
            {"subject": ALICE, "resource": SPACESHIP},
            id="action-unknown-resource-type",
        ),
        pytest.param(
            SEARCH_SUBJECT,
            request({"type": "spaceship"}, READ, RECORD_1),
            id="c.4.6.2-subject-unknown-type",
        ),
        pytest.param(
            SEARCH_SUBJECT, request(USERS, READ, NO_RECORD), id="subject-unknown-resource"
        ),
        pytest.param(
            SEARCH_SUBJECT, request(USERS, READ, SPACESHIP), id="subject-unknown-resource-type"
        ),
        pytest.param(
            SEARCH_SUBJECT, request(USERS, {"name": "fly"}, RECORD_1), id="subject-unknown-action"
        ),
        pytest.param(
            SEARCH_RESOURCE, request(NOBODY, READ, RECORDS), id="resource-unknown-subject"
        ),
        pytest.param(
            SEARCH_RESOURCE, request(ALICE, READ, {"type": "spaceship"}), id="resource-unknown-type"
        ),
        pytest.param(
            SEARCH_RESOURCE, request(SPACESHIP, READ, RECORDS), id="resource-unknown-subject-type"
        ),
    ],
)
def test_nothing_matches(client: httpx.Client, path: str, body: dict[str, Any]) -> None:
    assert search(client, path, body)["results"] == []


# --- §C.4.7: bad search requests ------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "member"),
    [
        pytest.param(
            SEARCH_SUBJECT,
            {"subject": USERS, "resource": RECORD_1},
            "`action`",
            id="c.4.7.1-subject-missing-action",
        ),
        pytest.param(
            SEARCH_RESOURCE,
            {"action": READ, "resource": RECORDS},
            "`subject`",
            id="c.4.7.1-resource-missing-subject",
        ),
        pytest.param(
            SEARCH_ACTION, {"subject": ALICE}, "`resource`", id="c.4.7.1-action-missing-resource"
        ),
        pytest.param(
            SEARCH_SUBJECT,
            request(USERS, READ, RECORDS),
            "`resource.id`",
            id="c.4.7.2-subject-input-resource-without-id",
        ),
        pytest.param(
            SEARCH_RESOURCE,
            request(USERS, READ, RECORDS),
            "`subject.id`",
            id="c.4.7.2-resource-input-subject-without-id",
        ),
        pytest.param(
            SEARCH_ACTION,
            {"subject": USERS, "resource": RECORD_1},
            "`subject.id`",
            id="c.4.7.2-action-input-subject-without-id",
        ),
        pytest.param(
            SEARCH_ACTION,
            {"subject": ALICE, "resource": RECORDS},
            "`resource.id`",
            id="action-input-resource-without-id",
        ),
        pytest.param(
            SEARCH_SUBJECT,
            request({"id": "alice"}, READ, RECORD_1),
            "`subject.type`",
            id="subject-without-type",
        ),
        pytest.param(
            SEARCH_RESOURCE,
            request(ALICE, READ, {"id": "record-1"}),
            "`resource.type`",
            id="resource-without-type",
        ),
        pytest.param(
            SEARCH_SUBJECT, request("alice", READ, RECORD_1), "`subject`", id="subject-is-a-string"
        ),
        pytest.param(
            SEARCH_RESOURCE,
            request(ALICE, {"name": 1}, RECORDS),
            "`action.name`",
            id="action-name-is-a-number",
        ),
        pytest.param(
            SEARCH_ACTION,
            {"subject": ALICE, "resource": RECORD_1, "context": []},
            "`context`",
            id="context-is-an-array",
        ),
        pytest.param(
            SEARCH_SUBJECT,
            {**request(USERS, READ, RECORD_1), "page": 1},
            "`page`",
            id="page-is-a-number",
        ),
        pytest.param(
            SEARCH_SUBJECT,
            {**request(USERS, READ, RECORD_1), "page": {"limit": -1}},
            "`page.limit`",
            id="page-limit-negative",
        ),
        pytest.param(
            SEARCH_SUBJECT,
            {**request(USERS, READ, RECORD_1), "page": {"limit": "1"}},
            "`page.limit`",
            id="page-limit-a-string",
        ),
        pytest.param(
            SEARCH_SUBJECT,
            {**request(USERS, READ, RECORD_1), "page": {"token": "bogus"}},
            "`page.token`",
            id="page-token-unknown",
        ),
    ],
)
def test_bad_search(client: httpx.Client, path: str, body: dict[str, Any], member: str) -> None:
    response = post(client, path, body, {"X-Request-ID": "bad-search"})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"] == "bad-search"
    problem = response.json()
    assert problem["status"] == 400
    assert problem["error_code"] == "authzen_request_invalid"
    assert member in problem["detail"], problem


@pytest.mark.parametrize("path", [SEARCH_SUBJECT, SEARCH_RESOURCE, SEARCH_ACTION])
def test_search_transport_errors(client: httpx.Client, path: str) -> None:
    """Content type, malformed JSON and empty bodies are 400s on the search APIs too."""
    for content, content_type, code in (
        (b"{}", "text/plain", "unsupported_media_type"),
        (b'{"subject": ', "application/json", "malformed_json"),
        (b"", "application/json", "empty_body"),
    ):
        response = client.post(path, content=content, headers={"content-type": content_type})
        assert response.status_code == 400, (code, response.text)
        assert response.json()["error_code"] == code


# --- §C.4.5: pagination -----------------------------------------------------------------

PAGED = [
    pytest.param(SEARCH_SUBJECT, request(USERS, READ, RECORD_1), id="subjects"),
    pytest.param(SEARCH_RESOURCE, request(ALICE, READ, RECORDS), id="resources"),
    pytest.param(SEARCH_ACTION, {"subject": ALICE, "resource": RECORD_1}, id="actions"),
]


@pytest.mark.parametrize(("path", "body"), PAGED)
def test_pages_of_one_to_the_end(client: httpx.Client, path: str, body: dict[str, Any]) -> None:
    """§C.4.5.1-3: ``limit: 1`` pages, following ``next_token`` until it is empty."""
    everything = search(client, path, body)
    assert everything["page"]["next_token"] == ""
    expected = everything["results"]
    assert len(expected) >= 2, "the fixture must give more than one page"

    collected: list[Any] = []
    page: dict[str, Any] = {"limit": 1}
    for _ in range(len(expected) + 1):
        answer = search(client, path, {**body, "page": page})
        assert len(answer["results"]) == 1
        assert answer["page"]["count"] == 1
        assert answer["page"]["total"] == len(expected)
        collected += answer["results"]
        token = answer["page"]["next_token"]
        if len(collected) < len(expected):
            assert token, "more results exist, so next_token must not be empty"
        else:
            assert token == "", "no more results, so next_token must be empty"
            break
        page = {"token": token, "limit": 1}
    assert collected == expected


@pytest.mark.parametrize(("path", "body"), PAGED)
def test_token_without_limit_returns_the_rest(
    client: httpx.Client, path: str, body: dict[str, Any]
) -> None:
    """§C.4.5.2 as the harness sends it: the follow-up carries only the token."""
    expected = search(client, path, body)["results"]
    first = search(client, path, {**body, "page": {"limit": 1}})
    rest = search(client, path, {**body, "page": {"token": first["page"]["next_token"]}})
    assert first["results"] + rest["results"] == expected
    assert rest["page"]["next_token"] == ""


def test_token_of_another_search_is_refused(client: httpx.Client) -> None:
    """API §8.2: the query must not change mid-pagination; tether says so."""
    first = search(client, SEARCH_SUBJECT, {**request(USERS, READ, RECORD_1), "page": {"limit": 1}})
    token = first["page"]["next_token"]
    changed = {**request(USERS, READ, RECORD_2), "page": {"token": token}}
    response = post(client, SEARCH_SUBJECT, changed)
    assert response.status_code == 400
    assert "`page.token`" in response.json()["detail"]


def test_large_limit_is_one_page(client: httpx.Client) -> None:
    answer = search(
        client, SEARCH_SUBJECT, {**request(USERS, READ, RECORD_1), "page": {"limit": 50}}
    )
    assert len(answer["results"]) == 2
    assert answer["page"]["next_token"] == ""


def test_limit_zero_counts_without_results(client: httpx.Client) -> None:
    """API §8.2.1: ``limit`` is a non-negative integer; 0 gives the totals, no results."""
    body = request(USERS, READ, RECORD_1)
    answer = search(client, SEARCH_SUBJECT, {**body, "page": {"limit": 0}})
    assert answer["results"] == []
    assert (answer["page"]["count"], answer["page"]["total"]) == (0, 2)
    assert answer["page"]["next_token"], "every result is still to come"
    rest = search(client, SEARCH_SUBJECT, {**body, "page": {"token": answer["page"]["next_token"]}})
    assert rest["results"] == search(client, SEARCH_SUBJECT, body)["results"]
