"""CPU per event of each stage of the bus, one stage at a time (issue 16).

``bench/replicas.py --only bus`` runs the stages at once and reports what they took
together; on a machine where they share two cores with other work that says little about
which stage bounds the rate. Here each stage runs alone in this process on ``--events``
events (100 identities, one in a hundred out of its entitlement), and its CPU is counted
from ``time.process_time`` (this process) and ``/proc/<pid>/stat`` (the NATS server):

1. encode: the bus message of a row (orjson, SHA-256), as the server's publisher does;
2. publish: nats-py ``publish_async`` with every acknowledgement awaited
   (:func:`tether.bus.send_batch`, batches of 1,000, four in flight), and the NATS server's
   share;
3. consume: a worker's side of NATS as :class:`tether.bus.DriftWorker` does it: a
   :class:`~tether.bus._fetch.PullFetcher` a partition, batches of 1,000, decode, the
   stream sequence read from the ack subject, explicit acks one by one, one flush a batch;
   and the NATS server's share. For reference (not summed) the same through nats-py's
   ``PullSubscription.fetch`` and ``Msg.metadata``, the worker's path before the fetcher,
   on a second set of consumers of the same stream;
4. examine: :meth:`tether.bus.Examiner.examine_partitions` on 1,000-event batches from
   the 8 partitions on a fresh PostgreSQL schema: the dedupe lookup, the drift engine's
   detection step (``DriftEngine.examine``, findings stored) and the write of the hashes;
   and PostgreSQL's CPU meanwhile (all its processes: other work on the server counts too).

The sum says how many events a second one core gives, and so how many cores a target needs.

    PYTHONPATH=$PWD/src .venv/bin/python bench/bus_costs.py [--events 50000]
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python bench/bus_costs.py` puts bench/ first on sys.path, where bench/http.py would
# shadow the standard library's `http` (and `bench` itself would not be found).
_ROOT = Path(__file__).resolve().parents[1]
if sys.path and Path(sys.path[0] or ".").resolve() == _ROOT / "bench":
    sys.path[0] = str(_ROOT)

import argparse  # noqa: E402
import asyncio  # noqa: E402
import contextlib  # noqa: E402
import os  # noqa: E402
import secrets  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

from bench.replicas import (  # noqa: E402
    NATS,
    POSTGRES,
    _bus_estate,
    _cpu_s,
    _events,
    _pids,
    fresh_schema,
)

#: Consume stages' names: the worker's path (summed) and nats-py's fetch (reference).
CONSUME = "consume: PullFetcher, decode, ack"
REFERENCE = "reference: consume with nats-py fetch"

PARTITIONS = 8


async def _nats_stages(config: Any, messages: list[Any]) -> dict[str, float]:
    import nats

    from tether.bus import ensure_stream, send_batch

    server = _pids("nats-server")[0]
    connection = await nats.connect(config.url, connect_timeout=3)
    js = connection.jetstream()
    costs: dict[str, float] = {}
    try:
        await ensure_stream(js, config)
        cpu, served = time.process_time(), _cpu_s(server)
        in_flight: list[asyncio.Future[None]] = []
        for first in range(0, len(messages), 1_000):
            in_flight.append(await send_batch(js, config, messages[first : first + 1_000]))
            if len(in_flight) >= 4:
                await in_flight.pop(0)
        for acknowledged in in_flight:
            await acknowledged
        costs["publish (nats-py)"] = time.process_time() - cpu
        costs["publish (NATS server)"] = _cpu_s(server) - served
        cpu, served = time.process_time(), _cpu_s(server)
        await _consume_with_fetchers(connection, js, config, len(messages))
        costs[CONSUME] = time.process_time() - cpu
        costs[CONSUME.split(":")[0] + " (NATS server)"] = _cpu_s(server) - served
        cpu, served = time.process_time(), _cpu_s(server)
        await _consume_with_nats_py_fetch(connection, js, config, len(messages))
        costs[REFERENCE] = time.process_time() - cpu
        costs[f"{REFERENCE} (NATS server)"] = _cpu_s(server) - served
        await js.delete_stream(config.stream)
    finally:
        await connection.close()
    return costs


async def _consume_with_fetchers(connection: Any, js: Any, config: Any, count: int) -> None:
    """What DriftWorker._consume does with each batch, less the examining."""
    from tether.bus import decode
    from tether.bus._fetch import PullFetcher, delivery_of
    from tether.bus._nats import ensure_consumer

    async with contextlib.AsyncExitStack() as fetchers:
        pulled = []
        for partition in range(config.partitions):
            durable = await ensure_consumer(js, config, partition)
            fetcher = PullFetcher(connection, config.stream, durable)
            pulled.append(await fetchers.enter_async_context(fetcher))
        got = 0
        while got < count:
            for fetcher in pulled:
                fetched = await fetcher.fetch(1_000, 0.5)
                for message in fetched:
                    decode(message.data)
                    _ = delivery_of(message.reply).stream_seq
                for message in fetched:
                    await message.ack()
                await connection.flush()
                got += len(fetched)


async def _consume_with_nats_py_fetch(connection: Any, js: Any, config: Any, count: int) -> None:
    """The worker's path before PullFetcher, on consumers of its own (``…_ref_p<n>``)."""
    import nats

    from tether.bus import decode
    from tether.bus._nats import consumer_config

    subscriptions = []
    for partition in range(config.partitions):
        durable = f"{config.stream}_ref_p{partition}"
        await js.add_consumer(config.stream, consumer_config(config, partition, durable))
        subscriptions.append(await js.pull_subscribe_bind(durable=durable, stream=config.stream))
    got = 0
    while got < count:
        for subscription in subscriptions:
            try:
                fetched = await subscription.fetch(batch=1_000, timeout=0.5)
            except (nats.errors.TimeoutError, TimeoutError):
                continue
            for message in fetched:
                decode(message.data)
                _ = message.metadata.sequence.stream
            for message in fetched:
                await message.ack()
            await connection.flush()
            got += len(fetched)
    for subscription in subscriptions:
        await subscription.unsubscribe()


