"""Decisions per second over HTTP: tether's AuthZEN endpoint beside a Starlette hello-world.

Each target runs in its own ``uvicorn`` process, one worker, ``--loop uvloop --http
httptools --no-access-log``, pinned to core 0 with ``taskset`` when the machine has two
cores or more; ``wrk`` (the Debian package) is pinned to core 1 and POSTs the benchmark
mix as AuthZEN evaluation bodies over 32 connections. Without ``wrk`` (and no way to
install it) an asyncio + httpx generator with the same 32 connections stands in; it is
slower than the server, so its figures are a floor.

After the tether run the server is stopped cleanly (SIGTERM drains the batching decision
log) and the rows in its ``decisions`` table are counted: they must equal the number of
200 responses the server sent (its ``tether_decision_seconds`` count), and may exceed
what ``wrk`` counted only by requests still in flight when ``wrk`` stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.estate import BenchEstate, install_estate

ROOT = Path(__file__).resolve().parent.parent
EVALUATION = "/access/v1/evaluation"
HELLO = "/hello"
TETHER = "tether /access/v1/evaluation"
SERVER_CORE = 0
LOAD_CORE = 1

LUA = """\
local bodies = {
%(bodies)s
}
local prepared = {}
local next_index = 0

function setup(thread)
  thread:set("offset", next_index)
  next_index = next_index + 7
end

function init(args)
  for i, body in ipairs(bodies) do
    prepared[i] = wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
  end
  counter = offset or 0
end

function request()
  counter = counter %% #prepared + 1
  return prepared[counter]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %%.0f, "duration_us": %%.0f, "connect": %%.0f, "read": %%.0f, ' ..
    '"write": %%.0f, "status": %%.0f, "timeout": %%.0f, "p50_us": %%.0f, "p90_us": %%.0f, ' ..
    '"p99_us": %%.0f, "mean_us": %%.1f, "max_us": %%.0f}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max))
