"""Decisions per second over HTTP: tether's AuthZEN endpoint beside a Starlette hello-world.

Each target runs in its own ``uvicorn`` process, one worker, ``--loop uvloop --http
httptools --no-access-log``, pinned to core 0 with ``taskset`` when the machine has two
cores or more; ``wrk`` (the Debian package) is pinned to core 1 and POSTs the benchmark
mix as AuthZEN evaluation bodies over 32 connections. Without ``wrk`` (and no way to
install it) an asyncio generator with the same 32 keep-alive connections stands in; it can
be slower than the server, so its figures are a floor.

tether runs as ``tether serve`` does, with its worker process (``tether.worker``: commits
the decision rows, runs live drift detection); the benchmark moves that process to the
load core, so the server process has core 0 to itself, and reports its CPU apart.
tether is measured on ``/access/v1/evaluation`` (one decision per request, the acceptance
figure), on ``/access/v1/evaluations`` with 10 items per request (decisions per second
when a PEP batches), on ``/access/v1/evaluation`` with a running number in every
request's context where a policy reads it (``chain_depth``), so that no question is asked
twice and tether's decision cache never answers (every decision evaluated by Cedar), and
with the running number only as ``context.request_id`` ("new ids": new to the PEP, not to
Cedar, which is handed only what the policies read). After the runs the server is stopped
cleanly (SIGTERM drains the batching decision log) and the rows in its ``decisions``
table are counted: they must equal the decisions in the 200 answers the server sent
(counted by ``bench/server.py``), and may exceed what ``wrk`` received only by requests
in flight when ``wrk`` stopped.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
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
from typing import Any

import httpx

from bench.estate import BenchEstate, install_estate
from bench.load import (
    LOAD_CORE,
    NONCE,
    SERVER_CORE,
    LoadResult,
    ensure_wrk,
    pin,
    run_async_load,
    run_wrk,
    wrk_script,
)

ROOT = Path(__file__).resolve().parent.parent
EVALUATION = "/access/v1/evaluation"
EVALUATIONS = "/access/v1/evaluations"
HELLO = "/hello"
HELLO_NAME = "Starlette hello-world"
TETHER = "tether /access/v1/evaluation"
BATCH = 10  # items per /access/v1/evaluations request
TETHER_BATCH = f"tether /access/v1/evaluations ×{BATCH}"
TETHER_NEW = "tether /access/v1/evaluation, all new"  # every question new: no cache hits
# Each request with a new `context.request_id`, which no policy reads: new to the PEP, not
# to Cedar (the decision cache keys on the context Cedar is handed).
TETHER_IDS = "tether /access/v1/evaluation, new ids"


@dataclass(frozen=True)
class HttpTarget:
    name: str
    load: LoadResult
    server_cpu_us: float  # server process CPU time per 2xx response
    client_ok_total: int  # 2xx the load generator saw over warm-up and measured run
    per_request: int = 1  # decisions per request
    worker_cpu_us: float = 0.0  # the server's worker process (tether.worker) per 2xx

    @property
    def decisions_per_second(self) -> float:
        return self.load.per_second * self.per_request


@dataclass(frozen=True)
class LogCheck:
    """Decisions answered with 200 versus decision rows stored, for one tether server run."""

    server_sent: int  # decisions in 200 answers the server sent (counted by bench/server.py)
    client_received: int  # decisions in 200 answers the load generator received
    rows: int  # rows in `decisions` after a clean stop

    @property
    def every_decision_recorded(self) -> bool:
        return self.rows == self.server_sent and self.rows >= self.client_received


@dataclass(frozen=True)
class HttpReport:
    targets: list[HttpTarget]
    connections: int
    pinned: bool
    notes: list[str]
    log_check: LogCheck | None

    def get(self, name: str) -> HttpTarget:
        return next(t for t in self.targets if t.name == name)


# --- the servers ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def uvicorn_server(
    factory: str, env: dict[str, str], *, pinned: bool = True
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """One uvicorn worker serving ``factory``; ``pinned``: to the server core (replicas
    that share the machine's cores are not)."""
    port = free_port()
    command = [
        *(pin(SERVER_CORE) if pinned else []),
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
        wait_ready(process, base)
        yield process, base
    finally:
        stop(process)


def wait_ready(
    process: subprocess.Popen[bytes], base: str, *, probe: str = "/healthz", timeout: float = 60
) -> None:
    """Return once ``base + probe`` answers (any status below 500); raise if the process
    exits first or nothing answers within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode} at start")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}{probe}", timeout=1).status_code < 500:
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


def children(pid: int) -> list[int]:
    """Child process ids (Linux ``/proc``): the tether server's worker process."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def pin_children(process: subprocess.Popen[bytes]) -> list[int]:
    """Move the server's worker process (decision log + drift detection) to the load core:
    the server process keeps core 0 to itself, as a deployment gives it its own core."""
    pids = children(process.pid)
    if pin(LOAD_CORE):
        for pid in pids:
            subprocess.run(
                ["taskset", "-p", "-c", str(LOAD_CORE), str(pid)],
                stdout=subprocess.DEVNULL,
                check=False,
            )
    return pids


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux ``/proc``); 0 where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


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
    authorization: str = "",
) -> LoadResult:
    if wrk is not None:
        return run_wrk(wrk, base + path, script, connections=connections, seconds=seconds)
    return run_async_load(
        base + path,
        bodies,
        connections=connections,
        seconds=seconds,
        authorization=authorization,
    )


