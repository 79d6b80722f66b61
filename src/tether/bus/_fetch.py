"""Fetching a JetStream pull consumer's messages in batches, on one subscription.

The JetStream pull protocol (NATS ADR-13): a pull request is a message to
``$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`` whose body is ``{"batch": N,
"no_wait": true}`` or ``{"batch": N, "expires": <nanoseconds>}`` and whose reply subject is
the client's inbox. The server delivers up to N messages there, each with its ack subject
as reply subject, and ends a request it does not fill with a status message (headers only):
404 no messages (``no_wait``), 408 request timeout (expired, or ``no_wait`` after some),
409 conflict (the consumer deleted, its leader changed, too many requests waiting).

Why not nats-py's ``PullSubscription.fetch``: it takes each message with ``next_msg``,
which makes two asyncio tasks a message (a ``wait_for`` inside a task); for 1,000-message
batches that was most of a worker's CPU on the bus. :class:`PullFetcher` takes the
messages in one callback subscription on its own inbox, appending them to a buffer, and a
batch is one future that the last message or the request's status resolves.

The stream sequence of a message is read from its ack subject (:func:`delivery_of`), as
``nats.aio.msg.Msg.Metadata`` does, without building the metadata objects.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import NamedTuple

import nats.errors
import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from tether.bus.errors import BusMessageInvalid, BusUnavailable

#: What the client waits beyond a request's ``expires`` for the server's 408 before it
#: gives the request up (a connection lost meanwhile); messages that still come are kept.
_GRACE_S = 1.0
# Statuses that end a pull request normally; 100 is an idle heartbeat (none is asked for).
_ENDS_REQUEST = frozenset({"404", "408", "409"})
_HEARTBEAT = "100"


class Delivery(NamedTuple):
    """Where a delivered message sits in its stream and how often it was delivered."""

    stream_seq: int
    delivered: int


def delivery_of(ack_subject: str) -> Delivery:
    """The stream sequence and delivery count in a message's ack subject.

    Either ``$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`` or the
    form with domain and account hash, ``$JS.ACK.<domain>.<account hash>.<stream>.
    <consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>[.<random>]`` (as nats-py reads it).

    Raises:
        BusMessageInvalid: not a JetStream ack subject.
    """
    tokens = ack_subject.split(".")
    try:
        if tokens[0] == "$JS" and tokens[1] == "ACK":
            if len(tokens) == 9:
                return Delivery(int(tokens[5]), int(tokens[4]))
            if len(tokens) >= 11:
                return Delivery(int(tokens[7]), int(tokens[6]))
    except (IndexError, ValueError):
        pass
    raise BusMessageInvalid(f"`{ack_subject}` is not a JetStream ack subject")


class PullFetcher:
    """The batches of one durable pull consumer, fetched on this fetcher's own inbox.

    Use as ``async with PullFetcher(connection, stream, consumer) as fetcher``; one
    :meth:`fetch` at a time. Leaving the block unsubscribes: messages delivered but not
    yet fetched are dropped unacknowledged (the server delivers them again after the
    consumer's ack wait).
    """

    def __init__(self, connection: Client, stream: str, consumer: str) -> None:
        self._connection = connection
        self._consumer = consumer
        self._next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._inbox = connection.new_inbox()
        self._subscription: Subscription | None = None
        self._buffer: list[Msg] = []
        # The request in flight: done when the buffer holds `_wanted` or its status came.
        self._request: asyncio.Future[None] | None = None
        self._wanted = 0

    async def __aenter__(self) -> PullFetcher:
        self._subscription = await self._connection.subscribe(self._inbox, cb=self._received)
        return self

    async def __aexit__(self, *_: object) -> None:
        subscription, self._subscription = self._subscription, None
        self._buffer = []
        self._end_request()
        if subscription is not None:
            # Closed or reconnecting, the server has dropped the interest or is never told of
            # it again (an unsubscribed inbox is not subscribed again on reconnecting).
            with contextlib.suppress(nats.errors.Error):
                await subscription.unsubscribe()

    async def fetch(self, batch: int, wait: float) -> list[Msg]:
        """Up to ``batch`` messages: what is there now, else what comes within ``wait``
        seconds (an empty list when nothing did).

        Raises:
            BusUnavailable: the server refused the request (JetStream away, a bad request).
        """
        if self._subscription is None:
            raise RuntimeError("PullFetcher.fetch outside its `async with` block")
        if len(self._buffer) < batch:
            await self._pull({"batch": batch - len(self._buffer), "no_wait": True}, batch, wait)
        if not self._buffer:
            await self._pull({"batch": batch, "expires": int(wait * 1e9)}, batch, wait)
        fetched, self._buffer = self._buffer[:batch], self._buffer[batch:]
        return fetched

    async def _pull(self, request: dict[str, object], wanted: int, wait: float) -> None:
        loop = asyncio.get_running_loop()
        self._wanted = wanted
        done = self._request = loop.create_future()
        timer = loop.call_later(wait + _GRACE_S, self._end_request)
        try:
            await self._connection.publish(
                self._next_subject, orjson.dumps(request), reply=self._inbox
            )
            await done
        finally:
            timer.cancel()
            self._request = None

    def _end_request(self, error: Exception | None = None) -> None:
        done = self._request
        if done is not None and not done.done():
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(error)

    async def _received(self, message: Msg) -> None:
        # Every message runs through here, in the subscription's one task, in the order
        # the server sent them; a status may belong to a request given up on: it ends the
        # current one early, and the next fetch asks again.
        status = message.headers.get("Status") if message.headers else None
        if status is None:
            self._buffer.append(message)
            if len(self._buffer) >= self._wanted:
                self._end_request()
        elif status in _ENDS_REQUEST:
            self._end_request()
        elif status != _HEARTBEAT:
            description = (message.headers or {}).get("Description", "")
            self._end_request(
                BusUnavailable(
                    f"the pull request of consumer `{self._consumer}` was refused: "
                    f"{status} {description}".rstrip()
                )
            )
