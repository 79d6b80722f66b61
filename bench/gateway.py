"""The MCP gateway's cost: ``tools/call`` through ``tether gateway mcp`` against the same
call made directly to the upstream MCP server, side by side in one run.

Not part of the suite (issue 12's benchmark). In a temporary folder: the example's
invoice MCP server (``examples/mcp-agent/invoice_server.py``, streamable HTTP) and a
gateway in front of it deciding in process (``--db``, the example's estate, decisions
recorded). Then, alternately, direct and through the gateway, 32 MCP sessions (one
asyncio process, JSON-RPC written by hand: see ``_RawSession``) call ``read_invoice`` in a
closed loop for ``--seconds``; each call's latency is measured. Through the gateway every call is a
recorded tether decision with the agent's task token, and its ``constrain`` obligation
(``redact=iban``) is applied to the result. The CPU each process spent in the gateway's
rounds is read from ``/proc`` (the gateway with its worker process, the worker alone, the
upstream) and printed per call: on a shared machine it is steadier than wall time.

Then ``@guarded``: the same tool as a plain in-process function, and guarded with a
``Client`` of a local ``tether serve`` (one decision per call, reporting off), called
in a loop; the overhead per call is printed and as a ratio, with the CPU per call of the
client (this process: the SDK and httpx) and of ``tether serve``.

Then latency at a fixed offered rate (open loop, as wrk2 measures it): the same 32
sessions, direct and through the gateway alternately, send calls on a schedule at
``--rate`` times the slower path's closed-loop throughput (0.5 by default), each call's latency
counted from the moment it was due (so a call that waits behind a slow one counts its
wait: no coordinated omission). In a closed loop the latency is only the sessions divided
by the throughput (Little's law): 32 sessions queue at whatever is slowest, so the added
latency there restates the throughput ratio; what a proxy adds to a call is read at a
rate both paths can carry.

Targets (printed, never asserted): added latency p50 <= 1 ms and p99 <= 5 ms at the fixed
rate, gateway throughput (closed loop) >= 70 % of direct.

    python -m bench.gateway [--seconds 10] [--sessions 32] [--rate 0.5] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from joserfc.jwk import ECKey

from bench.http import free_port, stop, wait_ready
from tether.callers import add_api_key
from tether.config import load_settings
from tether.estate import apply_estate
from tether.sdk import ApiKey, Client, acting_as, guarded
from tether.sdk.models import TokenGrant
from tether.services import Tether
from tether.tokens import TaskRequest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "mcp-agent"
TETHER = [sys.executable, "-m", "tether.cli"]
IDENTITY = "invoice-agent"
ISSUER = "https://tether.bench"
TARGET_ADDED_P50_MS, TARGET_ADDED_P99_MS, TARGET_THROUGHPUT = 1.0, 5.0, 0.70


@contextlib.contextmanager
def _started(
    command: list[str],
    base: str,
    probe: str,
    folder: Path,
    name: str,
    env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """``command`` running in ``folder`` (its output in NAME.log) once ``base + probe``
    answers; stopped at the end."""
    with (folder / f"{name}.log").open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, cwd=folder, env=env
        )
    try:
        wait_ready(process, base, probe=probe, timeout=30)
        yield process
    finally:
        stop(process)


def _upstream_started(stack: contextlib.ExitStack, folder: Path) -> str:
    """The example's invoice server running (until ``stack`` closes): its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, str(EXAMPLE / "invoice_server.py"), str(port)]
    stack.enter_context(_started(command, base, "/mcp", folder, "upstream"))
    return base


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int, *, own: bool = True) -> float:
    """CPU seconds (user + system) of ``pid`` (unless not ``own``) and of its live
    descendants (the gateway's worker process), from ``/proc``; 0 without ``/proc``."""
    total = 0.0
    pending = [(pid, own)]
    while pending:
        current, counted = pending.pop()
        try:
            if counted:
                fields = Path(f"/proc/{current}/stat").read_text().rpartition(")")[2].split()
                total += (int(fields[11]) + int(fields[12])) / _TICK
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [(int(c), True) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return total


def _cpu_of(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of each process named, and of its descendants alone."""
    spent = {name: _cpu_s(pid) for name, pid in pids.items()}
    spent.update({f"{name} children": _cpu_s(pid, own=False) for name, pid in pids.items()})
    return spent


@dataclass
class Round:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    #: CPU seconds each measured process spent during the round (by name).
    cpu: dict[str, float] = field(default_factory=dict)

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies) or [float("nan")]
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


class _RawSession:
    """One MCP session over one keep-alive connection, spoken by hand (pre-encoded
    JSON-RPC, the answer read as JSON or as its one server-sent event): the SDK's client
    costs ~2.5 ms of CPU a call, more than the servers measured, so it would measure
    itself. The calls are the same the SDK sends."""

    def __init__(self, url: str, token: str | None) -> None:
        parts = httpx.URL(url)
        self.host, self.port, self.path = parts.host, parts.port or 80, parts.path
        self.token = token
        self.session_id: str | None = None
        self.ids = 0

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        init = {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "bench", "version": "1"},
        }
        status, headers, _ = await self._post({"method": "initialize", "params": init})
        if status != 200:
            raise RuntimeError(f"initialize answered {status}")
        self.session_id = headers.get("mcp-session-id")
        await self._post({"method": "notifications/initialized"}, notification=True)

    async def call(self, tool: str, arguments: dict[str, Any]) -> bool:
        """Whether the call returned a result (not an error)."""
        status, _, body = await self._post(
            {"method": "tools/call", "params": {"name": tool, "arguments": arguments}}
        )
        return status == 200 and b'"result"' in body and b'"isError":true' not in body

    def close(self) -> None:
        self.writer.close()

    async def _post(
        self, message: dict[str, Any], *, notification: bool = False
    ) -> tuple[int, dict[str, str], bytes]:
        if not notification:
            self.ids += 1
            message = {"jsonrpc": "2.0", "id": self.ids, **message}
        else:
            message = {"jsonrpc": "2.0", **message}
        body = json.dumps(message).encode()
        head = [
            f"POST {self.path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            "Content-Type: application/json",
            "Accept: application/json, text/event-stream",
            f"Content-Length: {len(body)}",
        ]
        if self.token:
            head.append(f"Authorization: Bearer {self.token}")
        if self.session_id:
            head += [f"Mcp-Session-Id: {self.session_id}", "MCP-Protocol-Version: 2025-06-18"]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name:
                headers[name.strip().lower()] = value.strip()
        return status, headers, await self._body(headers)

    async def _body(self, headers: dict[str, str]) -> bytes:
        if "content-length" in headers:
            return await self.reader.readexactly(int(headers["content-length"]))
        if headers.get("transfer-encoding") != "chunked":
            return b""
        chunks: list[bytes] = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return b"".join(chunks)
            chunks.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)


async def _session(url: str, token: str | None, until: float, into: Round) -> None:
    session = _RawSession(url, token)
    await session.open()
    try:
        while time.perf_counter() < until:
            started = time.perf_counter()
            if await session.call("read_invoice", {"invoice_id": "INV-7"}):
                into.latencies.append(time.perf_counter() - started)
            else:
                into.errors += 1
    finally:
        session.close()


async def _paced_session(
    session: _RawSession, first_due: float, every: float, until: float, into: Round
) -> None:
    """Calls on an open ``session`` due at ``first_due``, then every ``every`` seconds
    until ``until``; each latency counted from when the call was due."""
    try:
        due = first_due
        while due < until:
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            if await session.call("read_invoice", {"invoice_id": "INV-7"}):
                into.latencies.append(time.perf_counter() - due)
            else:
                into.errors += 1
            due += every
    finally:
        session.close()


async def _round(
    url: str,
    token: str | None,
    sessions: int,
    seconds: float,
    pids: dict[str, int] | None = None,
    rate: float | None = None,
) -> Round:
    """One round of ``sessions``: a closed loop, or at ``rate`` calls a second in all
    (the sessions opened and called once first, then each due every ``sessions / rate``
    seconds, evenly staggered)."""
    into = Round()
    opened = [_RawSession(url, token) for _ in range(sessions if rate else 0)]
    await asyncio.gather(*(session.open() for session in opened))
    # One call each before the clock: a session's first call is the upstream SDK's slowest
    # (32 of a round's few hundred calls would be its p99), and the steady state is measured.
    await asyncio.gather(*(s.call("read_invoice", {"invoice_id": "INV-7"}) for s in opened))
    before = _cpu_of(pids or {})
    started = time.perf_counter()
    until = started + seconds
    if rate is None:
        runs = [_session(url, token, until, into) for _ in range(sessions)]
    else:
        every = sessions / rate
        runs = [
            _paced_session(session, started + i * every / sessions, every, until, into)
            for i, session in enumerate(opened)
        ]
    await asyncio.gather(*runs)
    into.seconds = time.perf_counter() - started
    after = _cpu_of(pids or {})
    into.cpu = {name: after[name] - before[name] for name in after}
    return into


def _estate(folder: Path) -> Path:
    target = folder / "estate"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    key = {**ECKey.generate_key("P-256").as_dict(private=False), "kid": "bench", "use": "jwt-svid"}
    (target / "bundles").mkdir(exist_ok=True)
    (target / "bundles" / "demo.example.jwks.json").write_text(json.dumps({"keys": [key]}))
    return target


def _store(folder: Path) -> tuple[str, Tether, str]:
    """A store in ``folder`` with the example's estate: its URL, a tether on it, and a
    task token to call ``read_invoice`` with."""
    db = f"sqlite:///{folder / 'tether.db'}"
    os.environ["TETHER_ISSUER"] = ISSUER  # one issuer for every process of the bench
    settings = load_settings(
        {},
        database_url=db,
        master_key_file=str(folder / ".tether" / "master.key"),
        issuer=ISSUER,
    )
    tether = Tether(settings)
    apply_estate(tether.engine, _estate(folder), actor="bench")
    tether.reload()
    return db, tether, _token(tether, ["read_invoice"])


def _token(tether: Tether, actions: list[str]) -> str:
    """A task token for the example's agent, opened by an operator (no proof needed)."""
    request = TaskRequest.from_json(
        {
            "purpose": "benchmark",
            "intent": {
                "actions": actions,
                "resources": ["invoice:*"],
                "data_classes": ["confidential"],
            },
            "ttl": "15m",
        }
    )
    authority = tether.tasks
    task = authority.open_task(request, identity_id=IDENTITY, opened_by="bench")
    issued = authority.issue(
        task, scope=task.intent.actions, event="token.exchange", actor="bench", details={}
    )
    return str(issued.token)


def _guarded_overhead(
    tether_url: str, server_pid: int, pep_key: str, token: str, calls: int
) -> dict[str, float]:
    """Microseconds a call (and CPU microseconds a call of this process, the client, and of
    the server), plain and guarded."""

    def read_invoice(invoice_id: str) -> dict[str, Any]:
        return {"id": invoice_id, "amount": 120, "iban": "DE89370400440532013000"}

    with Client(tether_url, credential=ApiKey(pep_key)) as client:
        governed = guarded(client=client, resource="invoice:{invoice_id}", report=False)(
            read_invoice
        )
        grant = TokenGrant(
            token,
            expires_at=datetime.now(UTC) + timedelta(minutes=15),
            scope=("read_invoice",),
            task_id=None,
            identity=IDENTITY,
            token_id=None,
        )
        timings: dict[str, float] = {}
        for name, function in (("plain", read_invoice), ("guarded", governed)):
            with acting_as(grant):
                function("INV-7")  # warm up
                cpu, server = time.process_time(), _cpu_s(server_pid)
                started = time.perf_counter()
                for _ in range(calls):
                    function("INV-7")
                timings[name] = (time.perf_counter() - started) / calls * 1e6
                timings[f"{name} client cpu"] = (time.process_time() - cpu) / calls * 1e6
                timings[f"{name} server cpu"] = (_cpu_s(server_pid) - server) / calls * 1e6
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each round")
    parser.add_argument("--sessions", type=int, default=32, help="concurrent MCP sessions")
    parser.add_argument(
        "--rate",
        type=float,
        default=0.5,
        help="offered rate of the latency rounds: this fraction of the slower path's "
        "closed-loop throughput",
    )
    parser.add_argument("--quick", action="store_true", help="3 s rounds, fewer guarded calls")
    args = parser.parse_args(argv)
    seconds = 3.0 if args.quick else args.seconds
    folder = Path(tempfile.mkdtemp(prefix="tether-bench-gateway-"))
    try:
        db, tether, token = _store(folder)
        pep_key = add_api_key(tether.engine, "bench-pep").key
        up_port, gw_port, tether_port = free_port(), free_port(), free_port()
        up_base, gw_base = f"http://127.0.0.1:{up_port}", f"http://127.0.0.1:{gw_port}"
        tether_base = f"http://127.0.0.1:{tether_port}"
        direct, through = f"{up_base}/mcp", f"{gw_base}/mcp"
        upstream = [sys.executable, str(EXAMPLE / "invoice_server.py"), str(up_port)]
        gateway = [*TETHER, "gateway", "mcp", "--upstream", direct, "--db", db]
        gateway += ["--listen", f"127.0.0.1:{gw_port}"]
        serve = [*TETHER, "serve", "--port", str(tether_port), "--db", db]
        rounds: dict[str, list[Round]] = {"direct": [], "gateway": []}
        paced: dict[str, list[Round]] = {"direct": [], "gateway": []}
        with (
            _started(upstream, up_base, "/mcp", folder, "upstream") as up,
            _started(
                gateway, gw_base, "/.well-known/oauth-protected-resource", folder, "gateway"
            ) as gw,
        ):
            pids = {"upstream": up.pid, "gateway": gw.pid}
            asyncio.run(_round(through, token, 4, 1.0))  # warm both paths
            asyncio.run(_round(direct, None, 4, 1.0))
            paths = (("direct", direct, None), ("gateway", through, token))
            for _ in range(2):
                for mode, url, bearer in paths:
                    rounds[mode].append(
                        asyncio.run(_round(url, bearer, args.sessions, seconds / 2, pids))
                    )
            # Half (--rate) of what the slower path carries: both paths then run below
            # saturation on these shared cores, where latency is each call's own.
            offered = args.rate * min(_merged(r).rate for r in rounds.values())
            # Rounds twice as long: a full collection in the upstream (~90 ms, every few
            # seconds) lands in either path's rounds, and the p99 needs several of them.
            for _ in range(2):
                for mode, url, bearer in paths:
                    paced[mode].append(
                        asyncio.run(_round(url, bearer, args.sessions, seconds, pids, rate=offered))
                    )
        with _started(serve, tether_base, "/healthz", folder, "tether") as server:
            guarded_us = _guarded_overhead(
                tether_base, server.pid, pep_key, token, 300 if args.quick else 2000
            )
        tether.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    _print(rounds, paced, guarded_us, args.sessions)
    return 0


def _merged(rounds: list[Round]) -> Round:
    merged = Round()
    for r in rounds:
        merged.latencies += r.latencies
        merged.errors += r.errors
        merged.seconds += r.seconds
        for name, spent in r.cpu.items():
            merged.cpu[name] = merged.cpu.get(name, 0.0) + spent
    return merged


def _table(title: str, direct: Round, gateway: Round) -> None:
    print(title)
    print(f"{'':10} {'calls/s':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name, r in (("direct", direct), ("gateway", gateway)):
        print(
            f"{name:10} {r.rate:9,.0f} {r.percentile(50):8.2f} {r.percentile(90):8.2f} "
            f"{r.percentile(99):8.2f} {r.errors:7}"
        )
    calls = len(gateway.latencies) + gateway.errors
    if calls and "gateway" in gateway.cpu:
        print(
            f"CPU a call through the gateway: gateway {gateway.cpu['gateway'] / calls * 1000:.2f}"
            f" ms (its worker {gateway.cpu['gateway children'] / calls * 1000:.2f} of them), "
            f"upstream {gateway.cpu['upstream'] / calls * 1000:.2f} ms; load average "
            + " ".join(f"{x:.2f}" for x in os.getloadavg())
        )


def _print(
    rounds: dict[str, list[Round]],
    paced: dict[str, list[Round]],
    guarded_us: dict[str, float],
    sessions: int,
) -> None:
    direct, gateway = _merged(rounds["direct"]), _merged(rounds["gateway"])
    _table(
        f"tools/call read_invoice, {sessions} MCP sessions, closed loop, rounds alternated",
        direct,
        gateway,
    )
    ratio = gateway.rate / direct.rate if direct.rate else float("nan")
    print(
        f"closed loop: added p50 {gateway.percentile(50) - direct.percentile(50):.2f} ms, "
        f"p99 {gateway.percentile(99) - direct.percentile(99):.2f} ms (sessions / throughput); "
        f"throughput {ratio:.2f}x direct (target >= {TARGET_THROUGHPUT:.2f})"
    )
    direct, gateway = _merged(paced["direct"]), _merged(paced["gateway"])
    offered = sum(len(r.latencies) + r.errors for r in paced["direct"]) / (direct.seconds or 1)
    _table(
        f"the same {sessions} sessions at a fixed offered rate (~{offered:,.0f} calls/s, "
        "latency from each call's due time)",
        direct,
        gateway,
    )
    added50 = gateway.percentile(50) - direct.percentile(50)
    added99 = gateway.percentile(99) - direct.percentile(99)
    print(
        f"added latency p50 {added50:.2f} ms (target <= {TARGET_ADDED_P50_MS:g}), "
        f"p99 {added99:.2f} ms (target <= {TARGET_ADDED_P99_MS:g})"
    )
    plain, governed = guarded_us["plain"], guarded_us["guarded"]
    print(
        f"@guarded: plain call {plain:.2f} us, guarded {governed:,.0f} us "
        f"(one decision over HTTP): +{governed - plain:,.0f} us, {governed / plain:,.0f}x"
    )
    print(
        f"@guarded CPU a call: client (the SDK) {guarded_us['guarded client cpu']:,.0f} us, "
        f"tether serve (and its worker) {guarded_us['guarded server cpu']:,.0f} us"
    )


if __name__ == "__main__":
    sys.exit(main())
