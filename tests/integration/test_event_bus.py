"""Drift workers on a real NATS JetStream (issue 16, part 2): a worker killed mid-stream.

Two real ``tether worker --events`` processes share the partitions of a fresh stream on the
NATS server at 127.0.0.1:4222 (the test FAILS with the reason when it is not reachable)
and one real PostgreSQL store. 100,000 small events are published in batches, one in ten
outside its identity's entitlement; one worker is SIGKILLed while the stream is being
examined. The test then counts: every event examined exactly once (``bus_examined``), each
partition examined in stream order, every out-of-entitlement event found once and no other
finding, and the killed worker's partitions finished by the survivor.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tether.bus import EVENT, BusConfig, encode, ensure_stream, publish_batch
from tether.estate import apply_estate
from tether.store import migrate
from tether.store.bus_tables import bus_examined
from tether.store.drift_tables import findings
from tether.store.engine import open_engine

pytestmark = pytest.mark.slow

NATS_URL = os.environ.get("TETHER_TEST_NATS_URL", "nats://127.0.0.1:4222")
EVENTS = 100_000
IDENTITIES = 40
PARTITIONS = 8
KILL_AFTER = 30_000  # examined events
MAPPING = {"at": "at", "principal": "agent", "action": "action", "resource": "resource"}
TETHER = str(Path(sys.executable).parent / "tether")


def _estate(folder: Path) -> Path:
    (folder / "policies").mkdir(parents=True, exist_ok=True)
    identities = "".join(
        f"""\
  - id: svc-{n}
    kind: service_account
    class: batch
    owner: team-data
    entitlements:
      - actions: [read]
        resources: ["doc:*"]
