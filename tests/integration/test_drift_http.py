"""Drift over real HTTP and the real CLI, on both backends.

An agent works within its task's intent, then calls out of intent on restricted data: the
live engine (in `tether serve`) stores findings, revokes the task in `enforce` mode, and
`GET /v1/findings` and `tether findings` show them. Exceptions are managed over HTTP and
the CLI, with roles enforced and every change audited.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tether.store.engine import open_engine
from tether.store.tables import audit_log
from token_support import WorkloadKey, exchange_form, task_body, write_estate

pytestmark = pytest.mark.slow

ServerProcess = Any
CliRunner = Callable[..., Any]


@pytest.fixture(scope="module")
def key() -> WorkloadKey:
    return WorkloadKey.generate("wk-drift-http")


@pytest.fixture(scope="module")
def server(
    module_server_factory: Callable[..., Any],
    module_db_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    key: WorkloadKey,
) -> ServerProcess:
    folder = write_estate(tmp_path_factory.mktemp("estate"), key)
    return module_server_factory(db_url=module_db_url, estate=folder)


@pytest.fixture
def pep(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client("pep") as client:
        yield client


def _task_token(server: ServerProcess, key: WorkloadKey) -> tuple[str, str]:
    proof = key.svid()
    headers = {"Authorization": f"Bearer {proof}"}
    with httpx.Client(base_url=server.url, timeout=10, headers=headers) as client:
        opened = client.post("/v1/tasks", json=task_body())
        assert opened.status_code == 201, opened.text
        task_id = opened.json()["task_id"]
        form = exchange_form(proof, task_id=task_id)
        issued = client.post("/oauth2/token", data={k: v[0] for k, v in form.items()})
        assert issued.status_code == 200, issued.text
    return task_id, issued.json()["access_token"]


def _decide(pep: httpx.Client, token: str, action: str, resource: tuple[str, str]) -> Any:
    response = pep.post(
        "/access/v1/evaluation",
        json={
            "subject": {"properties": {"token": token}},
            "action": {"name": action},
            "resource": {"type": resource[0], "id": resource[1]},
        },
    )
    assert response.status_code == 200, response.text
    return response.json()


def _findings(server: ServerProcess, **params: str) -> list[dict[str, Any]]:
    with server.client("auditor") as auditor:
        response = auditor.get("/v1/findings", params=params)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["findings"]
    return found


def test_live_findings_revoke_the_task_and_are_listed(
    server: ServerProcess, pep: httpx.Client, key: WorkloadKey, cli: CliRunner
) -> None:
    task_id, token = _task_token(server, key)
    for i in range(5):
        assert _decide(pep, token, "read_invoice", ("invoice", f"INV-{i}"))["decision"] is True
    for i in range(3):
        _decide(pep, token, "pay_invoice", ("payments", f"acct-{i}"))
    deadline = time.monotonic() + 10
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = [f for f in _findings(server, identity="billing-bot") if f["task_id"] == task_id]
        if any(f["response"] == "revoke" for f in found):
            break
        time.sleep(0.1)
    assert any(f["response"] == "revoke" for f in found), found
    assert all(f["task_id"] == task_id for f in found)
    after = _decide(pep, token, "read_invoice", ("invoice", "INV-1"))
    assert after["decision"] is False
    assert after["context"]["error_code"] in ("task_ended", "token_revoked")
    # Filters and paging.
    high = _findings(server, identity="billing-bot", severity="high")
    assert high
    assert all(f["severity"] in ("high", "critical") for f in high)
    with server.client("auditor") as auditor:
        page = auditor.get("/v1/findings", params={"limit": "1"}).json()
        assert len(page["findings"]) == 1
        second = auditor.get(
            "/v1/findings", params={"limit": "1", "cursor": page["next_cursor"]}
        ).json()
        assert second["findings"][0]["finding_id"] != page["findings"][0]["finding_id"]
        bad = auditor.get("/v1/findings", params={"severity": "dire"})
        assert bad.status_code == 400
        assert bad.json()["error_code"] == "invalid_query"
    assert pep.get("/v1/findings").status_code == 403
    # The same findings from the CLI, on the store directly.
    shown = cli("findings", "--identity", "billing-bot", "--json", "--db", server.db_url)
    assert shown.returncode == 0, shown.stderr
    ids = {f["finding_id"] for f in json.loads(shown.stdout)["findings"]}
    assert {f["finding_id"] for f in found} <= ids


def test_exceptions_over_http_and_cli_with_roles_and_audit(
    server: ServerProcess, cli: CliRunner
) -> None:
    expires = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    body = {
        "identity": "etl",
        "detector": "volume_anomaly",
        "owner": "team-data",
        "justification": "quarter close",
        "expires": expires,
        "resource": "table:*",
    }
    with server.client("auditor") as auditor:
        assert auditor.post("/v1/exceptions", json=body).status_code == 403
    with server.client("admin") as admin:
        missing = admin.post("/v1/exceptions", json={**body, "owner": ""})
        assert missing.status_code == 400
        assert missing.json()["error_code"] == "drift_exception_invalid"
        created = admin.post("/v1/exceptions", json=body)
        assert created.status_code == 201, created.text
        exception_id = created.json()["id"]
        assert created.json()["origin"] == "cli"
    with server.client("auditor") as auditor:
        listed = auditor.get("/v1/exceptions").json()["exceptions"]
    assert listed[0]["id"] == exception_id  # expiring within 14 days: first
    added = cli(
        "exceptions",
        "add",
        "--identity",
        "billing-bot",
        "--detector",
        "novel_access",
        "--owner",
        "team-payments",
        "--justification",
        "new supplier",
        "--expires",
        "60d",
        "--json",
        "--db",
        server.db_url,
    )
    assert added.returncode == 0, added.stderr
    cli_id = json.loads(added.stdout)["id"]
    no_owner = cli(
        "exceptions",
        "add",
        "--identity",
        "etl",
        "--detector",
        "volume_anomaly",
        "--owner",
        " ",
        "--justification",
        "x",
        "--expires",
        "1d",
        "--db",
        server.db_url,
    )
    assert no_owner.returncode == 2
    shown = cli("exceptions", "list", "--json", "--db", server.db_url)
    rows = json.loads(shown.stdout)["exceptions"]
    assert [r["id"] for r in rows[:2]] == [exception_id, cli_id]
    assert rows[0]["expiring_soon"] is True
    assert rows[1]["expiring_soon"] is False
    with server.client("admin") as admin:
        ended = admin.post(f"/v1/exceptions/{exception_id}/expire")
        assert ended.status_code == 200
        assert ended.json()["expired"] is True
        assert admin.post("/v1/exceptions/nope/expire").status_code == 404
    expired = cli("exceptions", "expire", cli_id, "--json", "--db", server.db_url)
    assert expired.returncode == 0, expired.stderr
    engine = open_engine(server.db_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(audit_log.c.action, audit_log.c.target, audit_log.c.actor)
            ).all()
    finally:
        engine.dispose()
    audited = {(a, t) for a, t, _ in rows}
    for target in (exception_id, cli_id):
        assert ("exception.add", target) in audited
        assert ("exception.expire", target) in audited
