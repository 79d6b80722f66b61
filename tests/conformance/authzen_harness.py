"""Shared pieces of the AuthZEN conformance tests: a real server per backend, and checks.

Every conformance module talks HTTP to a real ``tether serve`` subprocess that applied
one of the ``examples/authzen-*`` estates. One server is started per module and
backend (SQLite, PostgreSQL) rather than per test: the vectors are many and a server
takes a second to start. Every call carries real credentials: ``server.client()`` sends
the PEP API key ``start_server`` made with ``tether pep add``'s code (the interop vectors
send it raw in ``Authorization``, as the AuthZEN harness does), and the decision log is
read back through ``/v1/decisions`` as that PEP, which sees the decisions it asked for.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest


def _root_conftest() -> ModuleType:
    """``tests/conftest.py`` as pytest loaded it, found by path.

    pytest imports every ``conftest.py`` under the one module name ``conftest``, so a
    plain ``from conftest import ...`` gets whichever was imported last (one under
    ``tests/unit`` when those are collected first).
    """
    path = Path(__file__).resolve().parent.parent / "conftest.py"
    for module in list(sys.modules.values()):
        if getattr(module, "__file__", None) and Path(module.__file__).resolve() == path:
            return module
    spec = importlib.util.spec_from_file_location("tether_tests_conftest", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


_conftest = _root_conftest()
BACKENDS: list[str] = _conftest.BACKENDS
EXAMPLES: Path = _conftest.EXAMPLES
SHARED_DATA: Path = _conftest.SHARED_DATA
ServerProcess = _conftest.ServerProcess
start_server = _conftest.start_server
fresh_schema_url = _conftest._fresh_schema_url

AUTHZEN_DATA = SHARED_DATA / "authzen"
EVALUATION = "/access/v1/evaluation"
EVALUATIONS = "/access/v1/evaluations"
SEARCH_SUBJECT = "/access/v1/search/subject"
SEARCH_RESOURCE = "/access/v1/search/resource"
SEARCH_ACTION = "/access/v1/search/action"
OUTCOMES = {"allow": True, "constrain": True, "deny": False, "approval_required": False}
_DECISION_ID = re.compile(r"^[0-9a-f]{32}$")

# The Todo interop's five users, by the PID the backend takes from the JWT `sub`.
TODO_PEOPLE = {
    "CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs": "rick",
    "CiRmZDE2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs": "morty",
    "CiRmZDI2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs": "summer",
    "CiRmZDM2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs": "beth",
    "CiRmZDQ2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs": "jerry",
}

BACKEND_PARAMS = [
    pytest.param(name, marks=pytest.mark.postgres) if name == "postgresql" else name
    for name in BACKENDS
]


def load_vectors(name: str) -> Any:
    return json.loads((AUTHZEN_DATA / name).read_text())


def serve_estate(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, estate: str
) -> Iterator[Any]:
    """Start one ``tether serve`` on a fresh store of ``request.param``'s backend."""
    backend = request.param
    tmp: Path = tmp_path_factory.mktemp(f"{estate}-{backend}")
    if backend == "sqlite":
        db_url = f"sqlite:///{tmp}/tether.db"
    else:
        db_url = fresh_schema_url(request.getfixturevalue("postgres_server"))
    server = start_server(tmp, db_url=db_url, estate=EXAMPLES / estate)
    try:
        yield server
    finally:
        server.stop()


def post(
    client: httpx.Client, path: str, body: Any, headers: Mapping[str, str] | None = None
) -> httpx.Response:
    return client.post(path, json=body, headers=dict(headers or {}))


def check_decision(item: Any) -> bool:
    """Check one decision object (§5.5 plus tether's context); return its decision."""
    assert isinstance(item, dict), item
    assert isinstance(item.get("decision"), bool), item
    context = item.get("context")
    assert isinstance(context, dict), item
    assert _DECISION_ID.match(str(context.get("decision_id"))), context
    assert context.get("outcome") in OUTCOMES, context
    assert OUTCOMES[context["outcome"]] is item["decision"], context
    reasons = context.get("reasons")
    assert isinstance(reasons, list), context
    assert reasons, context
    assert all(isinstance(r, str) and r for r in reasons), context
    return bool(item["decision"])


def evaluate(client: httpx.Client, body: Any, path: str = EVALUATION) -> dict[str, Any]:
    """POST one evaluation; check status, media type and structure; return the body."""
    response = post(client, path, body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    answer: dict[str, Any] = response.json()
    check_decision(answer)
    return answer


def evaluate_batch(client: httpx.Client, body: Any) -> list[dict[str, Any]]:
    """POST an Access Evaluations request; check its structure; return the evaluations."""
    response = post(client, EVALUATIONS, body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    assert isinstance(answer.get("evaluations"), list), answer
    items: list[dict[str, Any]] = answer["evaluations"]
    return items


def recorded_decisions(
    client: httpx.Client, decision_ids: set[str], *, timeout: float = 10.0
) -> dict[str, dict[str, Any]]:
    """Wait until every id is in ``GET /v1/decisions`` (the log flushes in batches)."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get("/v1/decisions", params={"limit": 10_000})
        assert response.status_code == 200, response.text
        rows = {row["decision_id"]: row for row in response.json()["decisions"]}
        if decision_ids <= rows.keys() or time.monotonic() > deadline:
            missing = decision_ids - rows.keys()
            assert not missing, f"{len(missing)} decision(s) were never recorded: {missing}"
            return rows
        time.sleep(0.05)
