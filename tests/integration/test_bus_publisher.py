"""The server's publisher on a real NATS JetStream: batches in flight, none dropped.

:class:`~tether.bus.EventPublisher` sends several batches before their acknowledgements
come back. Here the stream disappears while batches are on their way (the test deletes it):
every one of them fails, none may count as published, and once the stream is back every
event submitted after the deletion is in it, once each and in the order submitted. The
test FAILS with the reason when NATS is not reachable at 127.0.0.1:4222.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time

import nats
import pytest

from tether.bus import BusConfig, EventPublisher, decode, ensure_stream
from tether.bus._publisher import BATCH, IN_FLIGHT

NATS_URL = os.environ.get("TETHER_TEST_NATS_URL", "nats://127.0.0.1:4222")


def _row(seq: int) -> dict[str, object]:
    return {"seq": seq, "identity_id": f"svc-{seq % 7}", "action": "read", "outcome": "allowed"}


async def _stream_seqs(config: BusConfig) -> list[int]:
    """The ``seq`` of every event in the stream, in stream order."""
    connection = await nats.connect(config.url, connect_timeout=3)
    try:
        js = connection.jetstream()
        info = await js.stream_info(config.stream)
        subscription = await js.pull_subscribe(config.subjects, stream=config.stream)
        seqs: list[int] = []
        while len(seqs) < info.state.messages:
            for message in await subscription.fetch(batch=1_000, timeout=2):
                seqs.append(int(decode(message.data).row["seq"]))
                await message.ack()
        return seqs
    finally:
        await connection.close()


async def _call(config: BusConfig, what: str) -> None:
    connection = await nats.connect(config.url, connect_timeout=3)
    try:
        js = connection.jetstream()
        if what == "delete":
            await js.delete_stream(config.stream)
        else:
            await ensure_stream(js, config)
    finally:
        await connection.close()


@pytest.fixture
def config() -> object:
    tag = secrets.token_hex(4)
    made = BusConfig(NATS_URL, f"TETHER_TEST{tag}", f"tether_test{tag}.events", 4)
    try:
        asyncio.run(_call(made, "create"))
    except Exception as exc:
        pytest.fail(f"NATS JetStream is required at {NATS_URL} ({exc!r})", pytrace=False)
    yield made
    with contextlib.suppress(Exception):
        asyncio.run(_call(made, "delete"))


def test_batches_failed_in_flight_are_published_again_in_order_and_never_counted_lost(
    config: BusConfig,
) -> None:
    publisher = EventPublisher(config)
    publisher.start()
    try:
        before = 2 * BATCH
        for seq in range(1, before + 1):
            publisher.submit_event(_row(seq))
        assert publisher.flush(20.0)
        assert publisher.published == before
        asyncio.run(_call(config, "delete"))
        after = (IN_FLIGHT + 2) * BATCH + 17  # more than fits in flight at once
        for seq in range(before + 1, before + after + 1):
            publisher.submit_event(_row(seq))
        deadline = time.monotonic() + 10
        while publisher.problem is None:
            assert time.monotonic() < deadline, "publishing to a deleted stream never failed"
            time.sleep(0.01)
        assert publisher.published == before  # no failed batch counted
        asyncio.run(_call(config, "create"))
        assert publisher.flush(30.0), "the failed batches were not published again"
        assert publisher.published == before + after
        assert publisher.problem is None
        assert publisher.dropped == 0
    finally:
        publisher.close()
    assert asyncio.run(_stream_seqs(config)) == list(range(before + 1, before + after + 1))
