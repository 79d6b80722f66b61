"""``tether.sdk`` against a real ``tether serve`` (issue 12, part 1), on both backends.

billing-bot (proven by JWT-SVIDs of the test bundle) opens a task, exchanges its proof
for a task token, and calls ``@guarded`` tools through a PEP key that may also ingest:
an allowed call runs; one outside the task's intent is denied and never runs; a
constrained one is cut to ``max_rows``; a payment waits for an approver (through the
approvals API) and the retry passes; once the task ends the next call is refused; what
ran shows in the task's access path. The PEP also authenticates with its own JWT-SVID,
and an unreachable tether refuses the call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tether.callers import Role, add_api_key
from tether.sdk import (
    ApiKey,
    ApprovalPending,
    BearerToken,
    Client,
    DecisionUnavailable,
    FailClosed,
    Subject,
    TokenGrant,
    ToolDenied,
    acting_as,
    guarded,
)
from tether.store.engine import open_engine
from token_support import BILLING, WorkloadKey, write_estate

pytestmark = pytest.mark.slow

ServerFactory = Callable[..., Any]
ServerProcess = Any
SDK_PEP = "spiffe://example.org/peps/sdk"
EXTRA = f"""\
  - id: sdk-pep
    kind: workload
    class: batch
    owner: team-platform
    workload: {SDK_PEP}
    tether_roles: [pep, ingest]
"""
POLICIES = """\
@id("invoices-two-rows")
@outcome("constrain")
@obligations("max_rows=2")
permit (principal == agent::"billing-bot", action == Action::"read_invoice", resource);

@id("payments-need-approval")
@outcome("approval_required")
forbid (principal, action == Action::"pay_invoice", resource);
"""
INVOICES = [{"id": f"INV-{i}", "amount": i * 10} for i in range(5)]


@pytest.fixture(scope="module")
def key() -> WorkloadKey:
    return WorkloadKey.generate("wk-sdk")


@pytest.fixture(scope="module")
def server(
    module_server_factory: ServerFactory,
    module_db_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    key: WorkloadKey,
) -> ServerProcess:
    folder = write_estate(tmp_path_factory.mktemp("estate"), key)
    estate = folder / "estate.yaml"
    estate.write_text(estate.read_text() + EXTRA)  # one more identity in the list
    (folder / "policies" / "sdk.cedar").write_text(POLICIES)
    return module_server_factory(db_url=module_db_url, estate=folder)


@pytest.fixture(scope="module")
def pep_key(server: ServerProcess) -> str:
    """A PEP key that may also report events (pep + ingest), once the server knows it."""
    engine = open_engine(server.db_url)
    try:
        issued = add_api_key(engine, "sdk-agent-pep", roles=(Role.PEP, Role.INGEST), actor="tests")
    finally:
        engine.dispose()
    deadline = time.monotonic() + 5
    headers = {"authorization": f"Bearer {issued.key}"}
    while httpx.get(f"{server.url}/v1/decisions", headers=headers).status_code == 401:
        assert time.monotonic() < deadline, "the new PEP key never authenticated"
        time.sleep(0.05)
    return issued.key


@pytest.fixture
def tether(server: ServerProcess, pep_key: str) -> Iterator[Client]:
    with Client(server.url, credential=ApiKey(pep_key), timeout=10) as client:
        yield client


class Upstream:
    """The tools' real work, counted: a call that never ran leaves no trace here."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def tools(self, client: Client) -> dict[str, Callable[..., Any]]:
        @guarded(client=client, action="read_invoice", resource="invoice:{invoice_id}")
        def read_invoice(invoice_id: str) -> list[dict[str, Any]]:
            self.calls.append(("read_invoice", invoice_id))
            return INVOICES

        @guarded(client=client, action="send_email", resource="email:{to}")
        def send_email(to: str, body: str) -> dict[str, str]:
            self.calls.append(("send_email", to))
            return {"sent": to}

        @guarded(client=client, action="pay_invoice", resource="payments:{payment}")
        def pay_invoice(payment: str, amount: int) -> dict[str, Any]:
            self.calls.append(("pay_invoice", payment))
            return {"paid": payment, "amount": amount}

        return {"read": read_invoice, "send": send_email, "pay": pay_invoice}


