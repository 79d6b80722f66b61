"""Soak: honest PEPs at 80 % of measured capacity beside a hostile mix, for 30 minutes.

Not part of the suite (issue 19's soak). One real ``tether serve`` (the demo estate on
SQLite in a temporary folder, the worker process as in production). First the capacity
is measured: honest evaluations in a closed loop while the hostile clients below run
beside them (the capacity left to honest callers under attack, on two cores shared with
the load generator). Then, for ``--minutes``, honest PEPs send at 80 % of it (paced, so a
stall shows as latency) while the same hostile clients run beside them:

* deep contexts (300 levels) and contexts of 20,000 values: refused at the edge;
* 330,000-item ``/evaluations`` batches: refused before any item is evaluated;
* poison rows from an authenticated PEP (a NUL byte in ids and context, a 2**70 integer):
  answered, and stored as rows (cleaned) or error rows;
* forged task tokens and a wrong API key: refused 401;
* slow clients: connections from 127.0.0.2 that send a header byte a second, or nothing.

At the end the server is stopped (SIGTERM) and every honest decision id that was answered
is looked up in the store: the lost count must be 0. Prints honest p50/p99/max, the
hostile answers by status, and the decision-chain verification (``tether audit verify``).

    python -m bench.soak [--minutes 30] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import uvloop
from sqlalchemy import select

from bench.http import free_port
from tether.store.engine import open_engine
from tether.store.tables import decisions

ROOT = Path(__file__).resolve().parent.parent
ESTATE = ROOT / "examples" / "agents"
HONEST = {
    "subject": {"type": "agent", "id": "billing-bot"},
    "action": {"name": "read_invoice"},
    "resource": {"type": "invoice", "id": "INV-1"},
}
# A made-up task token (its signature is four bytes of nothing), for the server to refuse.
FORGED_TOKEN = ".".join(
    [
        "eyJhbGciOiJFUzI1NiIsInR5cCI6InRldGhlci10YXNrK2p3dCJ9",
        "eyJzdWIiOiJiaWxsaW5nLWJvdCIsImV4cCI6NDEwMjQ0NDgwMH0",
        "AAAA",
    ]
)


def _tether() -> list[str]:
    exe = shutil.which("tether", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "tether.cli"]


def _pep_key(folder: Path, db: str, name: str) -> str:
    made = subprocess.run(
        [*_tether(), "pep", "add", name, "--db", db, "--json"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
    )
    return str(json.loads(made.stdout)["key"])


@dataclass
class Tally:
    """What one kind of client saw."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    ids: list[str] = field(default_factory=list)


def _request(port: int, path: str, body: bytes, authorization: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nAuthorization: {authorization}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes]:
    writer.write(request)
    header = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in header.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return int(header[9:12]), await reader.readexactly(length)


