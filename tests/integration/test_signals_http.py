"""Shared Signals over real HTTP, on both backends: a real ``tether serve`` emits CAEP
``session-revoked`` SETs when tasks end; a PEP polls them (RFC 8936) and real local
receivers get them pushed (RFC 8935), verifying each signature against the server's
published JWKS; a receiver that answers 503 first is retried, one that answers 400 is
recorded as failed. Receivers are configured with the real ``tether signals`` CLI.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select

from signal_support import SetReceiver
from tether.signals import SESSION_REVOKED, remove_receiver
from tether.store.engine import open_engine
from tether.store.tables import audit_log
from token_support import WorkloadKey, task_body, write_estate

pytestmark = pytest.mark.slow

ServerFactory = Callable[..., Any]
ServerProcess = Any
CliRunner = Callable[..., Any]


@pytest.fixture(scope="module")
def workload_key() -> WorkloadKey:
    return WorkloadKey.generate("wk-1")


@pytest.fixture(scope="module")
def server(
    module_server_factory: ServerFactory,
    module_db_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    workload_key: WorkloadKey,
) -> ServerProcess:
    folder = write_estate(tmp_path_factory.mktemp("estate"), workload_key)
    return module_server_factory(db_url=module_db_url, estate=folder)


def jwks_of(server: ServerProcess) -> Callable[[], dict[str, Any]]:
    def fetch() -> dict[str, Any]:
        keys: dict[str, Any] = httpx.get(f"{server.url}/.well-known/jwks.json").json()
        return keys

    return fetch


@pytest.fixture
def receivers(server: ServerProcess) -> Iterator[Callable[..., SetReceiver]]:
    started: list[SetReceiver] = []

    def start(**options: Any) -> SetReceiver:
        receiver = SetReceiver(jwks_of(server), **options)
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.close()


def signals_cli(cli: CliRunner, server: ServerProcess, *args: str) -> Any:
    """``tether signals ...`` on the server's store, with the server's master key."""
    done = cli("signals", *args, "--db", server.db_url, "--json", cwd=server.log_path.parent)
    assert done.returncode == 0, done.stderr + done.stdout
    return json.loads(done.stdout)


def pep_id(server: ServerProcess) -> str:
    return f"test-pep-{urlsplit(server.url).port}"


def end_a_task(server: ServerProcess, key: WorkloadKey) -> str:
    """A workload opens a task (its own proof), an admin ends it: the task id."""
    proof = key.svid()
    with httpx.Client(
        base_url=server.url, timeout=10, headers={"Authorization": f"Bearer {proof}"}
    ) as workload:
        opened = workload.post("/v1/tasks", json=task_body())
    assert opened.status_code == 201, opened.text
    task_id: str = opened.json()["task_id"]
    with server.client("admin") as admin:
        ended = admin.post(f"/v1/tasks/{task_id}/end", json={"reason": "done"})
    assert ended.status_code == 200, ended.text
    return task_id


def verify(token: str, server: ServerProcess) -> dict[str, Any]:
    decoded = jwt.decode(token, KeySet.import_key_set(jwks_of(server)()))
    assert decoded.header["typ"] == "secevent+jwt"
    return dict(decoded.claims)


def test_ssf_configuration_is_public_and_names_the_endpoints(server: ServerProcess) -> None:
    with server.client(None) as anonymous:
        response = anonymous.get("/.well-known/ssf-configuration")
    assert response.status_code == 200
    document = response.json()
    assert document["spec_version"] == "1_0"
    assert document["issuer"] == server.url
    assert document["jwks_uri"] == f"{server.url}/.well-known/jwks.json"
    assert document["delivery_methods_supported"] == ["urn:ietf:rfc:8935", "urn:ietf:rfc:8936"]
    assert "configuration_endpoint" not in document
    assert httpx.get(document["jwks_uri"]).json()["keys"]


def test_poll_needs_a_stream_and_a_pep_or_admin(server: ServerProcess) -> None:
    with server.client(None) as anonymous:
        assert anonymous.post("/ssf/poll", json={}).status_code == 401
    with server.client("auditor") as auditor:
        assert auditor.post("/ssf/poll", json={}).status_code == 403
    with server.client("admin") as admin:
        refused = admin.post("/ssf/poll", json={"returnImmediately": True})
    assert refused.status_code == 404
    assert refused.json()["error_code"] == "stream_not_found"
    with server.client("pep") as pep:
        bad = pep.post("/ssf/poll", json={"maxEvents": -1})
    assert bad.status_code == 400
    assert bad.json()["err"] == "invalid_request"


def test_ended_tasks_are_polled_acknowledged_and_pushed(
    server: ServerProcess,
    cli: CliRunner,
    workload_key: WorkloadKey,
    receivers: Callable[..., SetReceiver],
) -> None:
    stream = signals_cli(cli, server, "receiver", "add", "--poll", pep_id(server))
    good = receivers(token="push-secret")
    flaky = receivers(script=[503])
    refusing = receivers(script=[400])
    added = {
        name: signals_cli(cli, server, "receiver", "add", r.url, *extra)["id"]
        for name, r, extra in (
            ("good", good, ("--token", "push-secret")),
            ("flaky", flaky, ("--events", "session-revoked")),
            ("refusing", refusing, ()),
        )
    }
    task_id = end_a_task(server, workload_key)

    # Push: each receiver verified the signature against the server's JWKS.
    good.wait_for(1)
    flaky.wait_for(1)  # 503 first, then retried with backoff and accepted
    refusing.wait_for(1, accepted=False)
    (pushed,) = good.accepted()
    assert pushed.claims["sub_id"] == {"format": "opaque", "id": task_id}
    assert pushed.claims["txn"] == task_id
    assert pushed.claims["aud"] == good.url
    assert pushed.claims["iss"] == server.url
    assert SESSION_REVOKED in pushed.claims["events"]
    assert pushed.headers["authorization"] == "Bearer push-secret"
    assert [r.status for r in flaky.received] == [503, 202]
    jti = pushed.claims["jti"]

    # Poll: the same event, the PEP's own copy.
    with server.client("pep") as pep:
        first = pep.post("/ssf/poll", json={"returnImmediately": True}).json()
        assert list(first["sets"]) == [jti]
        assert first["moreAvailable"] is False
        claims = verify(first["sets"][jti], server)
        assert claims["aud"] == pep_id(server)
        assert claims["sub_id"] == {"format": "opaque", "id": task_id}
        acked = pep.post("/ssf/poll", json={"returnImmediately": True, "ack": [jti]}).json()
        assert acked == {"sets": {}, "moreAvailable": False}

        # Long poll: waits until the next task ends, then answers with it.
        answers: list[dict[str, Any]] = []
        started = time.monotonic()
        waiter = threading.Thread(
            target=lambda: answers.append(pep.post("/ssf/poll", json={}, timeout=30).json())
        )
        waiter.start()
        time.sleep(0.5)
        second_task = end_a_task(server, workload_key)
        waiter.join(timeout=30)
        assert time.monotonic() - started < 9  # answered by the event, not the time limit
        (answer,) = answers
        (token,) = answer["sets"].values()
        assert verify(token, server)["sub_id"]["id"] == second_task
        assert jti not in answer["sets"]  # acknowledged: never again

    # The list shows every delivery's status by jti, never a token.
    good.wait_for(2)
    time.sleep(0.5)
    listing = signals_cli(cli, server, "list")
    (event,) = [e for e in listing["events"] if e["jti"] == jti]
    by_receiver = {d["receiver"]: d for d in event["deliveries"]}
    assert by_receiver[added["good"]]["status"] == "delivered"
    assert by_receiver[added["flaky"]]["status"] == "delivered"
    assert by_receiver[added["flaky"]]["attempts"] == 2
    assert by_receiver[added["refusing"]]["status"] == "failed"
    assert by_receiver[added["refusing"]]["last_error"] == "http 400 invalid_audience: not for us"
    assert by_receiver[stream["id"]]["status"] == "delivered"
    assert "eyJ" not in json.dumps(listing)
    # A 400 is never retried: the refused SET came once (the next task's SET got a 202).
    assert [r.status for r in refusing.received if r.claims["jti"] == jti] == [400]
    engine = open_engine(server.db_url)
    try:
        for receiver_id in (*added.values(), stream["id"]):
            remove_receiver(engine, receiver_id, actor="tests")
    finally:
        engine.dispose()


def test_receiver_changes_are_in_the_audit_log(server: ServerProcess, cli: CliRunner) -> None:
    added = signals_cli(cli, server, "receiver", "add", "https://rp.example/events")
    signals_cli(cli, server, "receiver", "remove", added["id"])
    engine = open_engine(server.db_url)
    try:
        with engine.connect() as connection:
            actions = connection.execute(
                select(audit_log.c.action).where(audit_log.c.target == added["id"])
            ).scalars()
            assert list(actions) == ["signals.receiver.add", "signals.receiver.remove"]
    finally:
        engine.dispose()


def test_cli_refuses_bad_receivers_with_exit_2(server: ServerProcess, cli: CliRunner) -> None:
    done = cli(
        "signals",
        "receiver",
        "add",
        "ftp://nowhere",
        "--db",
        server.db_url,
        cwd=server.log_path.parent,
    )
    assert done.returncode == 2
    assert "must be an http(s) URL" in done.stderr
