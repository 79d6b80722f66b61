"""``tether gateway mcp`` end to end: a real MCP client, the gateway in a subprocess on a
real socket, and a real MCP server (``mcp_upstream.py``) that logs every call it gets.

Each test of the ``stack`` runs twice: the gateway deciding in process (``--db``), and
asking a real ``tether serve`` on the same store over HTTP (``--tether URL --key``)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen
from typing import Any, TypeVar

import anyio
import httpx
import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from sqlalchemy import select

from tether.approvals import Verdict
from tether.callers import Role, add_api_key, admin_token
from tether.config import load_settings
from tether.estate import apply_estate
from tether.services import Tether
from tether.store.drift_tables import findings
from tether.store.tables import decisions
from token_support import ISSUER, WorkloadKey, issue, open_task, write_estate

HERE = Path(__file__).parent
TETHER = [sys.executable, "-m", "tether.cli"]
KEY = WorkloadKey.generate("wk-gateway")
ESTATE = """\
classes:
  agent: {mode: enforce, max_task_ttl: 15m, token_ttl: 5m}
trust:
  - spiffe: spiffe://example.org
    jwks_file: bundles/example.org.jwks.json
data_classes: {public: 1, internal: 2, confidential: 3, restricted: 4}
resources:
  - {pattern: "invoice:*", data_class: confidential}
  - {pattern: "email:*", data_class: internal}
identities:
  - id: billing-bot
    kind: agent
    class: agent
    owner: team-payments
    workload: spiffe://example.org/agents/billing-bot
    entitlements:
      - actions: [read_invoice, send_email, list_customers]
        resources: ["invoice:*", "email:*@example.org", "mcp_tool:list_customers"]
      - actions: [pay_invoice]
        resources: ["invoice:*"]
tools:
  read_invoice:
    resource: {argument: invoice_id, type: invoice}
    data_class: confidential
  send_email:
    resource: {argument: to, type: email}
    destinations: {to: email}
  pay_invoice:
    resource: {argument: invoice_id, type: invoice}
    destinations: {iban: iban}
"""
CONSTRAIN = """\
@id("customers-constrained")
@outcome("constrain")
@obligations("max_rows=2; redact=ssn")
permit (principal == agent::"billing-bot", action == Action::"list_customers", resource);

@id("payments-need-approval")
@outcome("approval_required")
permit (principal == agent::"billing-bot", action == Action::"pay_invoice", resource);
"""
INTENT = {
    "actions": ("read_invoice", "send_email", "list_customers"),
    "resources": ("invoice:*", "email:*@example.org", "mcp_tool:list_customers"),
}
#: An MCP session's opening request, written by hand.
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"},
    },
}
_T = TypeVar("_T")


@dataclass
class Stack:
    tether: Tether  # on the gateway's store: opens tasks, mints tokens, ends tasks
    url: str
    upstream_log: Path
    gateway: Popen[bytes]
    caller: str  # who the recorded decisions name as their PEP
    upstream_url: str = ""

    def token(self, **intent: Any) -> tuple[str, str]:
        task = open_task(self.tether.tasks, KEY, **{**INTENT, **intent})
        return str(issue(self.tether.tasks, KEY, task.id).token), task.id

    def upstream_calls(self) -> list[str]:
        return calls_in(self.upstream_log)


def calls_in(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _spawn(command: list[str], log: Path, cwd: Path, env: dict[str, str]) -> Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env)


def _wait(url: str, process: Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: exited with {process.returncode}:\n{log.read_text()}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up:\n{log.read_text()}")


def _stop(process: Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class Store:
    """The gateway's store, with the test estate, and the environment to serve it."""

    tether: Tether
    folder: Path
    db_url: str
    env: dict[str, str]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    folder = tmp_path_factory.mktemp("gateway")
    estate = write_estate(folder / "estate", KEY)
    (estate / "estate.yaml").write_text(ESTATE)
    (estate / "policies" / "guard.cedar").write_text(CONSTRAIN)
    db_url = f"sqlite:///{folder}/tether.db"
    master = folder / ".tether" / "master.key"
    settings = load_settings({}, database_url=db_url, master_key_file=str(master), issuer=ISSUER)
    tether = Tether(settings)
    apply_estate(tether.engine, estate)
    tether.reload()
    admin_token(tether.engine, tether.keys, "carol", issuer="tests", roles=[Role.APPROVER])
    env = {**os.environ, "TETHER_ISSUER": ISSUER, "TETHER_MASTER_KEY_FILE": str(master)}
    yield Store(tether, folder, db_url, env)
    tether.close()


