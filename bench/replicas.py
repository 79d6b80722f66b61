"""Replicas and the bus: decisions/s of one and of two servers on one PostgreSQL, and
events/s through NATS JetStream with drift workers keeping up (issue 16).

1. **Replicas.** The benchmark estate in a fresh PostgreSQL schema; one server
   (``bench.server:tether_app`` under uvicorn, as ``bench/http.py`` runs it, with its worker
   process) loaded by ``wrk`` with 32 connections on ``/access/v1/evaluation``; then two
   servers on the same store, each loaded by its own ``wrk`` with 16 connections, at the
   same time. Printed: decisions/s of each run, the ratio two/one, p99, every decision
   recorded (rows counted against the answers).
2. **The bus.** A fresh stream; ``--workers`` real ``tether worker --events`` processes on
   the same PostgreSQL; ``--events`` events published (the acknowledged path the server
   uses, :func:`tether.bus.publish_batch`, in batches of 1,000); printed: publish rate,
   how long until every event was examined (``bus_examined``), the examination rate and
   the lag (published - examined) each second.

Nothing is asserted: the targets (two replicas >= 1.7x one; >= 50,000 events/s through
NATS with detection keeping up) are printed as met or NOT met, with the machine's cores
and load average, since on a 2-core machine the servers, their workers, PostgreSQL,
NATS and the load generators share two cores.

    .venv/bin/python -m bench.replicas [--seconds 10] [--events 100000] [--workers 2]
        [--only replicas|bus] [--postgres URL] [--nats URL]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import func, select

from bench.estate import build_estate, install_estate
from bench.http import EVALUATION, _compact, uvicorn_server
from bench.load import LoadResult, ensure_wrk, run_wrk, wrk_script

ROOT = Path(__file__).resolve().parent.parent
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
NATS = "nats://127.0.0.1:4222"


def fresh_schema(postgres: str) -> str:
    """A new empty schema on the PostgreSQL server; its URL."""
    schema = f"bench_{secrets.token_hex(4)}"
    plain = postgres.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    return f"{postgres}?options=-csearch_path%3D{schema}"


def replica(env: dict[str, str]) -> contextlib.AbstractContextManager[tuple[Any, str]]:
    """One server (unpinned: two replicas share the machine's cores)."""
    return uvicorn_server("bench.server:tether_app", env, pinned=False)


def _wrk(wrk: str, base: str, script: Path, connections: int, seconds: float) -> LoadResult:
    return run_wrk(wrk, base + EVALUATION, script, connections=connections, seconds=seconds)


def count_decisions(url: str) -> int:
    from tether.store.engine import open_engine
    from tether.store.tables import decisions

    engine = open_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(decisions)).scalar())
    finally:
        engine.dispose()


def run_replicas(postgres: str, seconds: float) -> None:
    wrk = ensure_wrk()
    if wrk is None:
        print("replicas: wrk is not available; skipped")
        return
    estate = build_estate()
    url = fresh_schema(postgres)
    authorization = "Bearer " + install_estate(url, estate)
    bodies = [_compact(r.authzen_body()) for r in estate.requests]
    with tempfile.TemporaryDirectory(prefix="tether-bench-replicas-") as folder:
        env = {
            "TETHER_BACKGROUND_WORK": "process",
            "TETHER_DATABASE_URL": url,
            "TETHER_MASTER_KEY_FILE": str(Path(folder) / "master.key"),
        }
        scripts = {}
        for connections in (32, 16):
            scripts[connections] = Path(folder) / f"load-{connections}.lua"
            scripts[connections].write_text(wrk_script(bodies, connections, authorization))
        with replica(env) as (_, base):
            _wrk(wrk, base, scripts[32], 32, 2)  # warm up
            one = _wrk(wrk, base, scripts[32], 32, seconds)
        print(f"  one replica, 32 connections: {one.per_second:,.0f}/s, p99 {one.p99_ms:.1f} ms")
        with (
            replica(env) as (_, base_a),
            replica(env) as (_, base_b),
            ThreadPoolExecutor(2) as pool,
        ):
            list(pool.map(lambda b: _wrk(wrk, b, scripts[16], 16, 2), (base_a, base_b)))
            runs = list(
                pool.map(lambda b: _wrk(wrk, b, scripts[16], 16, seconds), (base_a, base_b))
            )
        both = sum(r.per_second for r in runs)
        p99 = max(r.p99_ms for r in runs)
        print(
            f"  two replicas, 16 connections each: {both:,.0f}/s "
            f"({' + '.join(f'{r.per_second:,.0f}' for r in runs)}), p99 {p99:.1f} ms"
        )
    ratio = both / one.per_second if one.per_second else 0.0
    verdict = "met" if ratio >= 1.7 else "NOT met"
    print(f"  two / one = {ratio:.2f}x (target >= 1.7x: {verdict})")
    print(f"  decisions recorded in the store: {count_decisions(url):,}")


# --- the bus --------------------------------------------------------------------------------


