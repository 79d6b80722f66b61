"""Human approvals over real HTTP (issue 5's first acceptance item), on both backends.

An agent's high-impact request gets ``approval_required`` and a ticket; a ``user`` with
the approver role approves it; the PEP's retry with ``context.approval_id`` is allowed
once and a replay is denied. A user never approves a request it is the subject of, a PEP
reads only its own approvals, an expired approval is refused, and a long-poll returns as
soon as the approval is decided without holding up the server.
"""

from __future__ import annotations

import contextlib
import json
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tether.callers import Role, add_api_key, admin_token
from tether.store.engine import open_engine
from tether.store.tables import audit_log
from tether.tokens import KeyRing, load_or_create_master_key

pytestmark = pytest.mark.slow

ServerFactory = Callable[..., Any]
ServerProcess = Any
CliRunner = Callable[..., Any]

ESTATE = """\
identities:
  - id: billing-bot
    kind: agent
    owner: team-payments
  - id: carol
    kind: user
    tether_roles: [approver]
  - id: dave
    kind: user
    tether_roles: [approver]
"""
POLICIES = """\
@id("pay-invoices")
permit(principal, action == Action::"pay_invoice", resource);

@id("payments-need-approval")
@outcome("approval_required")
forbid(principal, action == Action::"pay_invoice", resource);
"""


def write_estate(folder: Path) -> Path:
    (folder / "policies").mkdir(parents=True, exist_ok=True)
    (folder / "estate.yaml").write_text(textwrap.dedent(ESTATE))
    (folder / "policies" / "approvals.cedar").write_text(POLICIES)
    return folder


def mint(server: ServerProcess, user: str) -> str:
    """An admin token for ``user`` (an approver of the estate), as `tether admin token` does."""
    engine = open_engine(server.db_url)
    try:
        master = load_or_create_master_key(server.log_path.parent / ".tether" / "master.key")
        keys = KeyRing(engine, master)
        return admin_token(engine, keys, user, issuer="tests", roles=[Role.APPROVER]).token
    finally:
        engine.dispose()


def authenticated(server: ServerProcess, token: str) -> httpx.Client:
    """A client calling as ``token``'s caller, once the server knows it (close it after)."""
    client = httpx.Client(
        base_url=server.url, timeout=40, headers={"Authorization": f"Bearer {token}"}
    )
    deadline = time.monotonic() + 5  # the server sees a new caller within its reload interval
    while client.get("/v1/approvals").status_code == 401:
        assert time.monotonic() < deadline, "the new caller never authenticated"
        time.sleep(0.05)
    return client