@contextmanager
def serving(
    store: Store, name: str, command: Callable[[int], list[str]], probe: str
) -> Iterator[tuple[str, Popen[bytes]]]:
    """``command(port)`` in the store's folder, until the context ends: its base URL
    (once ``probe`` answers) and its process."""
    port = free_port()
    out = store.folder / f"{name}.out"
    process = _spawn(command(port), out, store.folder, store.env)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait(base + probe, process, out)
        yield base, process
    finally:
        _stop(process)


@contextmanager
def upstream_server(store: Store, name: str) -> Iterator[tuple[str, Path, Popen[bytes]]]:
    """``mcp_upstream.py`` on streamable HTTP: its URL, its call log, its process."""
    calls = store.folder / f"{name}-calls.log"

    def command(port: int) -> list[str]:
        return [sys.executable, str(HERE / "mcp_upstream.py"), str(port), str(calls)]

    with serving(store, name, command, "/mcp") as (base, process):
        yield f"{base}/mcp", calls, process


@contextmanager
def tether_server(store: Store, name: str) -> Iterator[tuple[str, Popen[bytes]]]:
    """``tether serve`` on the gateway's store: its URL and process."""

    def command(port: int) -> list[str]:
        return [*TETHER, "serve", "--port", str(port), "--db", store.db_url]

    with serving(store, name, command, "/healthz") as served:
        yield served


@contextmanager
def gateway_server(
    store: Store, name: str, *upstream: str, decider: list[str] | None = None
) -> Iterator[tuple[str, Popen[bytes]]]:
    """``tether gateway mcp`` in front of ``upstream`` (its options): its MCP URL. It
    decides in process on the store unless ``decider`` says otherwise (``--tether``)."""

    def command(port: int) -> list[str]:
        listen = ["--listen", f"127.0.0.1:{port}", "--max-body", "100000"]
        return [*TETHER, "gateway", "mcp", *upstream, *listen, *(decider or ["--db", store.db_url])]

    with serving(store, name, command, "/.well-known/oauth-protected-resource") as (base, gw):
        yield f"{base}/mcp", gw


@contextmanager
def remote_gateway(
    store: Store, name: str, *upstream: str
) -> Iterator[tuple[str, Popen[bytes], Popen[bytes]]]:
    """A gateway asking its own ``tether serve`` as a PEP: MCP URL, gateway, server."""
    key = add_api_key(store.tether.engine, f"{name}-pep").key
    with (
        tether_server(store, f"{name}-tether") as (tether_url, server),
        gateway_server(store, name, *upstream, decider=["--tether", tether_url, "--key", key]) as (
            url,
            gateway,
        ),
    ):
        yield url, gateway, server


@pytest.fixture(scope="module", params=["in-process", "remote"])
def stack(store: Store, request: pytest.FixtureRequest) -> Iterator[Stack]:
    with upstream_server(store, f"upstream-{request.param}") as (upstream_url, calls, _):
        if request.param == "in-process":
            with gateway_server(store, "gateway", "--upstream", upstream_url) as (url, gateway):
                yield Stack(store.tether, url, calls, gateway, "gateway:mcp", upstream_url)
        else:
            with remote_gateway(store, "gateway-remote", "--upstream", upstream_url) as (
                url,
                gateway,
                _,
            ):
                yield Stack(store.tether, url, calls, gateway, "gateway-remote-pep", upstream_url)


def run(
    stack: Stack | str, token: str | None, work: Callable[[ClientSession], Awaitable[_T]]
) -> _T:
    """``work`` in one MCP session through the gateway (a stack or an MCP URL), as the
    holder of ``token``."""
    url = stack if isinstance(stack, str) else stack.url

    async def session() -> _T:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=10) as http,
            streamable_http_client(url, http_client=http) as (read, write),
            ClientSession(read, write) as mcp,
        ):
            await mcp.initialize()
            return await work(mcp)

    return anyio.run(session)