def _bus_estate(folder: Path, identities: int) -> Path:
    lines = ["classes:", "  batch: {mode: monitor}", "identities:"]
    for n in range(identities):
        lines += [
            f"  - id: svc-{n}",
            "    kind: service_account",
            "    class: batch",
            "    owner: team-data",
            "    entitlements:",
            "      - {actions: [read], resources: ['doc:*']}",
        ]
    (folder / "policies").mkdir(parents=True, exist_ok=True)
    (folder / "estate.yaml").write_text("\n".join(lines) + "\n")
    return folder


def _events(count: int, identities: int) -> list[dict[str, Any]]:
    at = datetime.now(UTC).isoformat()
    return [
        {
            "seq": i,
            "at": at,
            "identity_id": f"svc-{i % identities}",
            "action": "delete" if i % 100 == 0 else "read",
            "resource": f"doc:{i}",
            "resource_type": "doc",
            "outcome": "allowed",
        }
        for i in range(1, count + 1)
    ]


async def _publish(config: Any, rows: list[dict[str, Any]]) -> float:
    import nats

    from tether.bus import EVENT, encode, ensure_stream, publish_batch

    connection = await nats.connect(config.url, connect_timeout=3)
    try:
        js = connection.jetstream()
        await ensure_stream(js, config)
        messages = [encode(EVENT, row) for row in rows]
        start = time.monotonic()
        for first in range(0, len(messages), 1_000):
            await publish_batch(js, config, messages[first : first + 1_000])
        return time.monotonic() - start
    finally:
        await connection.close()


async def _drop(config: Any) -> None:
    import nats

    connection = await nats.connect(config.url, connect_timeout=3)
    js = connection.jetstream()
    for bucket in (config.lease_bucket, config.behaviour_bucket):
        with contextlib.suppress(Exception):
            await js.delete_key_value(bucket)
    with contextlib.suppress(Exception):
        await js.delete_stream(config.stream)
    await connection.close()


def run_bus(postgres: str, nats_url: str, events: int, workers: int) -> None:
    from tether.bus import BusConfig
    from tether.estate import apply_estate
    from tether.store import migrate
    from tether.store.bus_tables import bus_examined
    from tether.store.engine import open_engine

    tag = secrets.token_hex(4)
    config = BusConfig(nats_url, f"TETHER_BENCH{tag}", f"tether_bench{tag}.events", 8)
    url = fresh_schema(postgres)
    engine = open_engine(url)
    migrate.upgrade(engine)
    identities = 100
    with tempfile.TemporaryDirectory(prefix="tether-bench-bus-") as folder:
        apply_estate(engine, _bus_estate(Path(folder) / "estate", identities), actor="bench")
        env = {
            **os.environ,
            "TETHER_EVENTS_STREAM": config.stream,
            "TETHER_EVENTS_SUBJECT": config.subject,
            "TETHER_EVENTS_PARTITIONS": str(config.partitions),
            "TETHER_MASTER_KEY_FILE": str(Path(folder) / "master.key"),
        }
        tether = str(Path(sys.executable).parent / "tether")
        command = [tether, "worker", "--events", nats_url, "--db", url]
        processes = [
            subprocess.Popen([*command, "--name", f"bench-w{n}"], env=env, cwd=folder)
            for n in range(workers)
        ]
        try:
            time.sleep(3)  # the workers claim their partitions
            rows = _events(events, identities)
            started = time.monotonic()
            published_s = asyncio.run(_publish(config, rows))
            print(
                f"  published {events:,} events in {published_s:.1f} s: "
                f"{events / published_s:,.0f}/s"
            )
            examined = 0
            lags: list[int] = []
            while examined < events and time.monotonic() - started < 600:
                time.sleep(1.0)
                with engine.connect() as connection:
                    examined = int(
                        connection.execute(select(func.count()).select_from(bus_examined)).scalar()
                    )
                published = events if time.monotonic() - started >= published_s else examined
                lags.append(published - examined)
            took = time.monotonic() - started
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=30)
            asyncio.run(_drop(config))
            engine.dispose()
    rate = examined / took if took else 0.0
    print(
        f"  {workers} workers examined {examined:,} in {took:.1f} s from the first publish: "
        f"{rate:,.0f}/s; lag each second: {lags[:12]}{' ...' if len(lags) > 12 else ''}"
    )
    verdict = "met" if min(rate, events / published_s) >= 50_000 else "NOT met"
    print(f"  target >= 50,000 events/s through NATS, detection keeping up: {verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", choices=("replicas", "bus"))
    parser.add_argument("--postgres", default=os.environ.get("BENCH_POSTGRES_URL", POSTGRES))
    parser.add_argument("--nats", default=os.environ.get("BENCH_NATS_URL", NATS))
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    print(f"replicas and bus: {os.cpu_count()} cores, load average {load:.1f} at start")
    if args.only in (None, "replicas"):
        run_replicas(args.postgres, args.seconds)
    if args.only in (None, "bus"):
        run_bus(args.postgres, args.nats, args.events, args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