end
"""


@dataclass(frozen=True)
class LoadResult:
    """What one load run saw from the client side."""

    generator: str
    requests: int  # responses received
    non_2xx: int
    socket_errors: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @property
    def ok(self) -> int:
        return self.requests - self.non_2xx

    @property
    def per_second(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class HttpTarget:
    name: str
    load: LoadResult
    server_cpu_us: float  # server process CPU time per 2xx response
    client_ok_total: int  # 2xx wrk saw over warm-up and measured run
    server_ok: int | None = None  # 200s the server sent (tether: from /metrics)
    rows: int | None = None  # decision rows in the store after a clean stop

    @property
    def every_decision_recorded(self) -> bool | None:
        if self.rows is None or self.server_ok is None:
            return None
        return self.rows == self.server_ok and self.rows >= self.client_ok_total


@dataclass(frozen=True)
class HttpReport:
    targets: list[HttpTarget]
    connections: int
    pinned: bool
    notes: list[str]

    def get(self, name: str) -> HttpTarget:
        return next(t for t in self.targets if t.name == name)


# --- the load generator --------------------------------------------------------------------


def ensure_wrk() -> str | None:
    """The path of ``wrk``; installs the Debian package when missing and we are root."""
    found = shutil.which("wrk")
    if found or not shutil.which("apt-get") or os.geteuid() != 0:
        return found
    print("wrk is not installed: installing the Debian package (apt-get install -y wrk) ...")
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "check": False}
    if subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], **quiet).returncode != 0:  # type: ignore[call-overload]
        subprocess.run(["apt-get", "update", "-q"], **quiet)  # type: ignore[call-overload]
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], **quiet)  # type: ignore[call-overload]
    found = shutil.which("wrk")
    if found is None:
        print("could not install wrk; falling back to the asyncio + httpx load generator")
    return found


def _pin(core: int) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(core)]
    return []


def wrk_script(bodies: Sequence[str]) -> str:
    quoted = ",\n".join(f"  [==[{b}]==]" for b in bodies)
    return LUA % {"bodies": quoted}


def run_wrk(wrk: str, url: str, script: Path, *, connections: int, seconds: float) -> LoadResult:
    command = [
        *_pin(LOAD_CORE),
        wrk,
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "5s",
        "-s",
        str(script),
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{done.stdout}\n{done.stderr}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    socket_errors = sum(int(data[k]) for k in ("connect", "read", "write", "timeout"))
    return LoadResult(
        generator="wrk",
        requests=int(data["requests"]),
        non_2xx=int(data["status"]),
        socket_errors=socket_errors,
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
    )


def run_async_load(
    url: str, bodies: Sequence[bytes], *, connections: int, seconds: float
) -> LoadResult:
    """The stand-in for wrk: ``connections`` keep-alive clients looping over the mix."""
    pinned = False
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        previous = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {LOAD_CORE})
        pinned = True
    try:
        return asyncio.run(_async_load(url, bodies, connections, seconds))
    finally:
        if pinned:
            os.sched_setaffinity(0, previous)


async def _async_load(
    url: str, bodies: Sequence[bytes], connections: int, seconds: float
) -> LoadResult:
    latencies: list[float] = []
    statuses: list[int] = []
    errors = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"content-type": "application/json"}
    started = time.perf_counter()
    deadline = started + seconds

    async def worker(offset: int, client: httpx.AsyncClient) -> None:
        nonlocal errors
        index = offset
        while time.perf_counter() < deadline:
            body = bodies[index % len(bodies)]
            index += 1
            sent = time.perf_counter()
            try:
                response = await client.post(url, content=body, headers=headers)
            except httpx.HTTPError:
                errors += 1
                continue
            latencies.append(time.perf_counter() - sent)
            statuses.append(response.status_code)

    async with httpx.AsyncClient(limits=limits, timeout=5.0) as client:
        await asyncio.gather(*(worker(7 * i, client) for i in range(connections)))
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies) or [0.0]

    def percentile(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

    return LoadResult(
        generator="asyncio+httpx",
        requests=len(statuses),
        non_2xx=sum(1 for s in statuses if not 200 <= s < 300),
        socket_errors=errors,
        seconds=elapsed,
        p50_ms=percentile(50),
        p90_ms=percentile(90),
        p99_ms=percentile(99),
        max_ms=ordered[-1] * 1000,
    )


# --- the servers ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def uvicorn_server(
    factory: str, env: dict[str, str]
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = _free_port()
    command = [
        *_pin(SERVER_CORE),
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        factory,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
        "--lifespan",
        "on",
    ]
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env})
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(process, base)
        yield process, base
    finally:
        stop(process)


def _wait_ready(process: subprocess.Popen[bytes], base: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode} at start")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/healthz", timeout=1).status_code in (200, 404):
                return
        time.sleep(0.1)
    raise RuntimeError(f"the server at {base} did not come up in {timeout:.0f} s")


def stop(process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Stop a server the way an orchestrator does: SIGTERM, wait; SIGKILL only if stuck."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux ``/proc``); 0 where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


_COUNT = re.compile(r'^tether_decision_seconds_count\{route="/access/v1/evaluation"\} (\S+)$', re.M)


def served_decisions(base: str) -> int:
    """200 answers the server sent on the evaluation route (its latency histogram count)."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    found = _COUNT.search(text)
    return int(float(found.group(1))) if found else 0


def count_rows(database: Path) -> int:
    with contextlib.closing(sqlite3.connect(database)) as connection:
        return int(connection.execute("SELECT count(*) FROM decisions").fetchone()[0])


# --- the run -------------------------------------------------------------------------------


def _load(
    wrk: str | None,
    base: str,
    path: str,
    script: Path,
    bodies: Sequence[bytes],
    *,
    connections: int,
    seconds: float,
) -> LoadResult:
    if wrk is not None:
        return run_wrk(wrk, base + path, script, connections=connections, seconds=seconds)
    return run_async_load(base + path, bodies, connections=connections, seconds=seconds)