def test_an_entitled_call_returns_the_upstream_result(stack: Stack) -> None:
    token, task_id = stack.token()

    async def work(mcp: ClientSession) -> Any:
        return await mcp.call_tool("read_invoice", {"invoice_id": "INV-1"})

    result = run(stack, token, work)

    assert not result.is_error
    assert result.structured_content["id"] == "INV-1"
    assert 'read_invoice {"invoice_id": "INV-1"}' in stack.upstream_calls()
    # The call is a decision event in the store, with its task: drift and paths see it.
    deadline = time.monotonic() + 2
    rows: list[Any] = []
    while not rows and time.monotonic() < deadline:
        with stack.tether.engine.connect() as connection:
            rows = list(
                connection.execute(
                    select(decisions).where(
                        decisions.c.caller == stack.caller, decisions.c.action == "read_invoice"
                    )
                )
            )
        time.sleep(0.05)
    assert [r.context["tether"]["task_id"] for r in rows] == [task_id]
    assert rows[0].resource_id == "INV-1"


def test_out_of_entitlement_and_outside_intent_never_reach_the_upstream(stack: Stack) -> None:
    before = stack.upstream_calls()

    def refused(name: str, arguments: dict[str, Any]) -> MCPError:
        # Each in a task of its own: in this enforce class, live drift may end a task
        # after its first refusal, and the next call would then be `task_ended`.
        token, _ = stack.token()

        async def work(mcp: ClientSession) -> MCPError:
            with pytest.raises(MCPError) as caught:
                await mcp.call_tool(name, arguments)
            return caught.value

        return run(stack, token, work)

    scope = refused("pay_invoice", {"invoice_id": "INV-1", "iban": "XX99"})  # not in the task
    intent = refused("send_email", {"to": "boss@evil.test", "body": "invoices"})  # undeclared
    missing = refused("read_invoice", {})  # the resource argument is missing

    assert scope.code == -32010
    assert scope.data["error_code"] == "token_scope_exceeded"
    assert scope.data["outcome"] == "deny"
    assert scope.data["decision_id"]
    assert "tether refused `pay_invoice`" in scope.message
    assert intent.data["error_code"] == "outside_task_intent"
    assert missing.data["error_code"] == "tool_argument_missing"
    assert stack.upstream_calls() == before


def test_tools_list_shows_what_the_identity_may_call(stack: Stack) -> None:
    token, _ = stack.token(actions=("read_invoice",), resources=("invoice:*",))

    async def work(mcp: ClientSession) -> list[str]:
        return [tool.name for tool in (await mcp.list_tools()).tools]

    assert run(stack, token, work) == ["read_invoice"]


def test_constrain_obligations_are_applied_to_the_result(stack: Stack) -> None:
    token, _ = stack.token()

    async def work(mcp: ClientSession) -> Any:
        return await mcp.call_tool("list_customers", {"count": 5})

    result = run(stack, token, work)

    rows = result.structured_content["result"]
    assert rows == [
        {"name": "customer-0", "ssn": "[redacted]"},
        {"name": "customer-1", "ssn": "[redacted]"},
    ]
    assert "000-" not in json.dumps([c.model_dump() for c in result.content])
    assert result.meta["tether/obligations"] == {"max_rows": "2", "redact": "ssn"}
    assert 'list_customers {"count": 5}' in stack.upstream_calls()


def test_an_approved_retry_passes_once(stack: Stack) -> None:
    token, _ = stack.token(actions=("pay_invoice",), resources=("invoice:*",))
    pay = {"invoice_id": "INV-9", "iban": "DE00123"}

    async def ask(mcp: ClientSession) -> MCPError:
        with pytest.raises(MCPError) as caught:
            await mcp.call_tool("pay_invoice", pay)
        return caught.value

    pending = run(stack, token, ask)
    assert pending.code == -32011
    assert pending.data["outcome"] == "approval_required"
    approval_id = pending.data["approval"]["id"]
    assert f"ticket `{approval_id}`" in pending.message
    assert not any("INV-9" in line for line in stack.upstream_calls())

    stack.tether.approvals.decide(approval_id, Verdict.APPROVE, approver_id="carol")

    async def retry(mcp: ClientSession) -> tuple[Any, MCPError]:
        meta = {"tether/approval_id": approval_id}
        passed = await mcp.call_tool("pay_invoice", pay, meta=meta)  # type: ignore[arg-type]
        with pytest.raises(MCPError) as caught:
            await mcp.call_tool("pay_invoice", pay, meta=meta)  # type: ignore[arg-type]
        return passed, caught.value

    passed, again = run(stack, token, retry)
    assert not passed.is_error
    assert again.data["error_code"] == "approval_used"
    assert [line for line in stack.upstream_calls() if "INV-9" in line] == [
        'pay_invoice {"iban": "DE00123", "invoice_id": "INV-9"}'
    ]


