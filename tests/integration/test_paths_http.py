"""Access paths over real HTTP and the real CLI, on both backends.

billing-bot opens a task over ``POST /v1/tasks``, exchanges its SVID at ``/oauth2/token``
and delegates a narrower token to helper-bot; a PEP decides with both tokens (one request
outside the intent); the agents' tool calls are posted to ``/v1/events``. An auditor then
reads ``GET /v1/paths`` as JSON, Mermaid and DOT, and ``tether paths`` prints the tree.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from token_support import BILLING, HELPER, WorkloadKey, exchange_form, task_body, write_estate

pytestmark = pytest.mark.slow

ServerProcess = Any
CliRunner = Callable[..., subprocess.CompletedProcess[str]]
MAPPING = {
    "at": "at",
    "principal": "agent",
    "action": "action",
    "resource": "resource",
    "tool_name": "tool",
    "call_id": "call",
    "parent_call_id": "parent",
    "task_id": "task",
    "token_id": "token",
}


def token_of(server: ServerProcess, proof: str, form: dict[str, list[str]]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {proof}"}
    with httpx.Client(base_url=server.url, timeout=10, headers=headers) as client:
        response = client.post("/oauth2/token", data={k: v[0] for k, v in form.items()})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def jti_of(token: str) -> str:
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["jti"])


@pytest.fixture(scope="module")
def world(
    module_server_factory: Callable[..., ServerProcess],
    module_db_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    key = WorkloadKey.generate("wk-1")
    server = module_server_factory(
        db_url=module_db_url, estate=write_estate(tmp_path_factory.mktemp("estate"), key)
    )
    with httpx.Client(
        base_url=server.url, timeout=10, headers={"Authorization": f"Bearer {key.svid()}"}
    ) as client:
        opened = client.post("/v1/tasks", json=task_body())
    assert opened.status_code == 201, opened.text
    task_id = opened.json()["task_id"]
    proof = key.svid(BILLING)
    root = token_of(server, proof, exchange_form(proof, task_id=task_id))["access_token"]
    helper = key.svid(HELPER)
    child = token_of(server, helper, exchange_form(root, actor_token=helper, scope="read_invoice"))[
        "access_token"
    ]
    with server.client("pep") as pep:
        for token, action, kind, name in (
            (root, "read_invoice", "invoice", "INV-1"),
            (child, "read_invoice", "invoice", "INV-2"),
            (root, "send_email", "email", "cfo@evil.example"),
        ):
            answer = pep.post(
                "/access/v1/evaluation",
                json={
                    "subject": {"properties": {"token": token}},
                    "action": {"name": action},
                    "resource": {"type": kind, "id": name},
                },
            )
            assert answer.status_code == 200, answer.text
    later = datetime.now(UTC) + timedelta(seconds=2)

    def at(seconds: int) -> str:
        return (later + timedelta(seconds=seconds)).isoformat()

    ids = {"task": task_id, "root": jti_of(root), "child": jti_of(child)}
    calls = [
        {"at": at(3), "agent": BILLING, "action": "send_email", "tool": "mailer",
         "resource": "email:cfo@evil.example", "call": "c3", "parent": "c1",
         "task": task_id, "token": ids["root"]},
        {"at": at(1), "agent": BILLING, "action": "read_invoice", "tool": "fetch",
         "resource": "invoice:INV-1", "call": "c1", "task": task_id, "token": ids["root"]},
        {"at": at(2), "agent": "spiffe://example.org/agents/helper-bot", "tool": "fetch",
         "action": "read_invoice", "resource": "invoice:INV-2", "call": "c2", "parent": "c1",
         "task": task_id, "token": ids["child"]},
    ]  # fmt: skip
    with server.client("admin") as admin:
        posted = admin.post(
            "/v1/events", json={"source": "jsonl", "mapping": MAPPING, "events": calls}
        )
    assert posted.status_code == 200, posted.text
    assert posted.json()["ingested"] == 3
    return {"server": server, **ids}


@pytest.fixture
def auditor(world: dict[str, Any]) -> Iterator[httpx.Client]:
    with world["server"].client("auditor") as client:
        yield client


def test_the_path_shows_delegation_calls_in_order_and_the_outside_steps(
    world: dict[str, Any], auditor: httpx.Client
) -> None:
    response = auditor.get("/v1/paths", params={"identity": "billing-bot"})
    assert response.status_code == 200, response.text
    path = response.json()
    nodes = {n["id"]: n for n in path["nodes"]}
    root, child = nodes[f"token:{world['root']}"], nodes[f"token:{world['child']}"]
    assert root["parent"] == f"task:{world['task']}"
    assert child["parent"] == root["id"]
    assert child["act"] == ["helper-bot"]
    assert {"from": root["id"], "to": child["id"], "relation": "delegated"} in path["edges"]
    assert nodes[f"task:{world['task']}"]["parent"].startswith("proof:")
    calls = [n for n in path["nodes"] if n["kind"] == "call"]
    assert [c["call_id"] for c in calls] == ["c1", "c2", "c3"]
    by_call = {c["call_id"]: c for c in calls}
    assert by_call["c1"]["parent"] == root["id"]
    assert by_call["c2"]["parent"] == by_call["c3"]["parent"] == by_call["c1"]["id"]
    assert by_call["c2"]["identity"] == "helper-bot"
    assert [c["mark"] for c in calls] == ["within_intent", "within_intent", "outside"]
    decisions = [n for n in path["nodes"] if n["kind"] == "decision"]
    assert [(d["action"], d["mark"]) for d in decisions] == [
        ("read_invoice", "within_intent"),
        ("read_invoice", "within_intent"),
        ("send_email", "outside"),
    ]
    delegated = [d for d in decisions if d["token"] == world["child"]]
    assert [d["parent"] for d in delegated] == [child["id"]]
    assert "intent" in decisions[2]["why"]
    assert path["marks"]["outside"] == len(path["outside"]) >= 2


def test_pictures_and_the_task_filter(world: dict[str, Any], auditor: httpx.Client) -> None:
    mermaid = auditor.get("/v1/paths", params={"identity": "billing-bot", "format": "mermaid"})
    assert mermaid.status_code == 200
    assert mermaid.headers["content-type"].startswith("text/vnd.mermaid")
    assert mermaid.text.startswith("flowchart TD\n")
    assert "classDef outside" in mermaid.text
    dot = auditor.get(
        "/v1/paths",
        params={"identity": "helper-bot", "task": world["task"], "format": "dot"},
    )
    assert dot.status_code == 200
    assert dot.headers["content-type"].startswith("text/vnd.graphviz")
    assert dot.text.startswith("digraph access_path {")
    assert dot.text.rstrip().endswith("}")
    assert "color=red" in dot.text  # the task's out-of-intent steps, seen from the sub-agent


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({}, 400, "invalid_query"),
        ({"identity": "billing-bot", "since": "yesterday"}, 400, "invalid_query"),
        (
            {"identity": "billing-bot", "since": "2026-03-02", "until": "2026-03-01"},
            400,
            "invalid_query",
        ),
        ({"identity": "billing-bot", "format": "png"}, 400, "invalid_query"),
        ({"identity": "billing-bot", "limit": "0"}, 400, "invalid_query"),
        ({"identity": "billing-bot", "colour": "red"}, 400, "invalid_query"),
        ({"identity": "nobody"}, 404, "identity_not_found"),
        ({"identity": "billing-bot", "task": "no-such-task"}, 404, "task_not_found"),
    ],
)
def test_bad_requests_are_problems(
    auditor: httpx.Client, params: dict[str, str], status: int, code: str
) -> None:
    response = auditor.get("/v1/paths", params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["error_code"] == code


def test_only_auditors_and_admins_read_paths(world: dict[str, Any]) -> None:
    server = world["server"]
    with server.client("pep") as pep:
        assert pep.get("/v1/paths", params={"identity": "billing-bot"}).status_code == 403
    with server.client(None) as nobody:
        assert nobody.get("/v1/paths", params={"identity": "billing-bot"}).status_code == 401
    with server.client("admin") as admin:
        assert admin.get("/v1/paths", params={"identity": "billing-bot"}).status_code == 200


def test_the_cli_prints_the_tree_and_fails_on_outside_only_when_asked(
    world: dict[str, Any], cli: CliRunner
) -> None:
    server = world["server"]
    folder = server.log_path.parent
    wide = {**os.environ, "COLUMNS": "250"}  # one step per line, whatever the terminal
    tree = cli("paths", "billing-bot", "--db", server.db_url, cwd=folder, env=wide)
    assert tree.returncode == 0, tree.stderr
    assert "✗ outside" in tree.stdout
    assert "delegated to helper-bot" in tree.stdout
    assert "call fetch" in tree.stdout
    failing = cli("paths", "billing-bot", "--fail-on-outside", "--db", server.db_url, cwd=folder)
    assert failing.returncode == 1
    clean = cli(
        "paths", "billing-bot", "--until", "2000-01-01", "--fail-on-outside",
        "--db", server.db_url, cwd=folder,
    )  # fmt: skip
    assert clean.returncode == 0, clean.stderr
    as_json = cli("paths", "billing-bot", "--json", "--db", server.db_url, cwd=folder)
    assert json.loads(as_json.stdout)["identity"] == "billing-bot"
    dot = cli("paths", "billing-bot", "--format", "dot", "--db", server.db_url, cwd=folder)
    assert dot.stdout.startswith("digraph access_path {")
    unknown = cli("paths", "nobody", "--json", "--db", server.db_url, cwd=folder)
    assert unknown.returncode == 2
    assert json.loads(unknown.stdout)["error"] == "identity_not_found"
