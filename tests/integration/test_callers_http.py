"""tether's callers against a real server: attribution, revocation, rate limits, limits,
the audit trail, the first start, and the refusal to serve in the open without TLS."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from caller_support import SvidSigner, write_caller_estate
from tether.callers import Role, add_api_key, admin_token
from tether.store.engine import open_engine
from tether.store.tables import audit_log
from tether.tokens import KeyRing, load_or_create_master_key

pytestmark = pytest.mark.slow

ServerFactory = Callable[..., Any]
EVALUATION = {
    "subject": {"type": "user", "id": "alice"},
    "action": {"name": "read"},
    "resource": {"type": "doc", "id": "d1"},
}
GATEWAY_SVID = "spiffe://example.org/gateways/pep"
IDENTITIES = f"""\
  - id: gateway
    kind: workload
    workload: {GATEWAY_SVID}
    tether_roles: [pep]
  - id: carol
    kind: user
    tether_roles: [auditor]
"""


def new_key(db_url: str, name: str, roles: tuple[Role, ...] = (Role.PEP,)) -> str:
    engine = open_engine(db_url)
    try:
        return add_api_key(engine, name, roles=roles).key
    finally:
        engine.dispose()


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def audit_rows(db_url: str, action: str) -> list[Any]:
    engine = open_engine(db_url)
    try:
        with engine.connect() as connection:
            query = select(audit_log).where(audit_log.c.action == action)
            return list(connection.execute(query.order_by(audit_log.c.seq)).mappings())
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def signer() -> SvidSigner:
    return SvidSigner.make()


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory, signer: SvidSigner) -> Path:
    return write_caller_estate(tmp_path_factory.mktemp("estate"), signer, IDENTITIES)


@pytest.fixture(scope="module")
def server(module_server_factory: ServerFactory, module_db_url: str, estate: Path) -> Any:
    return module_server_factory(db_url=module_db_url, estate=estate)


@pytest.fixture
def http(server: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


def decide(http: httpx.Client, credential: str) -> str:
    """One decision; a credential made a moment ago may take the reload interval to work."""
    deadline = time.monotonic() + 1.0
    while True:
        response = http.post("/access/v1/evaluation", json=EVALUATION, headers=bearer(credential))
        if response.status_code != 401 or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert response.status_code == 200, response.text
    return str(response.json()["context"]["decision_id"])


def decisions_seen(http: httpx.Client, credential: str, ids: set[str], **params: str) -> set[str]:
    """The decisions of ``ids`` the caller can read, once all of ``ids`` are stored."""
    deadline = time.monotonic() + 5
    while True:
        response = http.get(
            "/v1/decisions", params={"limit": "10000", **params}, headers=bearer(credential)
        )
        assert response.status_code == 200, response.text
        seen = {r["decision_id"] for r in response.json()["decisions"]} & ids
        if seen or time.monotonic() > deadline:
            return seen
        time.sleep(0.05)


def test_a_pep_reads_only_the_decisions_it_asked_for(server: Any, http: httpx.Client) -> None:
    a, b = new_key(server.db_url, "pep-a"), new_key(server.db_url, "pep-b")
    mine, theirs = {decide(http, a), decide(http, a)}, {decide(http, b)}
    auditor = server.credentials["auditor"]
    time.sleep(0.2)  # both are stored by now (flush interval 50 ms)
    assert decisions_seen(http, auditor, mine | theirs) == mine | theirs
    assert decisions_seen(http, a, mine | theirs) == mine
    assert decisions_seen(http, a, mine | theirs, caller="pep-b") == mine  # no peeking
    assert decisions_seen(http, b, mine | theirs) == theirs
    rows = http.get("/v1/decisions", headers=bearer(auditor), params={"caller": "pep-a"}).json()
    assert {r["caller"] for r in rows["decisions"]} == {"pep-a"}


def test_a_jwt_svid_pep_is_attributed(server: Any, http: httpx.Client, signer: SvidSigner) -> None:
    svid = signer.token(GATEWAY_SVID)
    decision = decide(http, svid)
    assert decisions_seen(http, svid, {decision}) == {decision}
    rows = http.get(
        "/v1/decisions", headers=bearer(server.credentials["admin"]), params={"caller": "gateway"}
    ).json()["decisions"]
    assert decision in {r["decision_id"] for r in rows}


def test_a_jwt_svid_for_another_audience_is_refused(
    server: Any, http: httpx.Client, signer: SvidSigner
) -> None:
    svid = signer.token(GATEWAY_SVID, audience="someone-else")
    response = http.post("/access/v1/evaluation", json=EVALUATION, headers=bearer(svid))
    assert response.status_code == 401
    assert response.json()["error_code"] == "audience_mismatch"


def test_a_revoked_key_stops_working_within_a_second(
    server: Any, http: httpx.Client, cli: Any
) -> None:
    key = new_key(server.db_url, "short-lived")
    decide(http, key)
    revoked = cli("pep", "revoke", "short-lived", "--db", server.db_url, "--json")
    assert revoked.returncode == 0, revoked.stderr
    at = time.monotonic()
    while True:
        response = http.post("/access/v1/evaluation", json=EVALUATION, headers=bearer(key))
        if response.status_code == 401:
            break
        assert time.monotonic() - at < 1.0, "a revoked key still works after 1 s"
        time.sleep(0.02)
    assert response.json()["error_code"] == "api_key_invalid"
    listed = json.loads(cli("pep", "list", "--db", server.db_url, "--json").stdout)
    row = next(k for k in listed["keys"] if k["name"] == "short-lived")
    assert row["status"] == "revoked"
    assert "key" not in row
    assert "secret_hash" not in row


def test_an_admin_token_signed_by_a_key_made_after_start_is_accepted(
    server: Any, http: httpx.Client
) -> None:
    engine = open_engine(server.db_url)
    try:
        keys = KeyRing(
            engine, load_or_create_master_key(server.log_path.parent / ".tether/master.key")
        )
        keys.rotate()
        token = admin_token(engine, keys, "late-admin", issuer="tests").token
    finally:
        engine.dispose()
    # A new user (like a new key) is known to the server within its reload interval.
    deadline = time.monotonic() + 1.0
    while (status := http.get("/metrics", headers=bearer(token)).status_code) == 401:
        assert time.monotonic() < deadline, "a new admin's token is refused after 1 s"
        time.sleep(0.02)
    assert status == 200


def test_roles_removed_from_the_estate_are_gone_within_a_second(
    server: Any, http: httpx.Client, estate: Path, signer: SvidSigner, cli: Any
) -> None:
    engine = open_engine(server.db_url)
    try:
        keys = KeyRing(
            engine, load_or_create_master_key(server.log_path.parent / ".tether/master.key")
        )
        token = admin_token(engine, keys, "carol", issuer="tests").token
    finally:
        engine.dispose()
    assert http.get("/v1/identities", headers=bearer(token)).status_code == 200
    demoted = write_caller_estate(
        estate.parent / "demoted", signer, IDENTITIES.replace("tether_roles: [auditor]", "")
    )
    assert cli("apply", str(demoted), "--db", server.db_url).returncode == 0
    at = time.monotonic()
    while http.get("/v1/identities", headers=bearer(token)).status_code != 403:
        assert time.monotonic() - at < 1.0, "a removed role still works after 1 s"
        time.sleep(0.02)
    assert cli("apply", str(estate), "--db", server.db_url).returncode == 0


def test_an_expired_admin_token_is_refused(server: Any, http: httpx.Client) -> None:
    engine = open_engine(server.db_url)
    try:
        keys = KeyRing(
            engine, load_or_create_master_key(server.log_path.parent / ".tether/master.key")
        )
        token = admin_token(engine, keys, server_admin(server), issuer="tests", ttl_s=1).token
    finally:
        engine.dispose()
    time.sleep(1.1)
    response = http.get("/metrics", headers=bearer(token))
    assert response.status_code == 401
    assert response.json()["error_code"] == "admin_token_expired"


def server_admin(server: Any) -> str:
    port = server.url.rsplit(":", 1)[1]
    return f"test-admin-{port}"


def test_a_huge_header_gets_431_and_the_server_carries_on(server: Any, http: httpx.Client) -> None:
    response = http.get("/healthz", headers={"X-Padding": "x" * 100_000})
    assert response.status_code == 431
    assert response.json()["error_code"] == "request_headers_too_large"
    assert http.get("/healthz").status_code == 200


def test_answers_carry_security_headers(server: Any, http: httpx.Client) -> None:
    for response in (
        http.get("/healthz"),
        http.get("/v1/identities"),
        http.post("/access/v1/evaluation", json=EVALUATION, headers=server.auth_header()),
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-store"
        assert "server" not in response.headers


def test_callers_are_inventoried_and_their_actions_audited(
    server: Any, http: httpx.Client, cli: Any
) -> None:
    added = json.loads(cli("pep", "add", "audited", "--db", server.db_url, "--json").stdout)
    key, key_id = added["key"], added["key_id"]
    decide(http, key)
    identity = http.get("/v1/identities/audited", headers=bearer(server.credentials["auditor"]))
    row = identity.json()
    assert (row["kind"], row["origin"], row["attributes"]["static_secret"]) == (
        "api_key",
        "cli",
        True,
    )
    assert row["created_at"]
    [made] = [
        r for r in audit_rows(server.db_url, "caller.api_key.add") if r["target"] == "audited"
    ]
    assert made["details"]["key_id"] == key_id
    assert key not in json.dumps(made["details"])
    issued = audit_rows(server.db_url, "caller.admin_token.issue")
    assert issued
    assert all(set(r["details"]) == {"jti", "roles", "expires_at"} for r in issued)
    deadline = time.monotonic() + 5  # last use is written within a flush or two
    while True:
        listed = json.loads(cli("pep", "list", "--db", server.db_url, "--json").stdout)
        audited = next(k for k in listed["keys"] if k["name"] == "audited")
        if audited["last_used_at"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert audited["last_used_at"]


def test_refused_calls_are_audited_rate_limited_and_never_show_the_secret(
    server: Any, http: httpx.Client
) -> None:
    wrong = "tpk_00112233445566aa_" + "S" * 43
    for _ in range(200):
        response = http.post("/access/v1/evaluation", json=EVALUATION, headers=bearer(wrong))
        assert response.status_code == 401
    time.sleep(1.5)  # the activity writer flushes every second
    rows = [
        r
        for r in audit_rows(server.db_url, "auth.refused")
        if r["details"]["credential"] == "api_key:00112233445566aa"
    ]
    assert 1 <= len(rows) <= 3, f"{len(rows)} rows for one flood"
    assert rows[0]["details"]["code"] == "api_key_invalid"
    assert "S" * 43 not in server.log()
    assert "S" * 43 not in json.dumps([dict(r["details"]) for r in rows])


def test_a_burst_over_the_rate_limit_gets_429_and_others_are_still_answered(
    server_factory: ServerFactory, db_url: str, estate: Path
) -> None:
    limited = server_factory(
        db_url=db_url,
        estate=estate,
        env={"TETHER_RATE_LIMIT_PER_S": "5", "TETHER_RATE_LIMIT_BURST": "10"},
    )
    greedy, patient = new_key(db_url, "greedy"), new_key(db_url, "patient")
    with httpx.Client(base_url=limited.url, timeout=10) as http:
        statuses = [
            http.post("/access/v1/evaluation", json=EVALUATION, headers=bearer(greedy))
            for _ in range(40)
        ]
        codes = [r.status_code for r in statuses]
        assert codes[:10] == [200] * 10, codes
        assert 429 in codes
        refused = next(r for r in statuses if r.status_code == 429)
        assert refused.json()["error_code"] == "rate_limited"
        assert refused.headers["content-type"] == "application/problem+json"
        assert int(refused.headers["retry-after"]) >= 1
        # The greedy caller is still throttled; another caller is answered as usual.
        assert (
            http.post("/access/v1/evaluation", json=EVALUATION, headers=bearer(greedy)).status_code
            == 429
        )
        for _ in range(5):
            answer = http.post("/access/v1/evaluation", json=EVALUATION, headers=bearer(patient))
            assert answer.status_code == 200, answer.text
        assert http.get("/healthz").status_code == 200


def test_serving_in_the_open_without_tls_is_refused(cli: Any, tmp_path: Path) -> None:
    result = cli("serve", "--host", "0.0.0.0", "--db", f"sqlite:///{tmp_path}/t.db")  # noqa: S104
    assert result.returncode == 2
    assert "refusing to serve on non-loopback address `0.0.0.0` without TLS" in result.stderr


def test_the_first_start_prints_a_pep_key_and_an_admin_token_once(
    tmp_path: Path, estate: Path
) -> None:
    prints = []
    for _ in range(2):
        port = free_port()
        log_path = tmp_path / f"serve-{port}.log"
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [
                    *tether_command(),
                    "serve",
                    "--port",
                    str(port),
                    "--db",
                    f"sqlite:///{tmp_path}/t.db",
                    "--estate",
                    str(estate),
                ],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=tmp_path,
                env={**os.environ, "COLUMNS": "200"},
            )
        try:
            deadline = time.monotonic() + 30
            while "listening" not in log_path.read_text():
                assert process.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.1)
            text = log_path.read_text()
            prints.append(text)
            key = re.search(r"tpk_[0-9a-f]{16}_[A-Za-z0-9_-]+", text)
            token = re.search(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", text)
            if key and token:
                base = f"http://127.0.0.1:{port}"
                wait_healthy(base)
                answer = httpx.post(
                    f"{base}/access/v1/evaluation", json=EVALUATION, headers=bearer(key.group())
                )
                assert answer.status_code == 200, answer.text
                metrics = httpx.get(f"{base}/metrics", headers=bearer(token.group()))
                assert metrics.status_code == 200
        finally:
            process.terminate()
            process.wait(timeout=20)
    first, second = prints
    assert "local-pep" in first
    assert "local-admin" in first
    assert "tpk_" not in second
    assert "eyJ" not in second
    assert "tether pep add" in second


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tether_command() -> list[str]:
    exe = shutil.which("tether", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "tether.cli"]


def wait_healthy(base: str) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline
        time.sleep(0.05)