def test_no_or_a_bad_token_gets_401_with_the_resource_metadata(stack: Stack) -> None:
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
    headers = {"Accept": "application/json, text/event-stream"}
    for auth in ({}, {"Authorization": "Bearer not-a-token"}):
        answer = httpx.post(stack.url, json=initialize, headers={**headers, **auth}, timeout=5)
        assert answer.status_code == 401
        challenge = answer.headers["www-authenticate"]
        assert challenge.startswith("Bearer ")
        assert 'resource_metadata="http://127.0.0.1:' in challenge
    metadata_url = challenge.split('resource_metadata="')[1].split('"')[0]
    for url in (
        metadata_url,
        stack.url.removesuffix("/mcp") + "/.well-known/oauth-protected-resource",
    ):
        document = httpx.get(url, timeout=5).json()
        assert document["resource"] == stack.url
        assert document["authorization_servers"] == [ISSUER]


def test_ending_the_task_refuses_the_next_call_at_once(stack: Stack) -> None:
    token, task_id = stack.token()

    async def work(mcp: ClientSession) -> tuple[bool, float, MCPError]:
        first = await mcp.call_tool("read_invoice", {"invoice_id": "INV-2"})
        await anyio.to_thread.run_sync(lambda: stack.tether.tasks.end_task(task_id, actor="test"))
        ended = time.monotonic()
        with pytest.raises(MCPError) as caught:
            await mcp.call_tool("read_invoice", {"invoice_id": "INV-3"})
        return bool(first.is_error), time.monotonic() - ended, caught.value

    first_failed, elapsed, refused = run(stack, token, work)

    assert not first_failed
    assert elapsed < 1
    assert refused.data["error_code"] == "task_ended"
    assert not any("INV-3" in line for line in stack.upstream_calls())


def test_bad_json_rpc_gets_errors_and_the_gateway_keeps_serving(stack: Stack) -> None:
    token, _ = stack.token()
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
    }
    malformed = httpx.post(stack.url, content=b"{not json", headers=headers, timeout=5)
    assert malformed.status_code == 400
    assert malformed.json()["error"]["code"] == -32700  # parse error
    oversized = httpx.post(
        stack.url, content=b"[" + b" " * 200_000 + b"]", headers=headers, timeout=5
    )
    assert oversized.status_code == 413

    opened = httpx.post(stack.url, json=INITIALIZE, headers=headers, timeout=5)
    assert opened.status_code == 200, opened.text
    session = {**headers, "Mcp-Session-Id": opened.headers["mcp-session-id"]}
    httpx.post(
        stack.url,
        json={"jsonrpc": "2.0", "method": "notifications/initialized"},
        headers=session,
        timeout=5,
    )
    unknown = httpx.post(
        stack.url,
        json={"jsonrpc": "2.0", "id": 2, "method": "no/such_method", "params": {}},
        headers=session,
        timeout=5,
    )
    assert _message(unknown)["error"]["code"] == -32601  # method not found

    async def work(mcp: ClientSession) -> Any:
        return await mcp.call_tool("read_invoice", {"invoice_id": "INV-4"})

    assert not run(stack, token, work).is_error  # other sessions are served as before
    assert stack.gateway.poll() is None


def _message(answer: httpx.Response) -> dict[str, Any]:
    """The JSON-RPC message of an answer in JSON or as a server-sent event."""
    if answer.headers["content-type"].startswith("application/json"):
        parsed: dict[str, Any] = answer.json()
        return parsed
    data = [line[5:] for line in answer.text.splitlines() if line.startswith("data:")]
    parsed = json.loads(data[-1])
    return parsed


