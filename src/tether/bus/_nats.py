"""Connecting to NATS and making sure the stream, its consumers and the lease bucket exist.

nats-py (the NATS maintainers' asyncio client) speaks the protocol and JetStream's API;
this module only names what tether needs of it. Everything is idempotent: a stream or
consumer that exists with tether's settings is used as it is, so any number of servers
and workers may start in any order.
"""

from __future__ import annotations

from typing import Any

import nats
from nats.js import JetStreamContext, api
from nats.js.errors import NotFoundError
from nats.js.kv import KeyValue

from tether.bus._stream import DUPLICATE_WINDOW_S, BusConfig
from tether.bus.errors import BusUnavailable

#: How long stream messages are kept (seconds): a week of history to replay or take over.
STREAM_MAX_AGE_S = 7 * 86400.0
#: A delivered message not acknowledged within this many seconds is delivered again.
ACK_WAIT_S = 2.0
#: A partition lease not renewed within this many seconds is free for another worker.
LEASE_TTL_S = 3.0


async def connect(config: BusConfig, *, name: str) -> tuple[Any, JetStreamContext]:
    """A connection (reconnecting for ever once made) and its JetStream context.

    Raises:
        BusUnavailable: the server cannot be reached or has no JetStream.
    """
    try:
        connection = await nats.connect(
            config.url,
            name=name,
            connect_timeout=3,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            allow_reconnect=True,
        )
    except Exception as exc:
        raise BusUnavailable(
            f"cannot reach the NATS server at `{config.url}`: {type(exc).__name__} {exc}"
        ) from None
    js = connection.jetstream()
    try:
        await js.account_info()
    except Exception as exc:
        await connection.close()
        raise BusUnavailable(
            f"the NATS server at `{config.url}` has no JetStream (start it with -js): {exc}"
        ) from None
    return connection, js


async def ensure_stream(js: JetStreamContext, config: BusConfig) -> None:
    try:
        await js.stream_info(config.stream)
    except NotFoundError:
        await js.add_stream(
            api.StreamConfig(
                name=config.stream,
                subjects=[config.subjects],
                retention=api.RetentionPolicy.LIMITS,
                storage=api.StorageType.FILE,
                max_age=STREAM_MAX_AGE_S,
                duplicate_window=DUPLICATE_WINDOW_S,
            )
        )


async def ensure_consumer(js: JetStreamContext, config: BusConfig, partition: int) -> str:
    """The durable pull consumer of one partition. Acks are explicit, one a message: with
    ack policy *all*, a new holder's ack of a later message would also acknowledge what a
    previous holder (one whose lease lapsed while it examined) had fetched and never
    examined to the end, and those events would be lost."""
    durable = config.consumer_of(partition)
    try:
        await js.consumer_info(config.stream, durable)
    except NotFoundError:
        await js.add_consumer(config.stream, consumer_config(config, partition, durable))
    return durable


def consumer_config(config: BusConfig, partition: int, durable: str) -> api.ConsumerConfig:
    """A durable pull consumer named ``durable`` of one partition's subject."""
    return api.ConsumerConfig(
        durable_name=durable,
        filter_subject=config.subject_of(partition),
        deliver_policy=api.DeliverPolicy.ALL,
        ack_policy=api.AckPolicy.EXPLICIT,
        ack_wait=ACK_WAIT_S,
        max_ack_pending=20_000,
    )


async def lease_bucket(js: JetStreamContext, config: BusConfig) -> KeyValue:
    """The key-value bucket of partition leases and worker heartbeats (entries expire)."""
    try:
        return await js.key_value(config.lease_bucket)
    except Exception:  # not there yet
        return await js.create_key_value(
            api.KeyValueConfig(bucket=config.lease_bucket, history=1, ttl=LEASE_TTL_S)
        )
