"""Access path benchmark: the path of one identity over 1,000,000 stored events.

Generates a store the way a busy tether holds it: ``--identities`` agents (default 1,000),
each with an entitlement, 10 tasks (intent, a root token, and for every other task a token
delegated to the next agent), ``--decisions`` decisions, and ``--events`` events spread
over all identities and interleaved in time, 80 % of them tool calls inside tasks with
parent/child call ids (one in ten by the delegated sub-agent), the rest outside any task.
Rows go straight into the tables in bulk (``executemany`` on SQLite, ``COPY`` on
PostgreSQL); the events' hash chain is not computed (this store is for reading only).

Then ``build_path`` (what ``tether paths`` and ``GET /v1/paths`` call) builds the full
path of identities picked at random, cold once and then ``--runs`` times each; the median
is the figure, against the target of 200 ms. Nothing is asserted.

    .venv/bin/python bench/paths.py [--events 1000000] [--identities 1000] [--db URL]

``--db`` (a PostgreSQL URL, say) must point at an empty store, unless ``--reuse`` says to
time the store a previous run left there; the default is a fresh SQLite file in a
temporary folder, removed at the end.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python bench/paths.py` puts bench/ first on sys.path, where bench/http.py would shadow
# the standard library's `http`.
_ROOT = Path(__file__).resolve().parents[1]
if sys.path and Path(sys.path[0] or ".").resolve() == _ROOT / "bench":
    sys.path[0] = str(_ROOT)

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator, Sequence  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from typing import Any  # noqa: E402

from sqlalchemy import Engine, func, insert, select  # noqa: E402

from tether.paths import build_path  # noqa: E402
from tether.store import migrate  # noqa: E402
from tether.store.engine import open_engine  # noqa: E402
from tether.store.tables import decisions, entitlements, identities  # noqa: E402
from tether.store.telemetry_tables import events  # noqa: E402
from tether.store.token_tables import issued_tokens, tasks  # noqa: E402

TARGET_MS = 200.0
START = datetime(2026, 3, 1, tzinfo=UTC)
SPAN = timedelta(days=1)
TASKS_PER_IDENTITY = 10
IN_TASK = 0.8
EVENT_COLUMNS = (
    "seq",
    "dedupe_key",
    "at",
    "at_is_ingest_time",
    "source",
    "principal_kind",
    "principal_key",
    "identity_id",
    "task_id",
    "token_id",
    "action",
    "resource",
    "resource_type",
    "outcome",
    "tool_name",
    "call_id",
    "parent_call_id",
    "raw",
    "prev_hash",
    "hash",
)
ACTIONS = ("read_invoice", "send_email", "read_table")
FAKE_HASH = "0" * 64


def agent(i: int) -> str:
    return f"agent-{i:04d}"


def task_id(i: int, k: int) -> str:
    return f"t-{i:04d}-{k}"


def jti(i: int, k: int, delegated: bool = False) -> str:
    return f"j-{i:04d}-{k}" + ("-d" if delegated else "")


def seed_estate(engine: Engine, count: int) -> None:
    """Identities, entitlements, tasks and tokens: the structure paths are made of."""
    now = START
    ident_rows, grant_rows, task_rows, token_rows = [], [], [], []
    for i in range(count):
        ident_rows.append(
            {
                "id": agent(i),
                "kind": "agent",
                "workload_class": "agent",
                "owner": "team",
                "workload": f"spiffe://example.org/agents/{agent(i)}",
                "attributes": {},
                "status": "active",
                "origin": "estate",
                "created_at": now,
                "updated_at": now,
            }
        )
        grant_rows.append(
            {
                "id": f"{agent(i)}:1",
                "identity_id": agent(i),
                "actions": ["read_invoice", "send_email"],
                "resources": ["invoice:*", "email:*@example.org"],
                "policy_id": f"entitlement:{agent(i)}:1",
            }
        )
        for k in range(TASKS_PER_IDENTITY):
            opened = START + SPAN * k / TASKS_PER_IDENTITY
            expires = opened + SPAN / TASKS_PER_IDENTITY
            task_rows.append(
                {
                    "id": task_id(i, k),
                    "identity_id": agent(i),
                    "identity_kind": "agent",
                    "workload_class": "agent",
                    "purpose": f"task {k} of {agent(i)}",
                    "intent": {
                        "actions": ["read_invoice", "send_email"],
                        "resources": ["invoice:*", "email:*@example.org"],
                        "data_classes": [],
                    },
                    "status": "open",
                    "opened_at": opened,
                    "expires_at": expires,
                    "opened_by": f"spiffe://example.org/agents/{agent(i)}",
                    "proof_id": f"svid-{i}-{k}",
                }
            )
            base = {
                "task_id": task_id(i, k),
                "identity_id": agent(i),
                "scope": "read_invoice send_email",
                "audience": "tether",
                "kid": "k1",
                "issued_at": opened,
                "expires_at": expires,
            }
            token_rows.append(
                {**base, "jti": jti(i, k), "parent_jti": None, "chain": [], "depth": 0}
            )
            if k % 2:
                token_rows.append(
                    {
                        **base,
                        "jti": jti(i, k, True),
                        "parent_jti": jti(i, k),
                        "chain": [jti(i, k)],
                        "actor_id": agent((i + 1) % count),
                        "depth": 1,
                        "scope": "read_invoice",
                        "issued_at": opened + timedelta(seconds=1),
                    }
                )
    with engine.begin() as connection:
        connection.execute(insert(identities), ident_rows)
        connection.execute(insert(entitlements), grant_rows)
        connection.execute(insert(tasks), task_rows)
        for row in token_rows:
            row.setdefault("actor_id", None)
        connection.execute(insert(issued_tokens), token_rows)


def event_rows(count: int, identities_n: int, seed: int = 11) -> Iterator[tuple[Any, ...]]:
    """``count`` events over the day, each of a random identity (so they interleave)."""
    rng = random.Random(seed)
    step = SPAN / count
    last_call: dict[str, int] = {}
    for seq in range(1, count + 1):
        at = START + step * seq
        i = rng.randrange(identities_n)
        identity, task, token, parent = agent(i), None, None, None
        call = f"c{seq}"
        if rng.random() < IN_TASK:
            k = min(int((at - START) / SPAN * TASKS_PER_IDENTITY), TASKS_PER_IDENTITY - 1)
            task, token = task_id(i, k), jti(i, k)
            if k % 2 and rng.random() < 0.1:  # the sub-agent, with the delegated token
                identity, token = agent((i + 1) % identities_n), jti(i, k, True)
            previous = last_call.get(task)
            if previous is not None and rng.random() < 0.6:
                parent = f"c{previous}"
            last_call[task] = seq
        action = rng.choice(ACTIONS)
        resource = (
            f"invoice:INV-{rng.randrange(500)}"
            if action != "send_email"
            else (f"email:{rng.choice(('ops', 'cfo', 'x'))}@example.org")
        )
        yield (
            seq,
            f"{seq:064x}",
            at,
            False,
            "otel",
            "agent",
            f"spiffe://example.org/agents/{identity}",
            identity,
            task,
            token,
            action,
            resource,
            None,
            "allowed",
            action,
            call,
            parent,
            "{}",
            FAKE_HASH,
            FAKE_HASH,
        )


def _batches(rows: Iterator[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def load_events(engine: Engine, count: int, identities_n: int) -> float:
    """Bulk-insert the events; the seconds it took."""
    started = time.perf_counter()
    names = ", ".join(EVENT_COLUMNS)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "sqlite":
            marks = ", ".join("?" for _ in EVENT_COLUMNS)
            sql = f"INSERT INTO events ({names}) VALUES ({marks})"
            for batch in _batches(event_rows(count, identities_n), 50_000):
                cursor.executemany(
                    sql,
                    [
                        (
                            *row[:2],
                            row[2].replace(tzinfo=None).isoformat(" ", "microseconds"),
                            *row[3:],
                        )
                        for row in batch
                    ],
                )
        else:
            with cursor.copy(f"COPY events ({names}) FROM STDIN") as copy:
                for row in event_rows(count, identities_n):
                    copy.write_row(row)
        raw.commit()
    finally:
        raw.close()
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql("ANALYZE events")
        else:
            connection.exec_driver_sql("ANALYZE")
    return time.perf_counter() - started


def seed_decisions(engine: Engine, count: int, identities_n: int, seed: int = 5) -> None:
    rng = random.Random(seed)
    rows = []
    for n in range(count):
        i = rng.randrange(identities_n)
        at = START + SPAN * rng.random()
        k = min(int((at - START) / SPAN * TASKS_PER_IDENTITY), TASKS_PER_IDENTITY - 1)
        rows.append(
            {
                "decision_id": f"d{n:08d}",
                "at": at,
                "subject_type": "agent",
                "subject_id": agent(i),
                "action": "read_invoice",
                "resource_type": "invoice",
                "resource_id": f"INV-{rng.randrange(500)}",
                "outcome": "allow",
                "decision": True,
                "reasons": [f"entitlement:{agent(i)}:1"],
                "obligations": {},
                "errors": [],
                "context": {"tether": {"task_id": task_id(i, k), "token_jti": jti(i, k)}},
                "duration_us": 100,
            }
        )
    with engine.begin() as connection:
        for start in range(0, len(rows), 20_000):
            connection.execute(insert(decisions), rows[start : start + 20_000])


def time_paths(engine: Engine, names: Sequence[str], runs: int) -> dict[str, Any]:
    """Cold (first) and warm wall-clock times and the warm CPU times of this process, in ms
    (the CPU time shows what the wall clock hides on a machine shared with other work)."""
    cold, warm, cpu = [], [], []
    nodes = calls = 0
    for name in names:
        for run in range(runs + 1):
            started, used = time.perf_counter(), time.process_time()
            path = build_path(engine, name)
            elapsed = (time.perf_counter() - started) * 1000
            if run == 0:
                cold.append(elapsed)
            else:
                warm.append(elapsed)
                cpu.append((time.process_time() - used) * 1000)
        nodes = len(path.nodes)
        calls = sum(1 for n in path.nodes if n.kind == "call")
    return {"cold": cold, "warm": warm, "cpu": cpu, "nodes": nodes, "calls": calls}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--identities", type=int, default=1000)
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--paths", type=int, default=5, help="identities whose path is timed")
    parser.add_argument("--runs", type=int, default=10, help="warm runs per identity")
    parser.add_argument("--db", help="an empty store (default: a temporary SQLite file)")
    parser.add_argument(
        "--reuse", action="store_true", help="time the store at --db as it is (a kept run)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tether-paths-") as folder:
        url = args.db or f"sqlite:///{folder}/tether.db"
        engine = open_engine(url)
        try:
            migrate.upgrade(engine)
            with engine.connect() as connection:
                stored = connection.execute(select(func.count()).select_from(events)).scalar()
            backend = engine.dialect.name
            if stored and not args.reuse:
                print(f"error: the store at {url} already holds events", file=sys.stderr)
                return 2
            if stored:
                print(f"access paths on {backend}: reusing {stored:,} stored events", flush=True)
            else:
                print(f"access paths on {backend}: generating {args.events:,} events over "
                      f"{args.identities:,} identities ...", flush=True)  # fmt: skip
                seed_estate(engine, args.identities)
                seed_decisions(engine, args.decisions, args.identities)
                load_s = load_events(engine, args.events, args.identities)
                print(f"  loaded in {load_s:.1f} s ({args.events / load_s:,.0f} rows/s, bulk)")
            picked = random.Random(3).sample(range(args.identities), args.paths)
            timed = time_paths(engine, [agent(i) for i in picked], args.runs)
        finally:
            engine.dispose()
    warm, cpu = timed["warm"], timed["cpu"]
    median = statistics.median(warm)
    figures = {
        "backend": backend,
        "events": args.events,
        "identities": args.identities,
        "decisions": args.decisions,
        "path_nodes": timed["nodes"],
        "path_calls": timed["calls"],
        "cold_ms": [round(c, 1) for c in timed["cold"]],
        "warm_median_ms": round(median, 1),
        "warm_p90_ms": round(statistics.quantiles(warm, n=10)[-1], 1) if len(warm) > 1 else None,
        "warm_max_ms": round(max(warm), 1),
        "cpu_median_ms": round(statistics.median(cpu), 1),
        "load_average": round(os.getloadavg()[0], 2),
        "target_ms": TARGET_MS,
        "met": median <= TARGET_MS,
    }
    print(
        f"  path of one identity ({timed['nodes']:,} nodes, {timed['calls']:,} calls): median "
        f"{figures['warm_median_ms']} ms, p90 {figures['warm_p90_ms']} ms, max "
        f"{figures['warm_max_ms']} ms over {len(warm)} runs (CPU median "
        f"{figures['cpu_median_ms']} ms, load average {figures['load_average']}); "
        f"cold {figures['cold_ms']} ms"
    )
    verdict = "met" if figures["met"] else "NOT met"
    print(f"  target: path over {args.events:,} events <= {TARGET_MS:.0f} ms: {verdict}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