def run_http(
    estate: BenchEstate, *, connections: int = 32, seconds: float = 10, warmup: float = 2
) -> HttpReport:
    """Load the hello-world and tether's evaluation endpoint in turn; verify the log."""
    notes: list[str] = []
    wrk = ensure_wrk()
    if wrk is None:
        notes.append("load from asyncio+httpx (wrk unavailable): the client is the bottleneck")
    pinned = bool(_pin(SERVER_CORE))
    if not pinned:
        notes.append("not pinned: taskset missing or fewer than 2 cores")
    bodies = [json.dumps(r.authzen_body(), separators=(",", ":")) for r in estate.requests]
    raw_bodies = [b.encode() for b in bodies]
    targets: list[HttpTarget] = []
    with tempfile.TemporaryDirectory(prefix="tether-bench-http-") as folder:
        script = Path(folder) / "authzen.lua"
        script.write_text(wrk_script(bodies))

        def measure(
            name: str, process: subprocess.Popen[bytes], base: str, path: str
        ) -> tuple[LoadResult, int, float]:
            load = functools.partial(
                _load, wrk, base, path, script, raw_bodies, connections=connections
            )
            warm = load(seconds=warmup)
            before = cpu_seconds(process.pid)
            result = load(seconds=seconds)
            cpu_us = (cpu_seconds(process.pid) - before) * 1e6 / max(result.ok, 1)
            print(f"  {name}: {result.per_second:,.0f}/s, p99 {result.p99_ms:.2f} ms", flush=True)
            return result, warm.ok + result.ok, cpu_us

        hello = "Starlette hello-world"
        with uvicorn_server("bench.server:hello_app", {}) as (process, base):
            load, client_ok, cpu_us = measure(hello, process, base, HELLO)
        targets.append(HttpTarget(hello, load, cpu_us, client_ok))

        database = Path(folder) / "tether.db"
        install_estate(f"sqlite:///{database}", estate)
        env = {"TETHER_DATABASE_URL": f"sqlite:///{database}"}
        with uvicorn_server("bench.server:tether_app", env) as (process, base):
            load, client_ok, cpu_us = measure(TETHER, process, base, EVALUATION)
            server_ok = served_decisions(base)
            stop(process)
        rows = count_rows(database)
        targets.append(HttpTarget(TETHER, load, cpu_us, client_ok, server_ok, rows))
    return HttpReport(targets, connections, pinned, notes)


def format_http(report: HttpReport) -> str:
    hello = report.targets[0].load.per_second or 1.0
    header = (
        f"{'target':<30} {'req/s':>9} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} "
        f"{'server CPU µs/req':>17} {'× hello':>8}"
    )
    lines = [header, "-" * len(header)]
    for t in report.targets:
        load = t.load
        lines.append(
            f"{t.name:<30} {load.per_second:>9,.0f} {load.p50_ms:>7.2f} {load.p90_ms:>7.2f} "
            f"{load.p99_ms:>7.2f} {t.server_cpu_us:>17.0f} {load.per_second / hello:>7.2f}×"
        )
    lines.append("")
    first = report.targets[0].load
    lines.append(
        f"{report.connections} connections, {first.seconds:.1f} s per run, load by "
        f"{first.generator}; server: uvicorn, 1 worker, uvloop + httptools"
        + (", pinned to core 0 (load on core 1)" if report.pinned else "")
    )
    for t in report.targets:
        if t.load.non_2xx or t.load.socket_errors:
            lines.append(
                f"{t.name}: {t.load.non_2xx} non-2xx responses, "
                f"{t.load.socket_errors} socket errors"
            )
        recorded = t.every_decision_recorded
        if recorded is not None:
            in_flight = (t.rows or 0) - t.client_ok_total
            lines.append(
                f"{t.name}: 200 responses sent by the server {t.server_ok:,}, received by "
                f"{t.load.generator} {t.client_ok_total:,} (+{in_flight} in flight at cut-off); "
                f"decision rows {t.rows:,}; every decision recorded: "
                + ("yes" if recorded else "NO")
            )
    lines += report.notes
    return "\n".join(lines)