def run_http(
    estate: BenchEstate, *, connections: int = 32, seconds: float = 10, warmup: float = 2
) -> HttpReport:
    """Load the hello-world, then tether's evaluation endpoints; verify the decision log."""
    notes: list[str] = []
    wrk = ensure_wrk()
    if wrk is None:
        notes.append("load from the asyncio generator (wrk unavailable): it may be the bottleneck")
    pinned = bool(pin(SERVER_CORE))
    if not pinned:
        notes.append("not pinned: taskset missing or fewer than 2 cores")
    single = [_compact(r.authzen_body()) for r in estate.requests]
    # The same questions, each with a running number as its request id (wrk only), as a
    # PEP passing its request id sends them; an approval is not bound to `request_id`, so
    # a retried approval_required request still finds its pending ticket.
    with_ids = [
        _compact({**body, "context": {**body["context"], "request_id": NONCE}})
        for body in (r.authzen_body() for r in estate.requests)
    ]
    # Each made new to Cedar as well: the running number also in `chain_depth`, which a
    # guardrail reads (`> 3`), so that every answer stays the mix's own. Not the two that
    # need approval: an approval is bound to what Cedar reads, so each would open a new
    # ticket (a store write); as a PEP retrying them they keep their pending ticket.
    nonced = [
        with_ids[n] if r.expected == "approval_required" else _new_to_cedar(r.authzen_body())
        for n, r in enumerate(estate.requests)
    ]
    items = [r.authzen_body() for r in estate.requests]
    batches = [_compact({"evaluations": items[i : i + BATCH]}) for i in range(0, len(items), BATCH)]
    targets: list[HttpTarget] = []
    with tempfile.TemporaryDirectory(prefix="tether-bench-http-") as folder:

        def measure(
            name: str,
            process: subprocess.Popen[bytes],
            base: str,
            path: str,
            bodies: list[str],
            per_request: int = 1,
            authorization: str = "",
            unique: bool = False,
        ) -> HttpTarget:
            script = Path(folder) / f"load-{len(targets)}.lua"
            script.write_text(wrk_script(bodies, connections, authorization, unique=unique))
            workers = pin_children(process)
            load = functools.partial(
                _load,
                wrk,
                base,
                path,
                script,
                [b.encode() for b in bodies],
                connections=connections,
                authorization=authorization,
            )
            warm = load(seconds=warmup)
            before = cpu_seconds(process.pid)
            worker_before = sum(cpu_seconds(pid) for pid in workers)
            result = load(seconds=seconds)
            cpu_us = (cpu_seconds(process.pid) - before) * 1e6 / max(result.ok, 1)
            worker_cpu = sum(cpu_seconds(pid) for pid in workers) - worker_before
            target = HttpTarget(
                name,
                result,
                cpu_us,
                warm.ok + result.ok,
                per_request,
                worker_cpu * 1e6 / max(result.ok, 1),
            )
            print(
                f"  {name}: {target.decisions_per_second:,.0f}/s, p99 {result.p99_ms:.2f} ms",
                flush=True,
            )
            targets.append(target)
            return target

        with uvicorn_server("bench.server:hello_app", {}) as (process, base):
            measure(HELLO_NAME, process, base, HELLO, single)

        database = Path(folder) / "tether.db"
        authorization = "Bearer " + install_estate(f"sqlite:///{database}", estate)
        counts = Path(folder) / "answers.json"
        env = {
            "TETHER_BACKGROUND_WORK": "process",  # as `tether serve` runs
            "TETHER_DATABASE_URL": f"sqlite:///{database}",
            "TETHER_MASTER_KEY_FILE": str(Path(folder) / "master.key"),
            "BENCH_COUNTS_FILE": str(counts),
        }
        with uvicorn_server("bench.server:tether_app", env) as (process, base):
            one = measure(TETHER, process, base, EVALUATION, single, 1, authorization)
            many = measure(TETHER_BATCH, process, base, EVALUATIONS, batches, BATCH, authorization)
            fresh = ids = None
            if wrk is not None:
                fresh = measure(
                    TETHER_NEW, process, base, EVALUATION, nonced, 1, authorization, unique=True
                )
                ids = measure(
                    TETHER_IDS, process, base, EVALUATION, with_ids, 1, authorization, unique=True
                )
            stop(process)  # SIGTERM: the decision log drains, the answer counts are written
        sent: dict[str, int] = json.loads(counts.read_text()) if counts.is_file() else {}
        check = LogCheck(
            server_sent=sent.get(EVALUATION, 0) + BATCH * sent.get(EVALUATIONS, 0),
            client_received=one.client_ok_total
            + BATCH * many.client_ok_total
            + (fresh.client_ok_total if fresh else 0)
            + (ids.client_ok_total if ids else 0),
            rows=count_rows(database),
        )
    return HttpReport(targets, connections, pinned, notes, check)


