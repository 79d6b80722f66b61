"""Offboarding over real HTTP (issue 5's acceptance), on both backends.

billing-bot opens two tasks, exchanges its proof for task tokens and delegates one to
helper-bot; then an admin offboards billing-bot. Afterwards every token it held
introspects inactive, it has no open task, a decision with its token (or naming it) is
denied with ``identity_offboarded``, it can neither open a task nor exchange its proof,
and the audit log lists what was revoked. Offboarding from the command line reaches the
running server within its reload interval.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tether.store.engine import open_engine
from tether.store.tables import audit_log
from token_support import BILLING, ETL, HELPER, WorkloadKey, exchange_form, task_body, write_estate

pytestmark = pytest.mark.slow

ServerProcess = Any


@pytest.fixture(scope="module")
def key() -> WorkloadKey:
    return WorkloadKey.generate("wk-1")


@pytest.fixture(scope="module")
def server(
    module_server_factory: Callable[..., Any],
    module_db_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    key: WorkloadKey,
) -> ServerProcess:
    folder = write_estate(tmp_path_factory.mktemp("estate"), key)
    return module_server_factory(db_url=module_db_url, estate=folder)


def as_workload(server: ServerProcess, proof: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, timeout=10, headers={"Authorization": f"Bearer {proof}"}
    )


def open_task(server: ServerProcess, key: WorkloadKey, sub: str = BILLING, **body: Any) -> str:
    with as_workload(server, key.svid(sub)) as client:
        response = client.post("/v1/tasks", json=task_body(**body))
    assert response.status_code == 201, response.text
    return str(response.json()["task_id"])


def exchange(server: ServerProcess, proof: str, form: dict[str, list[str]]) -> httpx.Response:
    with as_workload(server, proof) as client:
        return client.post("/oauth2/token", data={k: v[0] for k, v in form.items()})


def task_token(server: ServerProcess, key: WorkloadKey, task_id: str, sub: str = BILLING) -> str:
    proof = key.svid(sub)
    response = exchange(server, proof, exchange_form(proof, task_id=task_id))
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def decide(pep: httpx.Client, subject: dict[str, Any], action: str, rid: str) -> dict[str, Any]:
    response = pep.post(
        "/access/v1/evaluation",
        json={
            "subject": subject,
            "action": {"name": action},
            "resource": {"type": rid.split(":")[0], "id": rid.split(":", 1)[1]},
        },
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def introspect(pep: httpx.Client, token: str) -> dict[str, Any]:
    response = pep.post("/oauth2/introspect", data={"token": token})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def audit_entries(server: ServerProcess, action: str, target: str) -> list[dict[str, Any]]:
    engine = open_engine(server.db_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(audit_log.c.actor, audit_log.c.details)
                .where(audit_log.c.action == action, audit_log.c.target == target)
                .order_by(audit_log.c.seq)  # chain order: the order they were written
            ).all()
    finally:
        engine.dispose()
    return [{"actor": r.actor, **r.details} for r in rows]


def test_offboarding_leaves_no_active_token_or_task(
    server: ServerProcess, key: WorkloadKey
) -> None:
    first = open_task(server, key)
    second = open_task(server, key, actions=("read_invoice",), resources=("invoice:*",))
    parent = task_token(server, key, first)
    other = task_token(server, key, second)
    helper_proof = key.svid(HELPER)
    delegated = exchange(
        server, helper_proof, exchange_form(parent, actor_token=helper_proof, scope="read_invoice")
    )
    assert delegated.status_code == 200, delegated.text
    child = delegated.json()["access_token"]
    held = [parent, other, child]

    with server.client("pep") as pep:
        allowed = decide(pep, {"properties": {"token": parent}}, "read_invoice", "invoice:INV-1")
        assert allowed["decision"] is True, allowed
        assert all(introspect(pep, t)["active"] is True for t in held)

        with server.client("auditor") as auditor:
            refused = auditor.post("/v1/identities/billing-bot/offboard")
        assert refused.status_code == 403
        assert pep.post("/v1/identities/billing-bot/offboard").status_code == 403

        with server.client("admin") as admin:
            done = admin.post(
                "/v1/identities/billing-bot/offboard", json={"reason": "decommissioned"}
            )
            assert done.status_code == 200, done.text
            answer = done.json()
            assert answer["status"] == "offboarded"
            assert sorted(answer["tasks_ended"]) == sorted([first, second])
            assert len(answer["tokens_revoked"]) == 3
            assert answer["already_offboarded"] is False

            # Every token it held (the delegated child included) introspects inactive.
            for token in held:
                assert introspect(pep, token)["active"] is False
            # No open task is left.
            open_tasks = admin.get(
                "/v1/tasks", params={"identity": "billing-bot", "status": "open"}
            )
            assert open_tasks.status_code == 200
            assert open_tasks.json()["tasks"] == []
            shown = admin.get("/v1/identities/billing-bot").json()
            assert shown["status"] == "offboarded"

            # A decision with its token, or naming it, is denied.
            with_token = decide(
                pep, {"properties": {"token": parent}}, "read_invoice", "invoice:INV-1"
            )
            assert with_token["decision"] is False
            assert with_token["context"]["reasons"] == ["identity_offboarded"]
            named = decide(pep, {"type": "agent", "id": "billing-bot"}, "read_invoice", "invoice:1")
            assert named["decision"] is False
            assert named["context"]["error_code"] == "identity_offboarded"

            # It can neither open a task nor exchange its proof for a token.
            with as_workload(server, key.svid()) as workload:
                again = workload.post("/v1/tasks", json=task_body())
            # Refused at the edge (the caller is disabled) or by the task authority.
            assert again.status_code in (401, 403)
            assert again.json()["error_code"] in ("caller_disabled", "identity_inactive")
            proof = key.svid()
            refused_exchange = exchange(server, proof, exchange_form(proof, task_id=first))
            assert refused_exchange.status_code in (400, 401, 403)
            assert refused_exchange.json()["error_code"] in (
                "caller_disabled",
                "identity_inactive",
                "task_ended",
            )

            # Offboarding again sweeps once more and says so; the evidence is kept.
            repeat = admin.post("/v1/identities/billing-bot/offboard")
            assert repeat.status_code == 200
            assert repeat.json()["already_offboarded"] is True
            assert repeat.json()["tokens_revoked"] == []
            missing = admin.post("/v1/identities/nobody/offboard")
            assert missing.status_code == 404
            assert missing.json()["error_code"] == "identity_not_found"

    entries = audit_entries(server, "identity.offboard", "billing-bot")
    assert len(entries) == 2
    assert entries[0]["actor"].startswith("test-admin-")
    assert entries[0]["reason"] == "decommissioned"
    assert sorted(entries[0]["tokens_revoked"]) == sorted(answer["tokens_revoked"])


def test_offboarding_from_the_cli_reaches_the_running_server(
    server: ServerProcess, key: WorkloadKey, cli: Callable[..., Any]
) -> None:
    task_id = open_task(
        server,
        key,
        sub=ETL,
        actions=("read_table",),
        resources=("table:*",),
        data_classes=("internal",),
    )
    token = task_token(server, key, task_id, sub=ETL)
    with server.client("pep") as pep:
        assert decide(pep, {"properties": {"token": token}}, "read_table", "table:t1")["decision"]
        ran = cli("identity", "offboard", "etl", "--db", server.db_url, cwd=server.log_path.parent)
        assert ran.returncode == 0, ran.stderr
        assert introspect(pep, token)["active"] is False
        deadline = time.monotonic() + 3
        answer: dict[str, Any] = {}
        while time.monotonic() < deadline:
            answer = decide(pep, {"type": "service_account", "id": "etl"}, "read_table", "table:t")
            if answer["context"].get("error_code") == "identity_offboarded":
                break
            time.sleep(0.1)
        assert answer["context"]["error_code"] == "identity_offboarded"


def test_lifecycle_grants_and_metrics_are_read_by_auditors(server: ServerProcess) -> None:
    with server.client("auditor") as auditor, server.client("pep") as pep:
        lifecycle = auditor.get("/v1/lifecycle", params={"stale_days": 30})
        grants = auditor.get("/v1/grants")
        metrics = auditor.get("/v1/metrics", params={"window_days": 30})
        bad = auditor.get("/v1/metrics", params={"window_days": "0"})
        for path in ("/v1/lifecycle", "/v1/grants", "/v1/metrics"):
            assert pep.get(path).status_code == 403
    assert lifecycle.status_code == 200, lifecycle.text
    rows = {r["identity"]: r for r in lifecycle.json()["identities"]}
    assert rows["billing-bot"]["credential"] == "workload_proof"
    assert rows["billing-bot"]["owner"] == "team-payments"
    assert grants.status_code == 200
    assert grants.json()["grants"] == []
    assert metrics.status_code == 200
    body = metrics.json()
    assert body["window_days"] == 30
    assert body["excessive_privilege"]["industry_percent"] == 97.0
    assert body["trend"] == []  # a GET stores no snapshot
    assert bad.status_code == 400
    assert bad.json()["error_code"] == "invalid_query"


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/v1/grants", "window_days"),
        ("/v1/lifecycle", "stale_days"),
        ("/v1/metrics", "last"),
        ("/v1/decisions", "limit"),
        ("/v1/findings", "limit"),
        ("/v1/exceptions", "expiring_within"),
    ],
)
@pytest.mark.parametrize("numeral", ["\u00b9", "\u0661", "9" * 5000])
def test_a_numeral_int_cannot_read_is_a_400_not_a_500(
    server: ServerProcess, path: str, name: str, numeral: str
) -> None:
    # schemathesis found `window_days=¹`: str.isdigit() admits it, int() refuses it (500).
    with server.client("auditor") as auditor:
        answer = auditor.get(path, params={name: numeral})
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
