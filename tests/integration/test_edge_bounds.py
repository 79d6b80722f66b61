"""Bounds at the edge of a real ``tether serve``, and no request stalling other callers.

Deep or large ``context``/``properties``, oversized batches and bodies are refused before
any work with a problem naming the limit; a hostile batch beside an honest PEP leaves the
honest PEP answered without a stall (measured here, asserted loosely: CI machines are
shared). The store plays no part in these bounds, so one backend (SQLite) suffices.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

ServerFactory = Callable[..., Any]
ServerProcess = Any
pytestmark = pytest.mark.slow

SEARCH_PAGE = 2
EVALUATION: dict[str, Any] = {
    "subject": {"type": "user", "id": "alice"},
    "action": {"name": "read"},
    "resource": {"type": "doc", "id": "d1"},
}
POLICIES = {
    "allow.cedar": "\n".join(
        f'@id("allow-{name}")\npermit(principal, action == Action::"{name}", resource);'
        for name in ("read", "list", "write", "share")
    )
}
# Loose on purpose: unpatched, the 330k batch stalled ~5 s; on a loaded 2-core machine an
# honest request beside three allowed 1000-item batches once waited 0.49 s.
STALL_BOUND_S = 1.0


@pytest.fixture(scope="module")
def server(
    module_server_factory: ServerFactory,
    estate_writer: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> ServerProcess:
    folder = tmp_path_factory.mktemp("edge")
    estate: Path = estate_writer(folder / "estate", policies=POLICIES)
    return module_server_factory(
        db_url=f"sqlite:///{folder}/tether.db",
        estate=estate,
        env={"TETHER_SEARCH_MAX_PAGE_SIZE": str(SEARCH_PAGE)},
    )


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def nested(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


def evaluation_with_context(context_json: str) -> bytes:
    head = orjson.dumps(EVALUATION)[:-1]
    return head + b',"context":' + context_json.encode() + b"}"


def post_raw(client: httpx.Client, path: str, body: bytes) -> httpx.Response:
    return client.post(path, content=body, headers={"content-type": "application/json"})


def assert_limit(response: httpx.Response, status: int, code: str, setting: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["error_code"] == code
    assert body["limit"]["setting"] == setting
    assert body["limit"]["env"] == f"TETHER_{setting.upper()}"
    assert f"`TETHER_{setting.upper()}`" in body["detail"]
    return body


@pytest.mark.parametrize("levels", [1000, 300, 254, 33])
def test_a_context_nested_deeper_than_the_limit_is_a_400_naming_it(
    client: httpx.Client, levels: int
) -> None:
    response = post_raw(client, "/access/v1/evaluation", evaluation_with_context(nested(levels)))
    body = assert_limit(response, 400, "context_too_deep", "max_json_depth")
    assert body["limit"]["value"] == 32
    assert body["detail"].startswith("`context` is nested deeper than the limit of 32")


def test_a_context_at_the_limit_is_evaluated(client: httpx.Client) -> None:
    # 31 objects inside `context` (level 1): level 32, the limit itself.
    response = post_raw(client, "/access/v1/evaluation", evaluation_with_context(nested(32)))
    assert response.status_code == 200, response.text
    assert response.json()["decision"] is True


def test_deep_properties_and_batch_items_are_refused_by_their_path(client: httpx.Client) -> None:
    deep = orjson.loads(nested(40))
    subject = {**EVALUATION["subject"], "properties": deep}
    response = client.post("/access/v1/evaluation", json={**EVALUATION, "subject": subject})
    body = assert_limit(response, 400, "properties_too_deep", "max_json_depth")
    assert body["detail"].startswith("`subject.properties`")

    items = [{"resource": {"type": "doc", "id": "d2"}}, {"context": deep}]
    response = client.post("/access/v1/evaluations", json={**EVALUATION, "evaluations": items})
    body = assert_limit(response, 400, "context_too_deep", "max_json_depth")
    assert body["detail"].startswith("`evaluations[1].context`")

    search = {**EVALUATION, "context": deep}
    response = client.post("/access/v1/search/action", json=search)
    assert_limit(response, 400, "context_too_deep", "max_json_depth")


def test_a_context_with_too_many_values_is_a_413(client: httpx.Client) -> None:
    context = {"values": list(range(10_000))}  # 10,002 values with the array and the object
    response = client.post("/access/v1/evaluation", json={**EVALUATION, "context": context})
    body = assert_limit(response, 413, "context_too_large", "max_json_values")
    assert body["limit"]["value"] == 10_000


class HonestPep:
    """Evaluates back to back on its own connection; keeps each answer's latency."""

    def __init__(self, server: ServerProcess) -> None:
        self._server = server
        self._stop = threading.Event()
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> HonestPep:
        self._thread.start()
        deadline = time.monotonic() + 10
        while len(self.latencies) < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        self.latencies.clear()  # warmed up: measure from here
        return self

    def __exit__(self, *_: object) -> None:
        time.sleep(0.2)  # answers after the hostile request count too
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        with self._server.client() as client:
            while not self._stop.is_set():
                started = time.perf_counter()
                response = client.post("/access/v1/evaluation", json=EVALUATION)
                self.latencies.append(time.perf_counter() - started)
                if response.status_code != 200 or response.json()["decision"] is not True:
                    self.failures.append(response.text)

    def report(self, what: str) -> float:
        ordered = sorted(self.latencies)
        worst = ordered[-1]
        p99 = ordered[int(len(ordered) * 0.99)]
        print(
            f"\n{what}: honest PEP {len(ordered)} answers, p99 {p99 * 1000:.1f} ms, "
            f"max {worst * 1000:.1f} ms"
        )
        return worst