def _compact(document: object) -> str:
    return json.dumps(document, separators=(",", ":"))


def _new_to_cedar(body: dict[str, Any]) -> str:
    """``body`` with the running number as its request id and in its ``chain_depth``:
    ``-N`` for a depth of at most 3, ``5N`` (51, 52, …) for a deeper one, so the answer
    is the same and Cedar is asked a new question every time."""
    depth = body["context"]["chain_depth"]
    mark = "-" + NONCE if depth <= 3 else "5" + NONCE
    text = _compact(
        {**body, "context": {**body["context"], "request_id": NONCE, "chain_depth": mark}}
    )
    return text.replace(f'"{mark}"', mark)


def format_http(report: HttpReport) -> str:
    hello = report.get(HELLO_NAME).load.per_second or 1.0
    header = (
        f"{'target':<34} {'req/s':>8} {'decisions/s':>11} {'p50 ms':>7} {'p90 ms':>7} "
        f"{'p99 ms':>7} {'CPU µs/req':>10} {'worker µs':>9} {'req/s × hello':>13}"
    )
    lines = [header, "-" * len(header)]
    for t in report.targets:
        load = t.load
        decisions = f"{t.decisions_per_second:>11,.0f}" if t.name != HELLO_NAME else f"{'-':>11}"
        lines.append(
            f"{t.name:<34} {load.per_second:>8,.0f} {decisions} {load.p50_ms:>7.2f} "
            f"{load.p90_ms:>7.2f} {load.p99_ms:>7.2f} {t.server_cpu_us:>10.0f} "
            f"{t.worker_cpu_us:>9.0f} "
            f"{load.per_second / hello:>12.2f}×"
        )
    lines.append("")
    first = report.targets[0].load
    lines.append(
        f"{report.connections} connections, {first.seconds:.1f} s per run after a warm-up, "
        f"load by {first.generator}; server: uvicorn, 1 worker, uvloop + httptools"
        + (
            ", pinned to core 0 (load and tether's worker process on core 1)"
            if report.pinned
            else ""
        )
        + "; CPU = server process user+system time per request; worker = the same for the "
        "worker process that commits decisions and runs drift detection (tether.worker)"
    )
    for t in report.targets:
        if t.load.non_2xx or t.load.socket_errors:
            lines.append(
                f"{t.name}: {t.load.non_2xx} non-2xx responses, "
                f"{t.load.socket_errors} socket errors"
            )
    check = report.log_check
    if check is not None:
        lines.append(
            f"decisions in 200 answers: sent by the server {check.server_sent:,}, received by "
            f"{first.generator} {check.client_received:,} "
            f"(+{check.server_sent - check.client_received} in flight at cut-off); "
            f"rows in `decisions` {check.rows:,}; every decision recorded: "
            + ("yes" if check.every_decision_recorded else "NO")
        )
    lines += report.notes
    return "\n".join(lines)