def test_resources_read_is_decided_too(stack: Stack) -> None:
    token, _ = stack.token()

    async def work(mcp: ClientSession) -> MCPError:
        with pytest.raises(MCPError) as caught:
            await mcp.read_resource("invoice://INV-1")  # type: ignore[arg-type]
        return caught.value

    refused = run(stack, token, work)
    assert refused.data["error_code"] == "token_scope_exceeded"
    assert "tether refused `resources/read`" in refused.message
    assert not any("invoice_document" in line for line in stack.upstream_calls())


def test_a_stdio_upstream_is_governed_the_same(store: Store) -> None:
    calls = store.folder / "stdio-calls.log"
    command = f"{sys.executable} {HERE / 'mcp_upstream.py'} stdio {calls}"
    task = open_task(store.tether.tasks, KEY, **INTENT)
    token = str(issue(store.tether.tasks, KEY, task.id).token)

    async def work(mcp: ClientSession) -> tuple[Any, MCPError]:
        passed = await mcp.call_tool("read_invoice", {"invoice_id": "INV-5"})
        with pytest.raises(MCPError) as caught:
            await mcp.call_tool("pay_invoice", {"invoice_id": "INV-5", "iban": "X"})
        return passed, caught.value

    with gateway_server(store, "stdio-gateway", "--upstream-cmd", command) as (url, _):
        passed, refused = run(url, token, work)

    assert passed.structured_content["id"] == "INV-5"
    assert refused.data["error_code"] == "token_scope_exceeded"
    assert calls_in(calls) == ['read_invoice {"invoice_id": "INV-5"}']


def test_a_dropped_upstream_is_a_clear_error_and_the_gateway_lives_on(store: Store) -> None:
    task = open_task(store.tether.tasks, KEY, **INTENT)
    token = str(issue(store.tether.tasks, KEY, task.id).token)

    async def work(mcp: ClientSession) -> MCPError:
        with pytest.raises(MCPError) as caught:
            await mcp.call_tool("read_invoice", {"invoice_id": "INV-6"})
        return caught.value

    with (
        upstream_server(store, "dropped") as (upstream_url, _, upstream),
        gateway_server(store, "dropped-gateway", "--upstream", upstream_url) as (url, gateway),
    ):
        _stop(upstream)
        failed = run(url, token, work)
        again = run(url, token, work)  # a new session: the gateway still serves MCP
        assert gateway.poll() is None
        assert httpx.get(
            url.removesuffix("/mcp") + "/.well-known/oauth-protected-resource"
        ).is_success

    for error in (failed, again):
        assert error.code == -32012
        assert f"the upstream MCP server `{upstream_url}` did not answer" in error.message


def test_a_remote_gateway_fails_closed_when_tether_goes_away(store: Store) -> None:
    task = open_task(store.tether.tasks, KEY, **INTENT)
    token = str(issue(store.tether.tasks, KEY, task.id).token)
    fresh = str(issue(store.tether.tasks, KEY, task.id).token)

    with (
        upstream_server(store, "orphaned-upstream") as (upstream_url, calls, _),
        remote_gateway(store, "orphaned", "--upstream", upstream_url) as (url, gateway, server),
    ):

        async def work(mcp: ClientSession) -> tuple[Any, MCPError, MCPError]:
            passed = await mcp.call_tool("read_invoice", {"invoice_id": "INV-7"})
            await anyio.to_thread.run_sync(_stop, server)
            with pytest.raises(MCPError) as refused:
                await mcp.call_tool("read_invoice", {"invoice_id": "INV-8"})
            with pytest.raises(MCPError) as listing:
                await mcp.list_tools()
            return passed, refused.value, listing.value

        passed, refused, listing = run(url, token, work)
        initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
        unchecked = httpx.post(
            url,
            json=initialize,
            headers={
                "Authorization": f"Bearer {fresh}",
                "Accept": "application/json, text/event-stream",
            },
            timeout=10,
        )
        assert gateway.poll() is None

    assert not passed.is_error
    assert refused.data["error_code"] == "tether_unreachable"
    assert listing.code == -32013
    assert "tether did not say which tools may be called" in listing.message
    assert unchecked.status_code == 503
    assert unchecked.json()["error"] == "temporarily_unavailable"
    assert calls_in(calls) == ['read_invoice {"invoice_id": "INV-7"}']