def test_a_330k_item_batch_is_refused_without_stalling_an_honest_pep(
    server: ServerProcess, client: httpx.Client
) -> None:
    hostile = b'{"evaluations":[' + b",".join([b"{}"] * 330_000) + b"]}"
    assert len(hostile) < 1_000_000  # under the body limit: the item count refuses it
    with HonestPep(server) as honest:
        started = time.perf_counter()
        response = post_raw(client, "/access/v1/evaluations", hostile)
        took = time.perf_counter() - started
    body = assert_limit(response, 413, "too_many_evaluations", "max_evaluations")
    assert "holds 330000 items" in body["detail"]
    assert len(response.content) < 1000
    worst = honest.report(f"330k-item batch refused in {took * 1000:.0f} ms")
    assert not honest.failures
    assert honest.latencies
    assert worst < STALL_BOUND_S


def test_allowed_batches_are_answered_without_stalling_an_honest_pep(
    server: ServerProcess, client: httpx.Client
) -> None:
    items = [
        {"resource": {"type": "doc", "id": f"d{i}"}, "context": {"n": i, "tags": ["a", "b"]}}
        for i in range(1000)
    ]
    batch = {**EVALUATION, "evaluations": items}
    with HonestPep(server) as honest:
        started = time.perf_counter()
        for _ in range(3):
            response = client.post("/access/v1/evaluations", json=batch, timeout=60)
            assert response.status_code == 200, response.text
            answers = response.json()["evaluations"]
            assert len(answers) == 1000
            assert all(answer["decision"] is True for answer in answers)
        took = time.perf_counter() - started
    worst = honest.report(f"3 allowed 1000-item batches in {took * 1000:.0f} ms")
    assert not honest.failures
    assert worst < STALL_BOUND_S


def test_one_item_over_the_batch_limit_is_refused(client: httpx.Client) -> None:
    items = [{"resource": {"type": "doc", "id": f"d{i}"}} for i in range(1001)]
    response = client.post("/access/v1/evaluations", json={**EVALUATION, "evaluations": items})
    body = assert_limit(response, 413, "too_many_evaluations", "max_evaluations")
    assert body["limit"]["value"] == 1000


def test_events_over_the_documented_megabyte_are_a_413(server: ServerProcess) -> None:
    event = {"eventName": "GetObject", "padding": "x" * 1000}
    events = orjson.dumps({"source": "cloudtrail", "events": [event] * 1100})
    assert 1_000_000 < len(events) < 16 * 1024 * 1024
    with server.client("admin") as admin:
        response = admin.post(
            "/v1/events", content=events, headers={"content-type": "application/json"}
        )
        body = assert_limit(response, 413, "payload_too_large", "max_body_bytes")
        assert body["limit"]["value"] == 1_000_000

        def chunks() -> Iterator[bytes]:  # no content-length: counted as it arrives
            for start in range(0, len(events), 64 * 1024):
                yield events[start : start + 64 * 1024]

        streamed = admin.post(
            "/v1/events", content=chunks(), headers={"content-type": "application/json"}
        )
        assert "content-length" not in streamed.request.headers
        assert_limit(streamed, 413, "payload_too_large", "max_body_bytes")
        # Under the limit, the same route still answers.
        small = admin.post("/v1/events", json={"source": "cloudtrail", "events": []})
        assert small.status_code == 200, small.text


def test_a_search_page_is_bounded_whatever_it_asks(client: httpx.Client) -> None:
    body = {
        "subject": EVALUATION["subject"],
        "resource": EVALUATION["resource"],
        "page": {"limit": 1000},
    }
    first = client.post("/access/v1/search/action", json=body)
    assert first.status_code == 200, first.text
    page = first.json()
    assert len(page["results"]) == SEARCH_PAGE
    assert page["page"]["total"] == 4
    assert page["page"]["next_token"]
    rest = client.post(
        "/access/v1/search/action",
        json={**body, "page": {"limit": 1000, "token": page["page"]["next_token"]}},
    )
    names = [r["name"] for r in page["results"] + rest.json()["results"]]
    assert sorted(names) == ["list", "read", "share", "write"]
    assert rest.json()["page"]["next_token"] == ""