def _examine_stage(messages: list[Any], partition_of: Any) -> dict[str, float]:
    from tether.bus import Examiner
    from tether.composition import build_core, drift_engine
    from tether.config import load_settings
    from tether.estate import apply_estate
    from tether.store import migrate
    from tether.store.engine import open_engine

    url = fresh_schema(POSTGRES)
    engine = open_engine(url)
    migrate.upgrade(engine)
    with tempfile.TemporaryDirectory(prefix="tether-bench-bus-costs-") as folder:
        apply_estate(engine, _bus_estate(Path(folder) / "estate", 100), actor="bench")
        os.environ["TETHER_MASTER_KEY_FILE"] = str(Path(folder) / "master.key")
        core = build_core(load_settings(database_url=url))
        drift = drift_engine(core, {}, tail_events=False)
        drift.start(background=False)
        examiner = Examiner(core.store, drift, worker="bench")
        by_partition: dict[int, list[tuple[int, Any]]] = {}
        for seq, message in enumerate(messages, 1):
            by_partition.setdefault(partition_of(message.identity_id), []).append((seq, message))
        rounds = [
            [(p, batch[first : first + 1_000]) for p, batch in sorted(by_partition.items())]
            for first in range(0, max(len(b) for b in by_partition.values()), 1_000)
        ]
        detecting = 0.0
        engine_examine = drift.examine

        def timed(items: Any) -> Any:
            nonlocal detecting
            started = time.process_time()
            try:
                return engine_examine(items)
            finally:
                detecting += time.process_time() - started

        drift.examine = timed  # type: ignore[method-assign]
        postgres = {pid: _cpu_s(pid) for pid in _pids("postgres")}
        cpu = time.process_time()
        for batches in rounds:
            examiner.examine_partitions(batches)
        total = time.process_time() - cpu
        served = sum(_cpu_s(pid) - postgres.get(pid, 0.0) for pid in _pids("postgres"))
        drift.stop()
        core.close()
    engine.dispose()
    return {
        "examine: detection (DriftEngine.examine)": detecting,
        "examine: dedupe lookup and hashes written": total - detecting,
        "examine (PostgreSQL, every backend: shared)": served,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--nats", default=os.environ.get("BENCH_NATS_URL", NATS))
    args = parser.parse_args(argv)
    from tether.bus import EVENT, BusConfig, encode

    print(f"bus costs: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    tag = secrets.token_hex(4)
    config = BusConfig(args.nats, f"TETHER_COSTS{tag}", f"tether_costs{tag}.events", PARTITIONS)
    rows = _events(args.events, 100)
    cpu = time.process_time()
    messages = [encode(EVENT, row) for row in rows]
    costs = {"encode (publisher)": time.process_time() - cpu}
    costs.update(asyncio.run(_nats_stages(config, messages)))
    costs.update(_examine_stage(messages, config.partition_of))
    total = 0.0
    for stage, seconds in costs.items():
        per = seconds * 1e6 / args.events
        if not stage.startswith(REFERENCE):  # the path the worker no longer takes
            total += per
        print(f"  {stage:<52} {per:7.1f} us/event")
    print(f"  {'all stages':<52} {total:7.1f} us/event: {1e6 / total:,.0f} events/s a core")
    print(
        f"  50,000 events/s would need {50_000 * total / 1e6:.1f} cores "
        f"(load average {os.getloadavg()[0]:.1f} at the end)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