PAYMENTS = {"actions": ["pay_invoice"], "resources": ["payments:*"], "data_classes": ["restricted"]}


def task_grant(tether: Client, key: WorkloadKey, **intent: Any) -> TokenGrant:
    task = tether.open_task(
        purpose="pay the March invoices",
        actions=intent.get("actions", ["read_invoice", "send_email"]),
        resources=intent.get("resources", ["invoice:*", "email:*@example.org"]),
        data_classes=intent.get("data_classes", ["confidential", "internal"]),
        ttl="10m",
        proof=key.svid(BILLING),
    )
    grant = tether.exchange(task, proof=key.svid(BILLING))
    assert grant.task_id == task.id
    assert grant.identity == "billing-bot"
    return grant


def test_allowed_denied_and_constrained_calls(
    tether: Client, key: WorkloadKey, server: ServerProcess
) -> None:
    upstream = Upstream()
    tools = upstream.tools(tether)
    grant = task_grant(tether, key)
    with acting_as(grant):
        assert tools["send"]("bob@example.org", "hello") == {"sent": "bob@example.org"}
        assert tools["read"]("INV-1") == INVOICES[:2]  # constrain: max_rows=2
        with pytest.raises(ToolDenied) as denied:
            tools["send"]("mallory@evil.example", "the ledger")
    assert denied.value.error_code == "outside_task_intent"
    assert upstream.calls == [("send_email", "bob@example.org"), ("read_invoice", "INV-1")]

    with server.client("auditor") as auditor:
        path = auditor.get("/v1/paths", params={"identity": "billing-bot", "task": grant.task_id})
    assert path.status_code == 200, path.text
    calls = [n for n in path.json()["nodes"] if n["kind"] == "call"]
    assert sorted(n["tool_name"] for n in calls) == ["read_invoice", "send_email"]
    assert all(n["call_id"].startswith("call_") for n in calls)


def test_an_approval_flow_through_the_approvers_api(
    tether: Client, key: WorkloadKey, server: ServerProcess
) -> None:
    upstream = Upstream()
    pay = upstream.tools(tether)["pay"]
    grant = task_grant(tether, key, **PAYMENTS)
    with acting_as(grant), pytest.raises(ApprovalPending) as pending:
        pay("P-7", 1200)
    assert upstream.calls == []
    ticket = pending.value.ticket
    with server.client("approver") as approver:
        approved = approver.post(f"/v1/approvals/{ticket.id}/approve", json={"comment": "ok"})
    assert approved.status_code == 200, approved.text
    with acting_as(grant):
        assert pay("P-7", 1200) == {"paid": "P-7", "amount": 1200}
        with pytest.raises(ApprovalPending):  # the approval was for one call only
            pay("P-7", 1200)
    assert upstream.calls == [("pay_invoice", "P-7")]


def test_a_guarded_call_waits_for_an_approval_decided_meanwhile(
    tether: Client, key: WorkloadKey, server: ServerProcess
) -> None:
    grant = task_grant(tether, key, **PAYMENTS)
    found: list[str] = []

    def approve_when_asked() -> None:
        with server.client("approver") as approver:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                listed = approver.get("/v1/approvals", params={"status": "pending"}).json()
                mine = [a for a in listed["approvals"] if a["resource"]["id"] == "P-8"]
                if mine:
                    found.append(mine[0]["id"])
                    approver.post(f"/v1/approvals/{mine[0]['id']}/approve")
                    return
                time.sleep(0.05)

    @guarded(client=tether, resource="payments:{payment}", approval_wait_s=15)
    def pay_invoice(payment: str) -> str:
        return f"paid {payment}"

    approver_thread = threading.Thread(target=approve_when_asked)
    approver_thread.start()
    started = time.monotonic()
    with acting_as(grant):
        assert pay_invoice("P-8") == "paid P-8"
    approver_thread.join()
    assert found
    assert time.monotonic() - started < 10