@pytest.fixture(scope="module")
def server(
    module_server_factory: ServerFactory,
    module_db_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> ServerProcess:
    estate = write_estate(tmp_path_factory.mktemp("estate"))
    return module_server_factory(db_url=module_db_url, estate=estate)


@pytest.fixture(scope="module")
def approvers(server: ServerProcess) -> Iterator[dict[str, httpx.Client]]:
    clients = {user: authenticated(server, mint(server, user)) for user in ("carol", "dave")}
    yield clients
    for client in clients.values():
        client.close()


@pytest.fixture
def pep(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client("pep") as client:
        yield client


def payment(subject: dict[str, str] | None = None, **context: Any) -> dict[str, Any]:
    return {
        "subject": subject or {"type": "agent", "id": "billing-bot"},
        "action": {"name": "pay_invoice"},
        "resource": {"type": "invoice", "id": "INV-7"},
        "context": {"amount": 1200, "currency": "EUR", **context},
    }


def evaluate(pep: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = pep.post("/access/v1/evaluation", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def ask(pep: httpx.Client, **kw: Any) -> str:
    answer = evaluate(pep, payment(**kw))
    assert answer["decision"] is False
    assert answer["context"]["outcome"] == "approval_required"
    ticket = answer["context"]["approval"]
    assert ticket["status"] == "pending"
    assert ticket["poll"] == f"/v1/approvals/{ticket['id']}"
    assert "expires_at" in ticket
    return str(ticket["id"])


def test_pending_approved_by_a_user_then_allowed_once(
    server: ServerProcess, pep: httpx.Client, approvers: dict[str, httpx.Client]
) -> None:
    approval_id = ask(pep, time="2026-01-01T10:00:00Z")
    carol = approvers["carol"]
    listed = carol.get("/v1/approvals", params={"status": "pending"}).json()["approvals"]
    assert approval_id in [a["id"] for a in listed]
    seen = pep.get(f"/v1/approvals/{approval_id}").json()
    assert seen["status"] == "pending"
    assert seen["subject"] == {"type": "agent", "id": "billing-bot"}
    assert seen["request"]["context"] == {"amount": 1200, "currency": "EUR"}

    # Before approval, the retry still waits; a different request never matches.
    early = evaluate(pep, payment(approval_id=approval_id))
    assert early["context"]["outcome"] == "approval_required"
    assert early["context"]["approval"]["id"] == approval_id

    approved = carol.post(
        f"/v1/approvals/{approval_id}/approve", json={"comment": "invoice checked"}
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    assert approved.json()["decided_by"] == "carol"
    again = carol.post(f"/v1/approvals/{approval_id}/deny", json={})
    assert again.status_code == 409
    assert again.json()["error_code"] == "approval_already_decided"

    other = evaluate(pep, payment(approval_id=approval_id, amount=99_000))
    assert other["decision"] is False
    assert other["context"]["error_code"] == "approval_mismatch"

    retry = evaluate(pep, payment(approval_id=approval_id, time="2026-01-01T10:05:00Z"))
    assert retry["decision"] is True, retry
    assert retry["context"]["outcome"] == "allow"
    assert retry["context"]["reasons"] == [f"approval:{approval_id}"]

    replay = evaluate(pep, payment(approval_id=approval_id))
    assert replay["decision"] is False
    assert replay["context"]["outcome"] == "deny"
    assert replay["context"]["error_code"] == "approval_used"
    assert replay["context"]["reasons"] == ["approval_used"]
    assert pep.get(f"/v1/approvals/{approval_id}").json()["status"] == "used"

    engine = open_engine(server.db_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(audit_log).where(audit_log.c.target == approval_id)
            ).all()
    finally:
        engine.dispose()
    assert [(r.actor, r.action, r.details["comment"]) for r in rows] == [
        ("carol", "approval.approve", "invoice checked")
    ]


def test_a_user_never_approves_its_own_request(
    pep: httpx.Client, approvers: dict[str, httpx.Client]
) -> None:
    approval_id = ask(pep, subject={"type": "user", "id": "carol"})
    refused = approvers["carol"].post(f"/v1/approvals/{approval_id}/approve", json={})
    assert refused.status_code == 403, refused.text
    assert refused.json()["error_code"] == "self_approval_forbidden"
    assert "carol" in refused.json()["detail"]
    assert pep.get(f"/v1/approvals/{approval_id}").json()["status"] == "pending"
    # Four eyes: another approver may decide it.
    decided = approvers["dave"].post(f"/v1/approvals/{approval_id}/deny", json={"comment": "no"})
    assert decided.status_code == 200, decided.text
    denied = evaluate(pep, payment({"type": "user", "id": "carol"}, approval_id=approval_id))
    assert denied["decision"] is False
    assert denied["context"]["error_code"] == "approval_denied"


def test_only_approvers_decide_and_a_pep_reads_only_its_own(
    server: ServerProcess, pep: httpx.Client, approvers: dict[str, httpx.Client]
) -> None:
    approval_id = ask(pep)
    forbidden = pep.post(f"/v1/approvals/{approval_id}/approve", json={})
    assert forbidden.status_code == 403
    assert forbidden.json()["error_code"] == "role_forbidden"
    unknown = approvers["carol"].post("/v1/approvals/0123456789abcdef/approve", json={})
    assert unknown.status_code == 404
    assert unknown.json()["error_code"] == "approval_unknown"
    bad = approvers["carol"].post(f"/v1/approvals/{approval_id}/approve", json={"vote": "yes"})
    assert bad.status_code == 400
    assert bad.json()["error_code"] == "approval_request_invalid"

    engine = open_engine(server.db_url)
    try:
        other_key = add_api_key(engine, f"other-pep-{time.monotonic_ns()}").key
    finally:
        engine.dispose()
    other_pep = authenticated(server, other_key)
    with contextlib.closing(other_pep):
        hidden = other_pep.get(f"/v1/approvals/{approval_id}")
        assert hidden.status_code == 404
        assert hidden.json()["error_code"] == "approval_unknown"
        assert other_pep.get("/v1/approvals").status_code == 403
        # Approved for the first PEP: a replay by another PEP does not match.
        approvers["dave"].post(f"/v1/approvals/{approval_id}/approve", json={})
        stolen = evaluate(other_pep, payment(approval_id=approval_id))
        assert stolen["context"]["error_code"] == "approval_mismatch"
    assert evaluate(pep, payment(approval_id=approval_id))["decision"] is True


def test_a_long_poll_returns_as_soon_as_it_is_approved(
    server: ServerProcess, pep: httpx.Client, approvers: dict[str, httpx.Client]
) -> None:
    approval_id = ask(pep)
    answer: dict[str, Any] = {}

    def long_poll() -> None:
        with server.client("pep") as client:
            client.timeout = httpx.Timeout(40)
            started = time.monotonic()
            response = client.get(f"/v1/approvals/{approval_id}", params={"wait": 25})
            answer.update(response.json(), elapsed=time.monotonic() - started)

    waiter = threading.Thread(target=long_poll)
    waiter.start()
    time.sleep(0.5)
    # The server keeps answering while the poll waits (nothing blocks its event loop).
    started = time.monotonic()
    with server.client(None) as anyone:
        assert anyone.get("/healthz").status_code == 200
    assert evaluate(pep, payment(amount=5))["context"]["outcome"] == "approval_required"
    assert time.monotonic() - started < 2
    assert waiter.is_alive()
    approved_at = time.monotonic()
    assert approvers["carol"].post(f"/v1/approvals/{approval_id}/approve").status_code == 200
    waiter.join(timeout=30)
    assert answer["status"] == "approved"
    assert answer["elapsed"] < 10
    assert time.monotonic() - approved_at < 2  # woken by the verdict, not by the timeout

    # With nothing to wait for it answers at once; a pending one waits out its `wait`.
    started = time.monotonic()
    assert pep.get(f"/v1/approvals/{approval_id}", params={"wait": 5}).json()["status"] == (
        "approved"
    )
    assert time.monotonic() - started < 2
    pending = ask(pep, amount=7)
    started = time.monotonic()
    assert pep.get(f"/v1/approvals/{pending}", params={"wait": 1}).json()["status"] == "pending"
    assert 0.9 <= time.monotonic() - started < 5
    too_long = pep.get(f"/v1/approvals/{pending}", params={"wait": 31})
    assert too_long.status_code == 400


def test_the_cli_approves_on_the_store_and_a_long_poll_sees_it(
    server: ServerProcess, pep: httpx.Client, cli: CliRunner
) -> None:
    approval_id = ask(pep, amount=3000)
    listed = cli("approvals", "list", "--status", "pending", "--json", "--db", server.db_url)
    assert listed.returncode == 0, listed.stderr
    assert approval_id in [a["id"] for a in json.loads(listed.stdout)["approvals"]]
    refused = cli(
        "approvals", "approve", approval_id, "--as", "billing-bot", "--json", "--db", server.db_url
    )
    assert refused.returncode == 2
    assert json.loads(refused.stdout)["error"] == "approver_not_user"

    answer: dict[str, Any] = {}

    def long_poll() -> None:
        with server.client("pep") as client:
            client.timeout = httpx.Timeout(40)
            answer.update(client.get(f"/v1/approvals/{approval_id}", params={"wait": 25}).json())

    waiter = threading.Thread(target=long_poll)
    waiter.start()
    approved = cli(
        "approvals",
        "approve",
        approval_id,
        "--as",
        "dave",
        "--comment",
        "cli",
        "--db",
        server.db_url,
    )
    assert approved.returncode == 0, approved.stderr
    waiter.join(timeout=30)
    assert answer["status"] == "approved"
    assert answer["decided_by"] == "dave"
    assert evaluate(pep, payment(amount=3000, approval_id=approval_id))["decision"] is True


def test_an_expired_approval_is_refused(
    server_factory: ServerFactory, db_url: str, tmp_path: Path
) -> None:
    estate = write_estate(tmp_path / "estate")
    short = server_factory(db_url=db_url, estate=estate, env={"TETHER_APPROVAL_TTL_S": "1"})
    carol = authenticated(short, mint(short, "carol"))
    with short.client("pep") as pep, contextlib.closing(carol):
        approval_id = ask(pep)
        time.sleep(1.2)
        assert pep.get(f"/v1/approvals/{approval_id}").json()["status"] == "expired"
        late = carol.post(f"/v1/approvals/{approval_id}/approve", json={})
        assert late.status_code == 409, late.text
        assert late.json()["error_code"] == "approval_expired"
        retry = evaluate(pep, payment(approval_id=approval_id))
        assert retry["decision"] is False
        assert retry["context"]["error_code"] == "approval_expired"
        expired = carol.get("/v1/approvals", params={"status": "expired"}).json()["approvals"]
        assert [a["id"] for a in expired] == [approval_id]
