"""Replicas and the bus: decisions/s of one and of two servers on one PostgreSQL, and
events/s through NATS JetStream with drift workers keeping up (issue 16).

1. **Replicas.** The benchmark estate in a fresh PostgreSQL schema; one server
   (``bench.server:tether_app`` under uvicorn, as ``bench/http.py`` runs it, with its worker
   process) loaded by ``wrk`` with 32 connections on ``/access/v1/evaluation``; then two
   servers on the same store, each loaded by its own ``wrk`` with 16 connections, at the
   same time. Printed: decisions/s of each run, the ratio two/one, p99, every decision
   recorded (rows counted against the answers).
2. **The bus.** A fresh stream; ``--workers`` real ``tether worker --events`` processes on
   the same PostgreSQL, started and holding every partition before the clock starts;
   ``--events`` events submitted at once to the server's publisher
   (:class:`tether.bus.EventPublisher`: batches of 1,000, four in flight, each counted
   once acknowledged); printed: publish rate, how long until every event was examined
   (``bus_examined``), the examination rate, the lag (acknowledged - examined) twice a
   second, and CPU per event of the publishing thread, the workers, the NATS server and
   PostgreSQL (``/proc``; the last two serve other work too). ``--profile DIR`` runs the
   workers under cProfile (their loop thread only). ``bench/bus_costs.py`` measures each
   stage alone.

Nothing is asserted: the targets (two replicas >= 1.7x one; >= 50,000 events/s through
NATS with detection keeping up) are printed as met or NOT met, with the machine's cores
and load average, since on a 2-core machine the servers, their workers, PostgreSQL,
NATS and the load generators share two cores.

    .venv/bin/python -m bench.replicas [--seconds 10] [--events 100000] [--workers 2]
        [--only replicas|bus] [--postgres URL] [--nats URL] [--profile DIR]
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


def _cpu_s(pid: int) -> float:
    """User and system CPU seconds of a process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pids(name: str) -> list[int]:
    found = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True).stdout
    return [int(pid) for pid in found.split()]


async def _claimed(config: Any, timeout_s: float = 120.0) -> None:
    """Wait until the workers hold every partition (they take seconds to start)."""
    import nats

    from tether.bus._nats import lease_bucket

    connection = await nats.connect(config.url, connect_timeout=3)
    try:
        kv = await lease_bucket(connection.jetstream(), config)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):  # no keys yet
                held = [k for k in await kv.keys() if k.startswith("p.")]
                if len(held) == config.partitions:
                    return
            await asyncio.sleep(0.2)
        raise RuntimeError(f"the workers did not claim {config.partitions} partitions")
    finally:
        await connection.close()


async def _drop(config: Any) -> None:
    import nats

    connection = await nats.connect(config.url, connect_timeout=3)
    js = connection.jetstream()
    for bucket in (config.lease_bucket, config.behaviour_bucket):
        with contextlib.suppress(Exception):
            writes = (await js.stream_info(f"KV_{bucket}")).state.last_seq
            print(f"  key-value bucket {bucket}: {writes:,} writes")
        with contextlib.suppress(Exception):
            await js.delete_key_value(bucket)
    with contextlib.suppress(Exception):
        await js.delete_stream(config.stream)
    await connection.close()


def _worker_command(tether: str, profile: Path | None, n: int) -> list[str]:
    if profile is None:
        return [tether]
    return [sys.executable, "-m", "cProfile", "-o", str(profile / f"worker-{n}.prof"), tether]


def run_bus(
    postgres: str, nats_url: str, events: int, workers: int, profile: Path | None = None
) -> None:
    from tether.bus import BusConfig, EventPublisher
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
        args = ["worker", "--events", nats_url, "--db", url]
        processes = [
            subprocess.Popen(
                [*_worker_command(tether, profile, n), *args, "--name", f"bench-w{n}"],
                env=env,
                cwd=folder,
            )
            for n in range(workers)
        ]
        publisher = EventPublisher(config)
        try:
            asyncio.run(_claimed(config))
            rows = _events(events, identities)
            nats_pids, postgres_pids = _pids("nats-server"), _pids("postgres")
            others = [*nats_pids, *postgres_pids]
            workers_cpu = [_cpu_s(p.pid) for p in processes]
            others_cpu = {pid: _cpu_s(pid) for pid in others}
            publisher.start()
            # (main before this bench's publisher figures has no cpu_seconds: 0 there)
            cpu_seconds = getattr(publisher, "cpu_seconds", lambda: 0.0)
            publisher_cpu = cpu_seconds()
            started = time.monotonic()
            for row in rows:
                publisher.submit_event(row)
            published_s = examined_s = 0.0
            examined, timeline = 0, []
            while examined < events and time.monotonic() - started < 600:
                time.sleep(0.5)
                published = publisher.published
                now = time.monotonic() - started
                if published >= events and not published_s:
                    published_s = now
                    publisher_cpu = cpu_seconds() - publisher_cpu
                with engine.connect() as connection:
                    examined = int(
                        connection.execute(
                            select(func.count()).select_from(bus_examined)
                        ).scalar_one()
                    )
                timeline.append((now, published, examined))
            examined_s = time.monotonic() - started
            workers_cpu = [
                _cpu_s(p.pid) - cpu for p, cpu in zip(processes, workers_cpu, strict=True)
            ]
            others_cpu = {pid: _cpu_s(pid) - cpu for pid, cpu in others_cpu.items()}
        finally:
            publisher.close()
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=60)
            asyncio.run(_drop(config))
            engine.dispose()
    published_s = published_s or examined_s
    print(f"  published {events:,} events in {published_s:.1f} s: {events / published_s:,.0f}/s")
    rate = examined / examined_s if examined_s else 0.0
    print(
        f"  {workers} workers examined {examined:,} in {examined_s:.1f} s from the first "
        f"publish: {rate:,.0f}/s"
    )
    print("  lag over time (acknowledged by the stream - examined; below 0 while a batch is")
    print("  examined before its acknowledgements are back at the publisher):")
    for at, published, seen in timeline[:: max(1, len(timeline) // 24)]:
        print(
            f"    {at:5.1f} s  acknowledged {published:>9,}  examined {seen:>9,}"
            f"  lag {published - seen:>8,}"
        )
    per = 1e6 / max(1, examined)
    print(
        f"  CPU per event: publisher thread {publisher_cpu * 1e6 / events:.1f} us; "
        f"workers {sum(workers_cpu) * per:.1f} us "
        f"({', '.join(f'{c:.1f} s' for c in workers_cpu)}); "
        f"nats-server {sum(others_cpu[p] for p in nats_pids) * per:.1f} us; "
        f"PostgreSQL (every backend, shared) "
        f"{sum(others_cpu[p] for p in postgres_pids) * per:.1f} us"
    )
    verdict = "met" if min(rate, events / published_s) >= 50_000 else "NOT met"
    print(f"  target >= 50,000 events/s through NATS, detection keeping up: {verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", choices=("replicas", "bus"))
    parser.add_argument(
        "--profile", type=Path, help="run the bus workers under cProfile, stats into this folder"
    )
    parser.add_argument("--postgres", default=os.environ.get("BENCH_POSTGRES_URL", POSTGRES))
    parser.add_argument("--nats", default=os.environ.get("BENCH_NATS_URL", NATS))
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    print(f"replicas and bus: {os.cpu_count()} cores, load average {load:.1f} at start")
    if args.only in (None, "replicas"):
        run_replicas(args.postgres, args.seconds)
    if args.only in (None, "bus"):
        run_bus(args.postgres, args.nats, args.events, args.workers, args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