@pytest.mark.parametrize(
    ("options", "exit_code", "message"),
    [
        (["--tether", "http://127.0.0.1:9"], 2, "--tether needs the gateway's PEP key"),
        (["--tether", "http://127.0.0.1:9", "--key", "nope"], 2, "--key must be a PEP API key"),
        (["--tether", "http://127.0.0.1:9", "--db", "sqlite:///x.db"], 2, "not both"),
        (
            ["--tether", "http://127.0.0.1:9", "--key", "tpk_0123456789abcdef_" + "A" * 43],
            3,
            "tether at http://127.0.0.1:9 cannot be reached",
        ),
    ],
    ids=["no-key", "bad-key", "both", "unreachable"],
)
def test_remote_mode_option_errors_are_named(
    store: Store, options: list[str], exit_code: int, message: str
) -> None:
    env = {k: v for k, v in store.env.items() if k != "TETHER_PEP_KEY"}
    command = [*TETHER, "gateway", "mcp", "--listen", "127.0.0.1:1"]
    done = subprocess.run(
        [*command, "--upstream", "http://127.0.0.1:9/mcp", *options],
        capture_output=True,
        text=True,
        env=env,
        cwd=store.folder,
        timeout=60,
    )
    assert done.returncode == exit_code, done.stderr
    assert message in " ".join(done.stderr.split())


def test_a_key_tether_refuses_stops_the_gateway_at_start(store: Store) -> None:
    # Without the check every call would fail closed (503) for as long as it ran.
    with tether_server(store, "refused-key") as (url, _server):
        env = {k: v for k, v in store.env.items() if k != "TETHER_PEP_KEY"}
        done = subprocess.run(
            [
                *TETHER,
                "gateway",
                "mcp",
                "--listen",
                "127.0.0.1:1",
                "--upstream",
                "http://127.0.0.1:9/mcp",
                "--tether",
                url,
                "--key",
                "tpk_0123456789abcdef_" + "A" * 43,
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=store.folder,
            timeout=60,
        )
    assert done.returncode == 2, done.stderr
    assert f"tether at {url} refused the PEP key (api_key_invalid)" in " ".join(done.stderr.split())


def _findings(stack: Stack, task_id: str, count: int, wait_s: float = 5.0) -> list[Any]:
    """The task's drift findings, once ``count`` are stored (live drift runs beside)."""
    deadline = time.monotonic() + wait_s
    rows: list[Any] = []
    while len(rows) < count and time.monotonic() < deadline:
        with stack.tether.engine.connect() as connection:
            rows = list(
                connection.execute(
                    select(findings)
                    .where(findings.c.task_id == task_id, findings.c.detector == "out_of_intent")
                    .order_by(findings.c.at)
                )
            )
        time.sleep(0.05)
    return rows


def _pay_from_the_invoice(stack: Stack) -> str:
    """Read an invoice, then pay it to the account it gives (a field of a covered result)
    and to one found nowhere: the task's id."""
    token, task_id = stack.token(actions=("read_invoice", "pay_invoice"), resources=("invoice:*",))

    async def work(mcp: ClientSession) -> None:
        await mcp.call_tool("read_invoice", {"invoice_id": "INV-1"})
        for iban in ("DE00123", "XX99000"):
            with pytest.raises(MCPError):  # payments need approval: refused, still judged
                await mcp.call_tool("pay_invoice", {"invoice_id": "INV-1", "iban": iban})

    run(stack, token, work)
    return task_id


def _verdicts(rows: list[Any]) -> list[tuple[Any, ...]]:
    """What drift said of each call: all but the ids of the decisions."""
    return [
        (
            r.detector,
            r.severity,
            r.score,
            re.sub(r"decision:\w+", "decision:*", r.reason),
            [(p["value"], p["origin"], p.get("tool")) for p in r.details["provenance"]],
        )
        for r in rows
    ]


def test_a_destination_is_judged_by_where_the_call_results_put_it(
    stack: Stack, store: Store
) -> None:
    # Each result goes to live drift: in process directly, from a remote gateway over
    # `POST /v1/results` (before the task's next decision).
    task_id = _pay_from_the_invoice(stack)
    first, second = _findings(stack, task_id, 2)
    if stack.caller != "gateway:mcp":  # the same run through an in-process gateway beside
        with gateway_server(store, "beside", "--upstream", stack.upstream_url) as (url, gw):
            beside = Stack(store.tether, url, stack.upstream_log, gw, "gateway:mcp")
            in_process = _findings(beside, _pay_from_the_invoice(beside), 2)
        assert _verdicts([first, second]) == _verdicts(in_process)
    (on_invoice,) = first.details["provenance"]
    (made_up,) = second.details["provenance"]
    assert on_invoice["origin"] == "covered_record"
    assert on_invoice["tool"] == "read_invoice"
    assert on_invoice["introduced_by"].startswith("decision:")
    assert made_up["origin"] == "unsourced"
    assert first.score < second.score


def _raw_session(stack: Stack, token: str) -> dict[str, str]:
    """A session opened by hand: the headers of its later requests."""
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
    }
    opened = httpx.post(stack.url, json=INITIALIZE, headers=headers, timeout=5)
    assert opened.status_code == 200, opened.text
    session = {**headers, "Mcp-Session-Id": opened.headers["mcp-session-id"]}
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert httpx.post(stack.url, json=initialized, headers=session, timeout=5).status_code == 202
    return session


