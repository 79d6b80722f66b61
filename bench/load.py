"""Load generators for the HTTP benchmark: ``wrk`` with a Lua script, or an asyncio stand-in.

``wrk`` (the Debian package, installed on demand when we are root) runs one thread pinned
to core 1 and POSTs the given bodies in turn over keep-alive connections; its ``done``
hook prints one ``BENCH_JSON`` summary line. Each connection's first request is held
``RAMP_MS`` so the server accepts every connection before the clock matters: otherwise
connections accepted late under load add a start-up tail to the latencies. Without
``wrk``, :func:`run_async_load` does the same with raw asyncio streams on uvloop.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvloop

SERVER_CORE = 0
LOAD_CORE = 1
RAMP_MS = 100  # first-request hold per connection, taken out of the measured duration

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
    local headers = {["Content-Type"] = "application/json"}
    headers["Authorization"] = "%(authorization)s"
    prepared[i] = wrk.format("POST", nil, headers, body)
  end
  counter = offset or 0
end

local issued = 0
function request()
  counter = counter %% #prepared + 1
  if %(unique)s then
    -- Every request a new question: NONCE in the body becomes a running number.
    issued = issued + 1
    local headers = {["Content-Type"] = "application/json"}
    headers["Authorization"] = "%(authorization)s"
    local body = string.gsub(bodies[counter], "%(nonce)s", tostring(issued))
    return wrk.format("POST", nil, headers, body)
  end
  return prepared[counter]
end

-- Hold each connection's first request until the server has accepted every connection.
local held = 0
function delay()
  if held < %(connections)d then
    held = held + 1
    return %(ramp_ms)d
  end
  return 0
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


def ensure_wrk() -> str | None:
    """The path of ``wrk``; installs the Debian package when missing and we are root."""
    found = shutil.which("wrk")
    if found or not shutil.which("apt-get") or os.geteuid() != 0:
        return found
    print("wrk is not installed: installing the Debian package (apt-get install -y wrk) ...")
    if _quiet(["apt-get", "install", "-y", "-q", "wrk"]) != 0:
        _quiet(["apt-get", "update", "-q"])
        _quiet(["apt-get", "install", "-y", "-q", "wrk"])
    found = shutil.which("wrk")
    if found is None:
        print("could not install wrk; falling back to the asyncio load generator")
    return found


def _quiet(command: list[str]) -> int:
    done = subprocess.run(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
    )
    return done.returncode


def pin(core: int) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(core)]
    return []


#: In a body of a ``unique`` script, replaced by a running number per request.
NONCE = "NONCE_NNN"


def wrk_script(
    bodies: Sequence[str], connections: int, authorization: str = "", *, unique: bool = False
) -> str:
    """The Lua script; ``unique``: each request's ``NONCE`` becomes a new number, so no two
    requests ask the same question (no decision-cache hits)."""
    quoted = ",\n".join(f"  [==[{b}]==]" for b in bodies)
    return LUA % {
        "bodies": quoted,
        "connections": connections,
        "ramp_ms": RAMP_MS,
        "authorization": authorization,
        "unique": "true" if unique else "false",
        "nonce": NONCE,
    }


def run_wrk(wrk: str, url: str, script: Path, *, connections: int, seconds: float) -> LoadResult:
    command = [
        *pin(LOAD_CORE),
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
        seconds=data["duration_us"] / 1e6 - RAMP_MS / 1000,
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
    )


def run_async_load(
    url: str,
    bodies: Sequence[bytes],
    *,
    connections: int,
    seconds: float,
    authorization: str = "",
) -> LoadResult:
    """The stand-in for wrk: ``connections`` keep-alive HTTP/1.1 connections, each sending
    the mix in a closed loop (raw asyncio streams on uvloop: httpx itself would be the
    bottleneck)."""
    pinned = False
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        previous = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {LOAD_CORE})
        pinned = True
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(_async_load(url, bodies, connections, seconds, authorization))
    finally:
        if pinned:
            os.sched_setaffinity(0, previous)


async def _async_load(
    url: str,
    bodies: Sequence[bytes],
    connections: int,
    seconds: float,
    authorization: str = "",
) -> LoadResult:
    target = httpx.URL(url)
    host, port = target.host, target.port or 80
    head = (
        f"POST {target.raw_path.decode()} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/json\r\n"
        + (f"Authorization: {authorization}\r\n" if authorization else "")
    )
    requests = [f"{head}Content-Length: {len(b)}\r\n\r\n".encode() + b for b in bodies]
    latencies: list[float] = []
    statuses: list[int] = []
    errors = 0
    deadline = 0.0

    async def connection(offset: int, ready: asyncio.Event) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        await ready.wait()  # every connection open before the clock starts
        index = offset
        try:
            while time.perf_counter() < deadline:
                request = requests[index % len(requests)]
                index += 1
                sent = time.perf_counter()
                writer.write(request)
                header = await reader.readuntil(b"\r\n\r\n")
                length = _content_length(header)
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - sent)
                statuses.append(int(header[9:12]))
        except (OSError, asyncio.IncompleteReadError, ValueError):
            errors += 1
        finally:
            writer.close()

    ready = asyncio.Event()
    tasks = [asyncio.create_task(connection(7 * i, ready)) for i in range(connections)]
    await asyncio.sleep(RAMP_MS / 1000)
    started = time.perf_counter()
    deadline = started + seconds
    ready.set()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies) or [0.0]

    def percentile(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

    return LoadResult(
        generator="asyncio",
        requests=len(statuses),
        non_2xx=sum(1 for s in statuses if not 200 <= s < 300),
        socket_errors=errors,
        seconds=elapsed,
        p50_ms=percentile(50),
        p90_ms=percentile(90),
        p99_ms=percentile(99),
        max_ms=ordered[-1] * 1000,
    )


def _content_length(header: bytes) -> int:
    for line in header.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    raise ValueError("response without content-length")
