"""The HTTP surface of a real ``tether serve``: probes, metrics, OpenAPI, routing and limits."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

# Fixtures from tests/conftest.py: a server factory and the ServerProcess it returns.
ServerFactory = Callable[..., Any]
ServerProcess = Any
pytestmark = pytest.mark.slow

BODY_LIMIT = 4096
EVALUATION = {
    "subject": {"type": "user", "id": "alice"},
    "action": {"name": "read"},
    "resource": {"type": "doc", "id": "d1"},
}


@pytest.fixture(scope="module")
def server(
    module_server_factory: ServerFactory,
    module_db_url: str,
    estate_writer: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> ServerProcess:
    estate: Path = estate_writer(tmp_path_factory.mktemp("estate"))
    return module_server_factory(
        db_url=module_db_url, estate=estate, env={"TETHER_MAX_BODY_BYTES": str(BODY_LIMIT)}
    )


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["error_code"] == code
    assert body["detail"]
    return body


def test_healthz(client: httpx.Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_tells_anyone_only_whether_it_is_ready(server: ServerProcess) -> None:
    # Revisions, counts and store errors (host and database names) are not public.
    for as_ in (None, "pep"):
        with server.client(as_) as anyone:
            response = anyone.get("/readyz")
        assert response.status_code == 200
        assert response.json() == {"status": "ready"}


def test_readyz_reports_the_store_and_the_live_revision_to_auditors(
    server: ServerProcess,
) -> None:
    for as_ in ("auditor", "admin"):
        with server.client(as_) as reader:
            response = reader.get("/readyz")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ready"
        assert body["estate_revision"] == body["latest_revision"] == 1
        assert body["policies"] >= 1
        assert body["decisions_lost"] == 0
        assert isinstance(body["decisions_written"], int)
        assert body["detail"] is None


def test_evaluation_answers_and_echoes_the_request_id(client: httpx.Client) -> None:
    response = client.post(
        "/access/v1/evaluation", json=EVALUATION, headers={"X-Request-ID": "req-42"}
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "req-42"
    body = response.json()
    assert body["decision"] is True
    assert body["context"]["outcome"] == "allow"
    assert body["context"]["reasons"] == ["allow-read"]
    assert len(body["context"]["decision_id"]) >= 16


def test_metrics_are_prometheus_text_with_the_decision_latency_histogram(
    client: httpx.Client, server: ServerProcess
) -> None:
    for _ in range(3):
        assert client.post("/access/v1/evaluation", json=EVALUATION).status_code == 200
    with server.client("auditor") as auditor:
        response = auditor.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = _samples(response.text)
    route = 'route="/access/v1/evaluation"'
    assert "# TYPE tether_decision_seconds histogram" in response.text
    count = next(
        v
        for k, v in samples.items()
        if k.startswith("tether_decision_seconds_count{") and route in k
    )
    assert count >= 3
    buckets = [k for k in samples if k.startswith("tether_decision_seconds_bucket{") and route in k]
    assert any('le="+Inf"' in k for k in buckets)
    assert samples['tether_decisions_total{outcome="allow"}'] >= 3


def _samples(text: str) -> dict[str, float]:
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def test_openapi_lists_the_authzen_paths(client: httpx.Client) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document = orjson.loads(response.content)
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    for path in (
        "/access/v1/evaluation",
        "/access/v1/evaluations",
        "/access/v1/search/subject",
        "/access/v1/search/resource",
        "/access/v1/search/action",
    ):
        assert "post" in paths[path], path
        # The PEP's request id (the SDK's `request_id=`): a header parameter, echoed back.
        operation = paths[path]["post"]
        headers = [p["name"] for p in operation["parameters"] if p["in"] == "header"]
        assert headers == ["X-Request-ID"], path
        assert "X-Request-ID" in operation["responses"]["200"]["headers"], path
    assert "get" in paths["/.well-known/authzen-configuration"]


def test_unknown_route_is_404(client: httpx.Client) -> None:
    assert client.get("/no/such/route").status_code == 404
    assert client.post("/access/v1/evaluationz", json=EVALUATION).status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/healthz/"),
        ("GET", "/openapi.json/"),
        ("GET", "/v1/tasks/"),
        ("POST", "/oauth2/token/"),
        ("POST", "/access/v1/evaluation/"),
        ("GET", "//evil.example/"),
    ],
)
def test_a_trailing_slash_is_a_404_never_a_redirect_to_the_host_header(
    server: ServerProcess, method: str, path: str
) -> None:
    """Starlette's slash redirects built `location` from a forged Host (issue 19)."""
    with httpx.Client(timeout=10, follow_redirects=False) as anonymous:
        response = anonymous.request(method, server.url + path, headers={"host": "evil.example"})
    assert "location" not in response.headers
    body = assert_problem(response, 404, "not_found")
    assert body["detail"] == f"no route `{path}` (tether's paths end without a trailing slash)"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_wrong_method_on_evaluation_is_405(client: httpx.Client, method: str) -> None:
    response = client.request(method, "/access/v1/evaluation")
    assert_problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"


