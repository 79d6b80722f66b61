"""Issue 6's scenario over real HTTP: drift while it happens, per workload-class mode.

An agent (class `agent`, mode `enforce`) works within its task's intent for a while, then
calls out of intent on restricted data: its task's tokens are revoked, its next decision is
denied, and a CAEP `session-revoked` SET for the task reaches a real local push receiver
(RFC 8935), signed with a key of tether's JWKS. A batch job (class `batch`, mode
`monitor`) doing the same only gets findings: its token keeps working and no SET names its
task.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from signal_support import SetReceiver
from token_support import WorkloadKey, exchange_form, task_body, write_estate

pytestmark = pytest.mark.slow

SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
ETL = "spiffe://example.org/jobs/etl"


def _task_token(server: Any, proof: str, body: dict[str, Any]) -> tuple[str, str]:
    headers = {"Authorization": f"Bearer {proof}"}
    with httpx.Client(base_url=server.url, timeout=10, headers=headers) as client:
        opened = client.post("/v1/tasks", json=body)
        assert opened.status_code == 201, opened.text
        task_id = opened.json()["task_id"]
        form = exchange_form(proof, task_id=task_id)
        issued = client.post("/oauth2/token", data={k: v[0] for k, v in form.items()})
        assert issued.status_code == 200, issued.text
    return task_id, issued.json()["access_token"]


def _decide(pep: httpx.Client, token: str, action: str, resource: tuple[str, str]) -> Any:
    answer = pep.post(
        "/access/v1/evaluation",
        json={
            "subject": {"properties": {"token": token}},
            "action": {"name": action},
            "resource": {"type": resource[0], "id": resource[1]},
        },
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def _findings(server: Any, identity: str, task_id: str) -> list[dict[str, Any]]:
    with server.client("auditor") as auditor:
        found = auditor.get("/v1/findings", params={"identity": identity}).json()["findings"]
    return [f for f in found if f["task_id"] == task_id]


def _revoked_tasks(receiver: SetReceiver) -> set[str]:
    return {
        r.claims.get("txn", "")
        for r in receiver.accepted()
        if r.verified and SESSION_REVOKED in r.claims.get("events", {})
    }


def test_enforce_revokes_and_signals_monitor_only_records(
    server_factory: Callable[..., Any],
    db_url: str,
    tmp_path: Any,
    cli: Callable[..., Any],
) -> None:
    key = WorkloadKey.generate("wk-scenario")
    server = server_factory(db_url=db_url, estate=write_estate(tmp_path / "estate", key))
    receiver = SetReceiver(lambda: httpx.get(f"{server.url}/.well-known/jwks.json").json())
    try:
        added = cli("signals", "receiver", "add", receiver.url, "--db", server.db_url, cwd=tmp_path)
        assert added.returncode == 0, added.stderr
        with server.client("pep") as pep:
            # enforce: within intent for a while, then out of intent on restricted data.
            agent_task, agent_token = _task_token(server, key.svid(), task_body())
            for i in range(5):
                assert _decide(pep, agent_token, "read_invoice", ("invoice", f"I-{i}"))["decision"]
            for i in range(3):
                _decide(pep, agent_token, "pay_invoice", ("payments", f"acct-{i}"))
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and agent_task not in _revoked_tasks(receiver):
                time.sleep(0.1)
            assert agent_task in _revoked_tasks(receiver), receiver.received
            found = _findings(server, "billing-bot", agent_task)
            assert any(f["response"] == "revoke" for f in found), found
            assert any(f["severity"] in ("high", "critical") for f in found), found
            after = _decide(pep, agent_token, "read_invoice", ("invoice", "I-1"))
            assert after["decision"] is False
            with server.client("pep") as introspector:
                state = introspector.post("/oauth2/introspect", data={"token": agent_token})
            assert state.json()["active"] is False

            # monitor: the same kind of excursion by a batch job only records findings.
            batch_body = task_body(
                actions=("read_table",), resources=("table:*",), data_classes=("internal",)
            )
            etl_task, etl_token = _task_token(server, key.svid(ETL), batch_body)
            for i in range(3):
                assert _decide(pep, etl_token, "read_table", ("table", f"t-{i}"))["decision"]
            for i in range(3):
                _decide(pep, etl_token, "read_table", ("payments", f"ledger-{i}"))
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and not _findings(server, "etl", etl_task):
                time.sleep(0.1)
            found = _findings(server, "etl", etl_task)
            assert found
            assert all(f["response"] in (None, "none", "alert") for f in found), found
            assert _decide(pep, etl_token, "read_table", ("table", "t-9"))["decision"] is True
            assert etl_task not in _revoked_tasks(receiver)
    finally:
        receiver.close()
