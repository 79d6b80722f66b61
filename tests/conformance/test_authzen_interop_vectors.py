"""AuthZEN interop vectors against a real server: the Todo backend and the API gateways.

``examples/authzen-todo`` is the estate: the five Todo users keyed by their PIDs with
their roles, and Cedar policies written from the scenario's prose
(``todo-1.1-scenario.md``), never from the expected answers. Vectors:

* ``authzen-todo-backend__test__decisions-authorization-api-1_0-02.json``: 40 single
  decisions (``/access/v1/evaluation``) and 3 batches (``/access/v1/evaluations``);
* ``authzen-api-gateways__test-harness__test__decisions.json``: 25 decisions of the
  gateway in front of the same backend (subjects ``identity``, resources ``route``).

Every answer must also be a well-formed tether decision (``decision_id``, ``outcome``,
``reasons`` in ``context``) and be recorded in the decision log.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from authzen_harness import (
    BACKEND_PARAMS,
    EVALUATION,
    TODO_PEOPLE,
    ServerProcess,
    check_decision,
    evaluate,
    evaluate_batch,
    load_vectors,
    recorded_decisions,
    serve_estate,
)

pytestmark = pytest.mark.slow

TODO = load_vectors("authzen-todo-backend__test__decisions-authorization-api-1_0-02.json")
GATEWAY = load_vectors("authzen-api-gateways__test-harness__test__decisions.json")


def _who(entity: dict[str, Any]) -> str:
    return TODO_PEOPLE.get(entity["id"], entity["id"])


def _what(resource: dict[str, Any]) -> str:
    owner = resource.get("properties", {}).get("ownerID")
    if owner is not None:
        return f"todo-of-{owner.split('@')[0]}"
    return resource["id"].split("@")[0]


def _single_id(index: int, vector: dict[str, Any]) -> str:
    request = vector["request"]
    verdict = "permit" if vector["expected"] else "deny"
    return (
        f"{index:02d}-{_who(request['subject'])}-{request['action']['name']}-"
        f"{_what(request['resource'])}-{verdict}"
    )


def _batch_id(index: int, vector: dict[str, Any]) -> str:
    request = vector["request"]
    targets = "+".join(_what(item["resource"]) for item in request["evaluations"])
    return f"batch{index}-{_who(request['subject'])}-{request['action']['name']}-{targets}"


def _gateway_id(index: int, vector: dict[str, Any]) -> str:
    request = vector["request"]
    verdict = "permit" if vector["expected"] else "deny"
    return (
        f"{index:02d}-{_who(request['subject'])}-{request['action']['name']}-"
        f"{request['resource']['id']}-{verdict}"
    )


SINGLE = [
    pytest.param(v["request"], v["expected"], id=_single_id(i, v))
    for i, v in enumerate(TODO["evaluation"], 1)
]
BATCHES = [
    pytest.param(v["request"], [e["decision"] for e in v["expected"]], id=_batch_id(i, v))
    for i, v in enumerate(TODO["evaluations"], 1)
]
GATEWAYS = [
    pytest.param(v["request"], v["expected"], id=_gateway_id(i, v))
    for i, v in enumerate(GATEWAY["evaluation"], 1)
]


@pytest.fixture(scope="module", params=BACKEND_PARAMS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    yield from serve_estate(request, tmp_path_factory, "authzen-todo")


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    # As the AuthZEN interop harness does: the PEP's API key raw in `Authorization`.
    with server.client(raw=True) as client:
        yield client


def test_vector_counts() -> None:
    """The files hold what the conformance claim counts: 40 + 3 Todo, 25 gateway."""
    assert (len(SINGLE), len(BATCHES), len(GATEWAYS)) == (40, 3, 25)


@pytest.mark.parametrize(("request_body", "expected"), SINGLE)
def test_todo_decision(client: httpx.Client, request_body: dict[str, Any], expected: bool) -> None:
    answer = evaluate(client, request_body)
    assert answer["decision"] is expected, answer


@pytest.mark.parametrize(("request_body", "expected"), BATCHES)
def test_todo_batch(
    client: httpx.Client, request_body: dict[str, Any], expected: list[bool]
) -> None:
    items = evaluate_batch(client, request_body)
    assert [check_decision(item) for item in items] == expected, items


@pytest.mark.parametrize(("request_body", "expected"), GATEWAYS)
def test_gateway_decision(
    client: httpx.Client, request_body: dict[str, Any], expected: bool
) -> None:
    answer = evaluate(client, request_body)
    assert answer["decision"] is expected, answer


def test_every_vector_decision_is_recorded(client: httpx.Client) -> None:
    """Each answered decision is in the decision log, as answered."""
    answered: dict[str, dict[str, Any]] = {}
    for vector in [*TODO["evaluation"], *GATEWAY["evaluation"]]:
        answer = evaluate(client, vector["request"], EVALUATION)
        answered[answer["context"]["decision_id"]] = {"request": vector["request"], **answer}
    for vector in TODO["evaluations"]:
        request = vector["request"]
        for item, answer in zip(
            request["evaluations"], evaluate_batch(client, request), strict=True
        ):
            check_decision(answer)
            merged = {"subject": request["subject"], "action": request["action"], **item}
            answered[answer["context"]["decision_id"]] = {"request": merged, **answer}
    assert len(answered) == 40 + 25 + 6

    rows = recorded_decisions(client, set(answered))
    for decision_id, answer in answered.items():
        row, request = rows[decision_id], answer["request"]
        assert row["decision"] is answer["decision"]
        assert row["outcome"] == answer["context"]["outcome"]
        assert row["reasons"] == answer["context"]["reasons"]
        assert (row["subject_type"], row["subject_id"]) == (
            request["subject"]["type"],
            request["subject"]["id"],
        )
        assert row["action"] == request["action"]["name"]
        assert (row["resource_type"], row["resource_id"]) == (
            request["resource"]["type"],
            request["resource"]["id"],
        )