def test_a_peps_request_id_is_kept_with_its_decision(
    tether: Client, key: WorkloadKey, server: ServerProcess, pep_key: str
) -> None:
    grant = task_grant(tether, key)
    decision = tether.evaluate(grant, "read_invoice", "invoice:INV-9", request_id="pep-req-9")
    headers = {"authorization": f"Bearer {pep_key}"}
    kept: dict[str, Any] = {}
    deadline = time.monotonic() + 10  # rows are committed by the worker within ~50 ms
    while decision.decision_id not in kept and time.monotonic() < deadline:
        listed = httpx.get(f"{server.url}/v1/decisions", params={"limit": 20}, headers=headers)
        assert listed.status_code == 200, listed.text
        kept = {d["decision_id"]: d for d in listed.json()["decisions"]}
        time.sleep(0.05)
    assert kept[decision.decision_id]["request_id"] == "pep-req-9"


def test_an_ended_task_refuses_the_next_call(tether: Client, key: WorkloadKey) -> None:
    upstream = Upstream()
    read = upstream.tools(tether)["read"]
    grant = task_grant(tether, key)
    with acting_as(grant):
        assert len(read("INV-1")) == 2
        assert grant.task_id is not None
        ended = tether.end_task(grant.task_id, reason="done", proof=key.svid(BILLING))
        assert ended.status == "ended"
        with pytest.raises(ToolDenied) as denied:
            read("INV-2")
    assert denied.value.error_code == "task_ended"
    assert upstream.calls == [("read_invoice", "INV-1")]


def test_a_pep_authenticates_with_its_own_jwt_svid(server: ServerProcess, key: WorkloadKey) -> None:
    credential = BearerToken(lambda: key.svid(SDK_PEP))
    with Client(server.url, credential=credential) as client:
        decision = client.evaluate(Subject("agent", "billing-bot"), "read_invoice", "invoice:I-1")
        refused = client.evaluate(Subject("agent", "billing-bot"), "drop_table", "table:t")
    assert decision.allowed
    assert decision.obligations == {"max_rows": "2"}
    assert "invoices-two-rows" in decision.reasons
    assert not refused.allowed


def test_an_unreachable_tether_refuses_the_call() -> None:
    ran: list[str] = []
    with Client("http://127.0.0.1:9", timeout=1) as client:

        @guarded(
            client=client,
            resource="invoice:{invoice_id}",
            actor=Subject("agent", "billing-bot"),
            fail_closed=FailClosed(after_ms=200),
        )
        def read_invoice(invoice_id: str) -> str:
            ran.append(invoice_id)
            return invoice_id

        with pytest.raises(DecisionUnavailable) as refused:
            read_invoice("INV-1")
    assert refused.value.error_code == "tether_unreachable"
    assert ran == []


def test_guarded_results_reach_drift_so_destinations_are_judged_by_origin(
    tether: Client, key: WorkloadKey, server: ServerProcess
) -> None:
    from sqlalchemy import select

    from tether.store.drift_tables import findings

    @guarded(client=tether, action="read_invoice", resource="invoice:{invoice_id}")
    def read_contact(invoice_id: str) -> list[dict[str, str]]:  # constrained: max_rows=2
        return [{"invoice": invoice_id, "billing_email": "ann@partner.test"}]

    # The SDK sends a digest of the arguments, never them: the tool names its destination.
    @guarded(
        client=tether,
        action="send_email",
        resource="email:{to}",
        context=lambda to, body: {"args": {"to": to}},
    )
    def send_email(to: str, body: str) -> dict[str, str]:
        return {"sent": to}

    grant = task_grant(tether, key)
    with acting_as(grant):
        read_contact("INV-3")
        # Outside the intent's `email:*@example.org`: refused, and judged by drift.
        for to in ("ann@partner.test", "zed@partner.test"):  # from the invoice; made up
            with pytest.raises(ToolDenied):
                send_email(to, "your invoice")
    engine = open_engine(server.db_url)
    rows: list[Any] = []
    deadline = time.monotonic() + 10
    try:
        while len(rows) < 2 and time.monotonic() < deadline:
            with engine.connect() as connection:
                query = select(findings).where(
                    findings.c.task_id == grant.task_id, findings.c.detector == "out_of_intent"
                )
                rows = list(connection.execute(query.order_by(findings.c.at)))
            time.sleep(0.1)
    finally:
        engine.dispose()
    origins = [[p["origin"] for p in r.details["provenance"]] for r in rows]
    # Without the results, drift had no record to judge these destinations by at all.
    assert origins == [["covered_record"], ["unsourced"]]
    assert rows[0].details["provenance"][0]["tool"] == "read_invoice"