"""
        for n in range(IDENTITIES)
    )
    (folder / "estate.yaml").write_text(
        textwrap.dedent("""\
            classes:
              batch: {mode: monitor}
            identities:
            """)
        + identities
    )
    return folder


def _rows() -> list[dict[str, Any]]:
    at = datetime.now(UTC).isoformat()
    return [
        {
            "seq": i,
            "at": at,
            "identity_id": f"svc-{i % IDENTITIES}",
            "action": "delete" if i % 10 == 0 else "read",
            "resource": f"doc:{i}",
            "resource_type": "doc",
            "outcome": "allowed",
        }
        for i in range(1, EVENTS + 1)
    ]


async def _publish(config: BusConfig, rows: list[dict[str, Any]]) -> None:
    import nats

    try:
        connection = await nats.connect(config.url, connect_timeout=3, max_reconnect_attempts=0)
    except Exception as exc:
        pytest.fail(f"NATS JetStream is required at {config.url} ({exc!r})", pytrace=False)
    try:
        js = connection.jetstream()
        await ensure_stream(js, config)  # as `tether serve --events` does at start
        messages = [encode(EVENT, row) for row in rows]
        # The first batch through the acknowledged path the server uses, the rest as plain
        # NATS publishes to the stream's subjects (no per-message acknowledgement: fast),
        # then the stream is asked how many it holds.
        await publish_batch(js, config, messages[:1_000])
        for m in messages[1_000:]:
            subject = config.subject_of(config.partition_of(m.identity_id))
            await connection.publish(subject, m.payload, headers={"Nats-Msg-Id": m.hash})
        await connection.flush()
        deadline = time.monotonic() + 10
        while (await js.stream_info(config.stream)).state.messages < len(messages):
            assert time.monotonic() < deadline, "the stream did not store every event"
            await asyncio.sleep(0.05)
    finally:
        await connection.close()


async def _drop_stream(config: BusConfig) -> None:
    import nats

    connection = await nats.connect(config.url, connect_timeout=3)
    js = connection.jetstream()
    buckets = (config.lease_bucket, config.behaviour_bucket)
    for drop in (js.delete_stream(config.stream), *map(js.delete_key_value, buckets)):
        with contextlib.suppress(Exception):  # never created
            await drop
    await connection.close()


def _worker(name: str, db_url: str, env: dict[str, str], folder: Path) -> subprocess.Popen[bytes]:
    with (folder / f"{name}.log").open("wb") as log:
        return subprocess.Popen(
            [
                str(Path(sys.executable).parent / "tether"),
                "worker",
                "--events",
                NATS_URL,
                "--db",
                db_url,
                "--name",
                name,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=folder,
            env={**os.environ, **env},
        )


def _count(engine: Any, query: Any) -> int:
    with engine.connect() as connection:
        return int(connection.execute(query).scalar() or 0)


def test_a_killed_worker_loses_no_event_and_none_is_examined_twice(
    module_postgres_url: str, tmp_path: Path, figure: Any
) -> None:
    tag = secrets.token_hex(4)
    config = BusConfig(NATS_URL, f"TETHER_T{tag}", f"tether_t{tag}.events", PARTITIONS)
    env = {
        "TETHER_EVENTS_STREAM": config.stream,
        "TETHER_EVENTS_SUBJECT": config.subject,
        "TETHER_EVENTS_PARTITIONS": str(PARTITIONS),
        "TETHER_MASTER_KEY_FILE": str(tmp_path / "master.key"),
    }
    engine = open_engine(module_postgres_url)
    migrate.upgrade(engine)
    apply_estate(engine, _estate(tmp_path / "estate"), actor="tests")
    rows = _rows()
    workers = {name: _worker(name, module_postgres_url, env, tmp_path) for name in ("w1", "w2")}
    try:
        start = time.monotonic()
        asyncio.run(_publish(config, rows))
        published_s = time.monotonic() - start
        examined = select(func.count()).select_from(bus_examined)
        deadline = time.monotonic() + 90  # a loaded CI machine examines slower
        while _count(engine, examined) < KILL_AFTER:
            assert time.monotonic() < deadline, "workers examined too little"
            for name, process in workers.items():
                assert process.poll() is None, (tmp_path / f"{name}.log").read_text()
            time.sleep(0.05)
        workers["w1"].send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        at_kill = _count(engine, examined)
        while _count(engine, examined) < EVENTS:
            assert time.monotonic() < deadline, (
                f"{_count(engine, examined)} of {EVENTS} examined:\n"
                + (tmp_path / "w2.log").read_text()[-3000:]
            )
            time.sleep(0.1)
        took = time.monotonic() - start
        time.sleep(1.0)  # anything examined twice would arrive now
        with engine.connect() as connection:
            total, hashes, stream_seqs = connection.execute(
                select(
                    func.count(),
                    func.count(func.distinct(bus_examined.c.event_hash)),
                    func.count(func.distinct(bus_examined.c.stream_seq)),
                )
            ).one()
            order = connection.execute(
                select(bus_examined.c.partition, bus_examined.c.stream_seq).order_by(
                    bus_examined.c.seq
                )
            ).all()
            after_kill = set(
                connection.execute(
                    select(bus_examined.c.partition, bus_examined.c.worker).where(
                        bus_examined.c.examined_at
                        > select(func.max(bus_examined.c.examined_at))
                        .where(bus_examined.c.worker == "w1")
                        .scalar_subquery()
                    )
                ).all()
            )
            by_w1 = dict(
                connection.execute(
                    select(bus_examined.c.partition, func.count())
                    .where(bus_examined.c.worker == "w1")
                    .group_by(bus_examined.c.partition)
                ).all()
            )
            w1_partitions = set(by_w1)
            found = connection.execute(select(findings.c.detector, findings.c.resource)).all()
        assert (total, hashes, stream_seqs) == (EVENTS, EVENTS, EVENTS)
        last: dict[int, int] = {}
        for partition, stream_seq in order:  # each partition examined in stream order
            assert stream_seq > last.get(partition, 0), (partition, stream_seq)
            last[partition] = stream_seq
        assert w1_partitions, "the killed worker held no partition"
        # Those of its partitions it had not finished when killed went on at w2.
        per_partition = Counter(config.partition_of(str(r["identity_id"])) for r in rows)
        unfinished = {p for p in w1_partitions if by_w1[p] < per_partition[p]}
        assert unfinished, "the killed worker had finished its partitions: killed too late"
        assert {p for p, w in after_kill if w == "w2"} >= unfinished, "not taken over"
        expected = {r["resource"] for r in rows if r["action"] == "delete"}
        assert sorted(d for d, _ in found) == ["out_of_entitlement"] * len(expected)
        assert {ref for _, ref in found} == expected
    finally:
        for process in workers.values():
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=20)
        engine.dispose()
        asyncio.run(_drop_stream(config))
    figure(
        f"bus: {EVENTS:,} events published in {published_s:.1f} s, all examined once in "
        f"{took:.1f} s; w1 SIGKILLed at {at_kill:,} examined, its partitions "
        f"{sorted(w1_partitions)} finished by w2 ({time.monotonic() - killed_at:.1f} s after)"
    )


def test_serve_with_events_publishes_its_decisions_and_stored_events(
    server_factory: Any, module_postgres_url: str, estate_writer: Any, tmp_path: Path
) -> None:
    tag = secrets.token_hex(4)
    config = BusConfig(NATS_URL, f"TETHER_S{tag}", f"tether_s{tag}.events", 4)
    env = {
        "TETHER_EVENTS_STREAM": config.stream,
        "TETHER_EVENTS_SUBJECT": config.subject,
        "TETHER_EVENTS_PARTITIONS": "4",
    }
    server = server_factory(
        db_url=module_postgres_url,
        estate=estate_writer(tmp_path / "estate"),
        extra=["--events", NATS_URL],
        env=env,
    )
    request = {
        "subject": {"type": "user", "id": "alice"},
        "action": {"name": "read"},
        "resource": {"type": "doc", "id": "d1"},
    }
    event = {
        "agent": "alice",
        "action": "write",
        "resource": "doc:d2",
        "at": "2026-12-07T08:00:00Z",
    }
    try:
        with server.client() as pep:
            assert pep.post("/access/v1/evaluation", json=request).json()["decision"] is True
        with server.client("admin") as admin:
            ingested = admin.post(
                "/v1/events", json={"source": "jsonl", "mapping": MAPPING, "events": [event]}
            )
        assert ingested.status_code == 200, ingested.text
        kinds = asyncio.run(_kinds_on_stream(config, expected=2))
        assert sorted(kinds) == ["decision", "event"], kinds
    finally:
        server.stop()
        asyncio.run(_drop_stream(config))


# The example's guard on drift: once drift found anything about a subject, it is refused.
_REFUSE_ON_DRIFT = """\
forbid (principal, action, resource)
when { context.tether has behaviour && context.tether.behaviour.drift_score > 0 };
"""


def test_drift_found_by_a_bus_worker_reaches_the_servers_decisions(
    server_factory: Any, postgres_url: str, tmp_path: Path, figure: Any
) -> None:
    """A worker's drift record reaches the server's next decision through the bucket:
    ``svc-0`` is allowed to read until the worker finds its out-of-entitlement write,
    then refused by the policy that reads ``context.tether.behaviour``."""
    tag = secrets.token_hex(4)
    config = BusConfig(NATS_URL, f"TETHER_B{tag}", f"tether_b{tag}.events", 2)
    env = {
        "TETHER_EVENTS_STREAM": config.stream,
        "TETHER_EVENTS_SUBJECT": config.subject,
        "TETHER_EVENTS_PARTITIONS": "2",
    }
    estate = _estate(tmp_path / "estate")
    (estate / "policies" / "drift.cedar").write_text(_REFUSE_ON_DRIFT)
    text = (estate / "estate.yaml").read_text()  # the audit log's principal is svc-0
    (estate / "estate.yaml").write_text(
        text.replace("  - id: svc-0\n", "  - id: svc-0\n    attributes: {principals: [svc-0]}\n")
    )
    server = server_factory(
        db_url=postgres_url, estate=estate, extra=["--events", NATS_URL], env=env
    )
    key_file = server.log_path.parent / ".tether" / "master.key"  # the worker signs as it
    worker = _worker("wb", postgres_url, {**env, "TETHER_MASTER_KEY_FILE": str(key_file)}, tmp_path)
    read = {
        "subject": {"type": "service_account", "id": "svc-0"},
        "action": {"name": "read"},
        "resource": {"type": "doc", "id": "d1"},
    }
    # Observed in an audit log (jsonl): allowed there, outside svc-0's entitlement.
    out_of_entitlement = {
        "agent": "svc-0",
        "action": "delete",
        "resource": "doc:d9",
        "at": datetime.now(UTC).isoformat(),
    }
    try:
        with server.client() as pep, server.client("admin") as admin:
            assert pep.post("/access/v1/evaluation", json=read).json()["decision"] is True
            asyncio.run(_await_leases(config, 2))
            ingested = admin.post(
                "/v1/events",
                json={"source": "jsonl", "mapping": MAPPING, "events": [out_of_entitlement]},
            )
            assert ingested.status_code == 200, ingested.text
            sent = time.monotonic()
            while pep.post("/access/v1/evaluation", json=read).json()["decision"] is True:
                assert worker.poll() is None, (tmp_path / "wb.log").read_text()
                assert time.monotonic() - sent < 20, "the worker's drift record never came"
                time.sleep(0.02)
            took = time.monotonic() - sent
            ready = admin.get("/readyz").json()
        assert ready["event_bus"]["problem"] is None, ready
        assert ready["event_bus"]["dropped"] == 0, ready
        assert ready["event_bus"]["drift_records_caught_up"] is True, ready
    finally:
        worker.terminate()
        worker.wait(timeout=20)
        server.stop()
        asyncio.run(_drop_stream(config))
    figure(f"bus: a worker's drift record refused the server's next decision {took:.2f} s after")


def test_a_fetcher_takes_what_is_there_waits_for_what_comes_and_leaves_the_rest() -> None:
    """The worker's pull requests on the real server: a batch of what is there (the
    request ended by the server's status), none after waiting, one that came meanwhile,
    and what a fetcher left unacknowledged delivered again to the next one."""
    tag = secrets.token_hex(4)
    config = BusConfig(NATS_URL, f"TETHER_F{tag}", f"tether_f{tag}.events", 1)
    asyncio.run(_fetch_in_turn(config))


async def _fetch_in_turn(config: BusConfig) -> None:
    import nats

    from tether.bus._fetch import PullFetcher, delivery_of
    from tether.bus._nats import ACK_WAIT_S, ensure_consumer

    connection = await nats.connect(config.url, connect_timeout=3)
    js = connection.jetstream()
    try:
        await ensure_stream(js, config)
        durable = await ensure_consumer(js, config, 0)
        for n in range(5):
            await js.publish(config.subject_of(0), f"m{n}".encode())
        async with PullFetcher(connection, config.stream, durable) as fetcher:
            first = await fetcher.fetch(3, 0.5)
            rest = await fetcher.fetch(10, 0.5)  # fewer than asked: ended by a 408
            assert [m.data for m in first + rest] == [b"m0", b"m1", b"m2", b"m3", b"m4"]
            assert [delivery_of(m.reply) for m in first] == [(1, 1), (2, 1), (3, 1)]
            for message in first + rest[:1]:
                await message.ack()
            assert await fetcher.fetch(10, 0.2) == []  # a 404, then a request that expired
            waiting = asyncio.create_task(fetcher.fetch(1, 5.0))
            await asyncio.sleep(0.1)
            await js.publish(config.subject_of(0), b"m5")
            late = await asyncio.wait_for(waiting, 2.0)  # as it came, not after 5 s
            assert [(m.data, delivery_of(m.reply).stream_seq) for m in late] == [(b"m5", 6)]
        await asyncio.sleep(ACK_WAIT_S)
        async with PullFetcher(connection, config.stream, durable) as fetcher:
            # m5 was delivered ~0.1 s after m4: its ack wait ends later, so on a loaded
            # machine it may come back in a later fetch than m4 (fetched until both, ≤ 3 s).
            again: list[Any] = []
            deadline = asyncio.get_running_loop().time() + 3.0
            while len(again) < 2 and asyncio.get_running_loop().time() < deadline:
                again += await fetcher.fetch(10, 0.5)
        assert [(m.data, delivery_of(m.reply)) for m in again] == [(b"m4", (5, 2)), (b"m5", (6, 2))]
    finally:
        with contextlib.suppress(Exception):
            await js.delete_stream(config.stream)
        await connection.close()


async def _await_leases(config: BusConfig, partitions: int) -> None:
    """Until the worker holds every partition (it is up and consuming)."""
    import nats
    from nats.js.errors import BucketNotFoundError, NoKeysError

    connection = await nats.connect(config.url, connect_timeout=3)
    try:
        js = connection.jetstream()
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(NoKeysError, BucketNotFoundError):
                kv = await js.key_value(config.lease_bucket)
                if len([k for k in await kv.keys() if k.startswith("p.")]) == partitions:
                    return
            assert time.monotonic() < deadline, "the worker never claimed the partitions"
            await asyncio.sleep(0.05)
    finally:
        await connection.close()


async def _kinds_on_stream(config: BusConfig, *, expected: int) -> list[str]:
    import nats

    from tether.bus import decode

    connection = await nats.connect(config.url, connect_timeout=3)
    try:
        js = connection.jetstream()
        deadline = time.monotonic() + 10
        while (await js.stream_info(config.stream)).state.messages < expected:
            assert time.monotonic() < deadline, "the server published too little"
            await asyncio.sleep(0.05)
        kinds = []
        for seq in range(1, expected + 1):
            message = await js.get_msg(config.stream, seq)
            kinds.append(decode(message.data or b"").kind)
        return kinds
    finally:
        await connection.close()