async def _honest(port: int, key: str, rate: float, until: float, tally: Tally) -> None:
    """One honest PEP connection sending at ``rate`` per second (open loop: the send time
    is the schedule's, so a stall counts as latency)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    interval, due = 1 / rate, time.perf_counter()
    try:
        while due < until and time.perf_counter() < until:
            body = orjson.dumps({**HONEST, "context": {"n": random.randrange(10**9)}})
            request = _request(port, "/access/v1/evaluation", body, f"Bearer {key}")
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            status, answer = await _exchange(reader, writer, request)
            tally.latencies.append(time.perf_counter() - due)
            tally.statuses[status] += 1
            if status == 200:
                tally.ids.append(orjson.loads(answer)["context"]["decision_id"])
            due += interval
    except (OSError, asyncio.IncompleteReadError):
        tally.errors += 1
    finally:
        writer.close()


def _nested(levels: int) -> bytes:
    return b'{"a":' * levels + b"1" + b"}" * levels


HOSTILE_BODIES: list[tuple[str, bytes]] = [
    ("/access/v1/evaluation", orjson.dumps(HONEST)[:-1] + b',"context":' + _nested(300) + b"}"),
    ("/access/v1/evaluation", orjson.dumps({**HONEST, "context": {"v": list(range(20_000))}})),
    ("/access/v1/evaluations", b'{"evaluations":[' + b",".join([b"{}"] * 330_000) + b"]}"),
    (
        "/access/v1/evaluation",
        orjson.dumps(
            {
                "subject": {"type": "agent", "id": "evil\u0000" * 40},
                "action": {"name": "read_invoice"},
                "resource": {"type": "invoice", "id": "r" * 3000},
                "context": {"note": "nul\u0000"},
            }
        )[:-1]
        + b',"n2":1180591620717411303424}',
    ),
]


async def _hostile(port: int, key: str, until: float, tally: Tally) -> None:
    """Hostile requests back to back, a new connection when the server closes one."""
    while time.perf_counter() < until:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            tally.errors += 1
            await asyncio.sleep(0.1)
            continue
        try:
            while time.perf_counter() < until:
                choice = random.randrange(len(HOSTILE_BODIES) + 2)
                if choice < len(HOSTILE_BODIES):
                    path, body = HOSTILE_BODIES[choice]
                    authorization = f"Bearer {key}"
                else:  # a forged task token, or a wrong key
                    path, body = "/access/v1/evaluation", orjson.dumps(HONEST)
                    authorization = (
                        f"Bearer {FORGED_TOKEN}" if choice == len(HOSTILE_BODIES) else "Bearer x"
                    )
                status, _ = await _exchange(
                    reader, writer, _request(port, path, body, authorization)
                )
                tally.statuses[status] += 1
                await asyncio.sleep(0.02)
        except (OSError, asyncio.IncompleteReadError):
            tally.errors += 1
        finally:
            writer.close()


async def _slow_clients(port: int, until: float, count: int, tally: Tally) -> None:
    """Connections from 127.0.0.2 that never finish a request; reopened when closed."""

    async def one(index: int) -> None:
        while time.perf_counter() < until:
            try:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", port, local_addr=("127.0.0.2", 0)
                )
            except OSError:
                tally.errors += 1
                await asyncio.sleep(1)
                continue
            try:
                if index % 2:  # a header byte a second
                    for byte in b"POST /access/v1/evaluation HTTP/1.1\r\nHost: x\r\nX-A: " * 10:
                        if writer.is_closing() or reader.at_eof():
                            break
                        writer.write(bytes([byte]))
                        await asyncio.sleep(1)
                        if time.perf_counter() > until:
                            break
                else:
                    await reader.read()  # idle until the server closes
                tally.statuses[0] += 1
            except (OSError, RuntimeError):  # closed by the server under our feet
                tally.statuses[0] += 1
            finally:
                writer.close()

    await asyncio.gather(*(one(i) for i in range(count)))


async def _capacity(port: int, key: str, hostile_key: str, seconds: float) -> float:
    """Honest decisions per second in a closed loop (16 connections) while the hostile
    mix and the slow clients run beside them: the capacity left to honest callers under
    attack, on the cores the attack and the load generator share with the server."""
    tally, hostile, slow = Tally(), Tally(), Tally()
    until = time.perf_counter() + seconds
    await asyncio.gather(
        *(_honest(port, key, 1e9, until, tally) for _ in range(16)),
        *(_hostile(port, hostile_key, until, hostile) for _ in range(4)),
        _slow_clients(port, until, 400, slow),
    )
    return len(tally.latencies) / seconds


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values) or [0.0]
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


async def _soak(
    port: int, honest_key: str, hostile_key: str, minutes: float, load: float
) -> dict[str, Any]:
    capacity = await _capacity(port, honest_key, hostile_key, 10)
    rate = load * capacity
    connections = 16
    honest, hostile, slow = Tally(), Tally(), Tally()
    until = time.perf_counter() + minutes * 60
    print(
        f"capacity {capacity:,.0f}/s; honest PEPs at {rate:,.0f}/s for {minutes:g} min", flush=True
    )
    await asyncio.gather(
        *(_honest(port, honest_key, rate / connections, until, honest) for _ in range(connections)),
        *(_hostile(port, hostile_key, until, hostile) for _ in range(4)),
        _slow_clients(port, until, 400, slow),
    )
    return {"capacity": capacity, "rate": rate, "honest": honest, "hostile": hostile, "slow": slow}


def _stored(db: str, ids: list[str]) -> int:
    engine = open_engine(db)
    try:
        found = 0
        with engine.connect() as connection:
            for start in range(0, len(ids), 5000):
                chunk = ids[start : start + 5000]
                found += len(
                    connection.execute(
                        select(decisions.c.decision_id).where(decisions.c.decision_id.in_(chunk))
                    ).all()
                )
        return found
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--quick", action="store_true", help="one minute")
    parser.add_argument("--load", type=float, default=0.8, help="honest rate / capacity")
    args = parser.parse_args(argv)
    minutes = 1.0 if args.quick else args.minutes
    with tempfile.TemporaryDirectory(prefix="tether-soak-") as name:
        folder = Path(name)
        db = f"sqlite:///{folder}/tether.db"
        subprocess.run(
            [*_tether(), "apply", str(ESTATE), "--db", db],
            cwd=folder,
            check=True,
            capture_output=True,
        )
        honest_key, hostile_key = _pep_key(folder, db, "honest"), _pep_key(folder, db, "hostile")
        port = free_port()
        log = (folder / "server.log").open("wb")
        server = subprocess.Popen(
            [*_tether(), "serve", "--db", db, "--port", str(port)],
            cwd=folder,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TETHER_MAX_CONNECTIONS_PER_ADDRESS": "256"},
        )
        try:
            for _ in range(100):
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                    break
                time.sleep(0.1)
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                result = runner.run(_soak(port, honest_key, hostile_key, minutes, args.load))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(60)
        honest: Tally = result["honest"]
        stored = _stored(db, honest.ids)
        verify = subprocess.run(
            [*_tether(), "audit", "verify", "--db", db, "--json"],
            cwd=folder,
            capture_output=True,
            text=True,
            check=False,
        )
        chain = json.loads(verify.stdout)["records"]["decisions"] if verify.stdout else {}
    latency = honest.latencies
    print(
        f"honest: {len(honest.ids):,} answered 200 of {sum(honest.statuses.values()):,} "
        f"({dict(honest.statuses)}), p50 {_percentile(latency, 50):.1f} ms, "
        f"p99 {_percentile(latency, 99):.1f} ms, max {_percentile(latency, 100):.1f} ms, "
        f"connection errors {honest.errors}"
    )
    answered = len(honest.ids)
    print(f"honest decisions lost: {answered - stored:,} ({stored:,} of {answered:,} stored)")
    print(f"hostile answers by status: {dict(sorted(result['hostile'].statuses.items()))}")
    print(f"slow clients closed by the server: {result['slow'].statuses[0]:,}")
    print(
        f"decision chain: ok={chain.get('ok')} rows={chain.get('rows')} "
        f"broken={chain.get('broken')}"
    )
    return 0 if stored == len(honest.ids) and chain.get("ok") else 1


if __name__ == "__main__":
    raise SystemExit(main())