def _without_ids(value: Any) -> Any:
    """``value`` with decision ids masked (each call is a decision of its own)."""
    masked = re.sub(r'"((?:tether/)?decision_id)": "\w+"', r'"\1": "*"', json.dumps(value))
    return json.loads(masked)


def test_a_tool_call_is_answered_the_same_with_and_without_the_version_header(
    stack: Stack,
) -> None:
    # With `MCP-Protocol-Version` the gateway answers `tools/call` in front of the SDK's
    # transport; without it the SDK's own server does: the answers must not differ.
    calls = [
        ("list_customers", {"count": 5}),  # constrained: rows cut, a field redacted
        ("read_invoice", {"invoice_id": "INV-11"}),
        ("pay_invoice", {"invoice_id": "INV-11", "iban": "X"}),  # refused: not in the task
        ("read_invoice", {}),  # refused: the resource argument is missing
    ]
    for number, (name, arguments) in enumerate(calls, start=1):
        call = {
            "jsonrpc": "2.0",
            "id": number,
            "method": "tools/call",
            "params": {"name": name, "arguments": arguments},
        }
        # Each in a task of its own: live drift may end a task after its first refusal.
        sessions = [_raw_session(stack, stack.token()[0]) for _ in range(2)]
        sessions[1]["MCP-Protocol-Version"] = "2025-06-18"
        answers = [
            httpx.post(stack.url, json=call, headers=headers, timeout=10) for headers in sessions
        ]
        assert [a.status_code for a in answers] == [200, 200]
        assert [a.headers["mcp-session-id"] for a in answers] == [
            headers["Mcp-Session-Id"] for headers in sessions
        ]
        sdk, shortcut = (_without_ids(a.json()) for a in answers)
        assert shortcut == sdk
        assert shortcut["id"] == number
    assert [line for line in stack.upstream_calls() if "INV-11" in line] == [
        'read_invoice {"invoice_id": "INV-11"}'
    ] * 2


def test_a_deleted_session_answers_not_found_and_calls_nothing(stack: Stack) -> None:
    token, _ = stack.token()
    session = {**_raw_session(stack, token), "MCP-Protocol-Version": "2025-06-18"}
    call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "read_invoice", "arguments": {"invoice_id": "INV-12"}},
    }
    assert "result" in httpx.post(stack.url, json=call, headers=session, timeout=10).json()
    assert httpx.delete(stack.url, headers=session, timeout=5).status_code == 200

    after = httpx.post(stack.url, json=call, headers=session, timeout=10)
    unknown = httpx.post(
        stack.url, json=call, headers={**session, "Mcp-Session-Id": "no-such-session"}, timeout=10
    )

    assert after.status_code == 404
    assert unknown.status_code == 404
    assert [line for line in stack.upstream_calls() if "INV-12" in line] == [
        'read_invoice {"invoice_id": "INV-12"}'
    ]