def test_body_over_the_limit_is_413(client: httpx.Client) -> None:
    big = {**EVALUATION, "context": {"padding": "x" * BODY_LIMIT}}
    body = assert_problem(client.post("/access/v1/evaluation", json=big), 413, "payload_too_large")
    assert str(BODY_LIMIT) in body["detail"]
    # The server is fine afterwards.
    assert client.post("/access/v1/evaluation", json=EVALUATION).status_code == 200


def test_streamed_body_over_the_limit_is_413(server: ServerProcess) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"context": {"padding": "'
        for _ in range(BODY_LIMIT // 512 + 2):
            yield b"x" * 512
        yield b'"}}'

    with server.client() as client:
        response = client.post(
            "/access/v1/evaluation",
            content=chunks(),
            headers={"content-type": "application/json"},
        )
    assert "content-length" not in response.request.headers
    assert_problem(response, 413, "payload_too_large")


def test_body_just_under_the_limit_is_accepted(client: httpx.Client) -> None:
    overhead = len(orjson.dumps({**EVALUATION, "context": {"padding": ""}}))
    body = orjson.dumps({**EVALUATION, "context": {"padding": "x" * (BODY_LIMIT - overhead)}})
    assert len(body) == BODY_LIMIT
    response = client.post(
        "/access/v1/evaluation", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("content", "content_type", "code", "mentions"),
    [
        (b"{", "application/json", "malformed_json", "not valid JSON"),
        (b"", "application/json", "empty_body", "empty"),
        (b"{}", "text/plain", "unsupported_media_type", "text/plain"),
        (b"[]", "application/json", "authzen_request_invalid", "JSON object"),
        (
            b'{"action": {"name": "read"}}',
            "application/json",
            "authzen_request_invalid",
            "`subject`",
        ),
    ],
)
def test_bad_requests_are_400_problems_naming_what_is_wrong(
    client: httpx.Client, content: bytes, content_type: str, code: str, mentions: str
) -> None:
    response = client.post(
        "/access/v1/evaluation", content=content, headers={"content-type": content_type}
    )
    body = assert_problem(response, 400, code)
    assert mentions in body["detail"]


def test_a_hostile_request_is_recorded_without_costing_others_their_record(
    client: httpx.Client,
) -> None:
    # Over-long ids and NUL bytes exceed what PostgreSQL columns take; the batch they
    # share with ordinary decisions must still be stored, the hostile one included.
    hostile = {**EVALUATION, "subject": {"type": "user", "id": "x" * 3000 + "\u0000"}}
    ids = []
    for body, headers in (
        (EVALUATION, {}),
        (hostile, {"X-Request-ID": "r" * 300}),
        (EVALUATION, {}),
    ):
        response = client.post("/access/v1/evaluation", json=body, headers=headers)
        assert response.status_code == 200, response.text
        ids.append(response.json()["context"]["decision_id"])
    deadline = time.monotonic() + 3
    while True:
        listed = client.get("/v1/decisions", params={"limit": 100})
        assert listed.status_code == 200
        stored = {row["decision_id"] for row in listed.json()["decisions"]}
        if set(ids) <= stored:
            break
        assert time.monotonic() < deadline, f"missing {set(ids) - stored}"
        time.sleep(0.05)


def test_openapi_documents_every_declared_route_with_its_roles(client: httpx.Client) -> None:
    paths = orjson.loads(client.get("/openapi.json").content)["paths"]
    for path in ("/v1/approvals", "/v1/findings", "/v1/paths", "/v1/reviews", "/ssf/poll"):
        assert path in paths, path
    for path, operations in paths.items():
        assert "{" not in path or re.search(r"\{\w+\}", path), path  # no `:path` converters
        for method, operation in operations.items():
            # The connection limits answer on every route before the app reads a request.
            assert {"408", "431", "503"} <= operation["responses"].keys(), (method, path)
            assert (
                "TETHER_MAX_CONNECTIONS_PER_ADDRESS" in operation["responses"]["503"]["description"]
            )
            roles = operation["x-tether-roles"]
            if roles:
                assert "401" in operation["responses"], (method, path)
            else:
                assert operation["security"] == [], (method, path)


def test_tools_endpoints_answer_pep_gateways_and_name_bad_input(
    client: httpx.Client, server: ServerProcess
) -> None:
    mappings = client.get("/v1/tools")
    assert mappings.status_code == 200
    assert isinstance(mappings.json()["tools"], dict)
    not_a_token = client.post("/v1/tools/callable", json={"token": "x.y.z", "tools": ["read"]})
    assert not_a_token.json() == {"tools": []}  # an invalid token may call nothing
    for body in ({}, {"token": "x", "tools": "read"}, {"token": "x", "tools": [1]}, []):
        answer = client.post("/v1/tools/callable", json=body)
        assert_problem(answer, 400, "tools_request_invalid")
    with server.client(None) as anonymous:
        assert anonymous.get("/v1/tools").status_code == 401
    with server.client("auditor") as auditor:
        assert auditor.get("/v1/tools").status_code == 403
    paths = orjson.loads(client.get("/openapi.json").content)["paths"]
    listing = paths["/v1/tools/callable"]["post"]
    assert {"400", "401", "403", "413"} <= listing["responses"].keys()
    body = listing["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["token", "tools"]
    documented = paths["/v1/tools"]["get"]["responses"]["200"]["content"]["application/json"]
    assert "tools" in documented["schema"]["properties"]


def test_results_are_taken_from_peps_only_and_bad_reports_are_named(
    client: httpx.Client, server: ServerProcess
) -> None:
    report = {"token": "x.y.z", "decision_id": "d-1", "result": {"content": []}}
    not_a_token = client.post("/v1/results", json=report)
    assert (
        "not a task token of this tether"
        in assert_problem(not_a_token, 400, "result_token_invalid")["detail"]
    )
    for body in (
        [],
        {"decision_id": "d-1", "result": "r"},
        {"token": "x", "result": "r"},
        {"token": "x", "decision_id": "d" * 129, "result": "r"},
        {"token": "x", "decision_id": "d-1"},
        {"token": "x", "decision_id": "d-1", "result": None},
    ):
        assert_problem(client.post("/v1/results", json=body), 400, "result_report_invalid")
    with server.client(None) as anonymous:
        assert anonymous.post("/v1/results", json=report).status_code == 401
    with server.client("auditor") as auditor:
        assert auditor.post("/v1/results", json=report).status_code == 403
    operation = orjson.loads(client.get("/openapi.json").content)["paths"]["/v1/results"]["post"]
    assert {"202", "400", "401", "403", "413"} <= operation["responses"].keys()
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["token", "decision_id", "result"]
