"""``tether worker --events``: drift detection as durable consumers, partitioned by identity.

Each partition of the stream has one durable pull consumer; a partition is examined by
one worker at a time, the holder of its **lease**: a key ``p.<n>`` in a JetStream
key-value bucket whose entries expire :data:`~tether.bus._nats.LEASE_TTL_S` (3 s) after
their last write. A worker claims a free partition with ``create`` (which fails if the
key exists), renews what it holds every second with ``update`` against the revision it
holds (so a lease another worker took cannot be renewed by accident), and announces
itself with a heartbeat key ``w.<name>``. Each worker aims at a fair share,
``ceil(partitions / live workers)``: one holding more releases partitions (after its
batch in flight is acknowledged), one holding fewer claims free ones. A worker killed
outright stops renewing; its leases and heartbeat expire within 3 s and the others claim
its partitions.

Order and delivery: a partition's holder fetches up to 1,000 messages, examines them in
stream order (:class:`~tether.bus._examiner.Examiner`, which skips events already
examined), then acknowledges each (explicit acks: one holder's ack never covers another's
messages). The batches that all held partitions fetched meanwhile are examined together
(one dedupe lookup, one detection step and one write of hashes for all of them), each
partition's next fetch waiting for its batch to be examined and acknowledged. A claimed
partition resumes after the consumer's acknowledged messages.
Messages the previous holder fetched but never acknowledged are delivered again once
their ack wait (2 s) is over, before any newer message; a new holder that finds such
messages pending waits out the ack wait before its first fetch, so one identity's chain
is examined in stream order. (A holder whose lease lapsed while it examined may leave
messages that come again after newer ones: examined late, never lost.)

Drift records (``context.tether.behaviour``) go back to every server through a second
bucket (:mod:`tether.bus._behaviour`).

Why leases in the key-value bucket: NATS 2.9 (the server here) has no pinned consumers
or consumer-group partition assignment; a lease with TTL needs only JetStream itself, and
``create``/``update`` with the last revision are compare-and-set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import nats.errors
from nats.js.errors import KeyWrongLastSequenceError, NoKeysError

from tether.bus._behaviour import BehaviourSharer, behaviour_bucket, records_of
from tether.bus._examiner import EXAMINED_KEPT, Examiner, prune_examined
from tether.bus._fetch import PullFetcher, delivery_of
from tether.bus._nats import (
    ACK_WAIT_S,
    connect,
    ensure_consumer,
    ensure_stream,
    lease_bucket,
)
from tether.bus._stream import BusConfig, BusMessage, decode
from tether.bus.errors import BusMessageInvalid

log = logging.getLogger(__name__)

BATCH = 1_000
RENEW_EVERY_S = 1.0
FETCH_WAIT_S = 0.5
#: How often a worker deletes the hashes of events examined long ago (bus_examined).
PRUNE_EVERY_S = 600.0


def default_worker_name() -> str:
    host = "".join(c if c.isalnum() or c in "-_" else "-" for c in socket.gethostname())
    return f"{host}-{os.getpid()}"


@dataclass
class _Held:
    """A partition this worker holds: its lease's revision and the task consuming it."""

    partition: int
    revision: int
    task: asyncio.Task[None] | None = None
    releasing: asyncio.Event = field(default_factory=asyncio.Event)


class DriftWorker:
    """Claims partitions, consumes them and examines their events."""

    def __init__(self, config: BusConfig, examiner: Examiner, *, name: str) -> None:
        self.config = config
        self.examiner = examiner
        self.name = name
        self._held: dict[int, _Held] = {}
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="tether-bus-examine")
        self._js: Any = None
        self._connection: Any = None
        self._kv: Any = None
        self._behaviour: Any = None
        self.invalid = 0
        # Fetched batches waiting to be examined: (partition, batch, done when examined).
        self._waiting: asyncio.Queue[
            tuple[int, list[tuple[int, BusMessage]], asyncio.Future[None]]
        ] = asyncio.Queue()
        # What the engine finds goes back to the servers (context.tether.behaviour).
        self.sharer = BehaviourSharer(examiner.board)

    @property
    def partitions(self) -> list[int]:
        return sorted(self._held)

    async def run(self, stop: asyncio.Event) -> None:
        connection, js = await connect(self.config, name=f"tether-worker-{self.name}")
        self._js = js
        self._connection = connection
        background: tuple[asyncio.Task[None], ...] = ()
        try:
            await ensure_stream(js, self.config)
            for partition in range(self.config.partitions):
                await ensure_consumer(js, self.config, partition)
            self._kv = await lease_bucket(js, self.config)
            # Renewing runs on its own: releasing a partition waits for its batch in flight,
            # and the other leases must not expire meanwhile.
            self._behaviour = await behaviour_bucket(js, self.config)
            renewing = asyncio.create_task(self._keep_leases(stop))
            sharing = asyncio.create_task(self.sharer.run(self._behaviour, stop))
            pruning = asyncio.create_task(self._prune(stop))
            examining = asyncio.create_task(self._examine())
            background = (renewing, sharing, pruning, examining)
            while not stop.is_set():
                try:
                    await self._balance()
                except Exception:  # the server away a moment: balance again next round
                    log.exception("balancing partitions failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), RENEW_EVERY_S)
            for held in list(self._held.values()):
                await self._release(held)
            renewing.cancel()
            pruning.cancel()
            examining.cancel()
            await sharing  # the records the last batches made
            await self._kv.delete(f"w.{self.name}")
        finally:
            for task in background:  # when the loop ended by an error
                task.cancel()
            for held in self._held.values():
                if held.task is not None:
                    held.task.cancel()
            await connection.close()
            self._executor.shutdown(wait=True)

    async def _prune(self, stop: asyncio.Event) -> None:
        """Forget the hashes of events examined more than a day ago (every worker may:
        deleting what another deleted deletes nothing)."""
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            try:
                before = datetime.now(UTC) - EXAMINED_KEPT
                store = self.examiner.store
                pruned = await loop.run_in_executor(None, prune_examined, store, before)
                if pruned:
                    log.info("forgot %d examined events older than a day", pruned)
            except Exception:  # the store away a moment: next round
                log.exception("pruning examined events failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PRUNE_EVERY_S)

    # --- leases ----------------------------------------------------------------------------

    async def _keep_leases(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._kv.put(f"w.{self.name}", b"alive")
                await self._renew()
            except Exception:  # the server away a moment: try again next round
                log.exception("renewing leases failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), RENEW_EVERY_S)

    async def _renew(self) -> None:
        for held in list(self._held.values()):
            try:
                held.revision = await self._kv.update(
                    f"p.{held.partition}", self.name.encode(), last=held.revision
                )
            except (KeyWrongLastSequenceError, nats.errors.Error) as exc:
                log.warning("lost the lease of partition %d (%s)", held.partition, exc)
                held.releasing.set()
                if self._held.get(held.partition) is held:
                    del self._held[held.partition]

    async def _balance(self) -> None:
        try:
            workers = [k for k in await self._kv.keys() if k.startswith("w.")]
        except NoKeysError:
            workers = []
        fair = math.ceil(self.config.partitions / max(1, len(workers)))
        while len(self._held) > fair:
            await self._release(self._held[max(self._held)])
        for partition in range(self.config.partitions):
            if len(self._held) >= fair:
                break
            if partition not in self._held:
                await self._claim(partition)

    async def _claim(self, partition: int) -> None:
        try:
            revision = await self._kv.create(f"p.{partition}", self.name.encode())
        except KeyWrongLastSequenceError:
            return  # held by another worker
        # The records the previous holder's findings made (restricted stays restricted).
        try:
            taken = await records_of(
                self._behaviour, lambda i: self.config.partition_of(i) == partition
            )
        except Exception:  # the bucket away a moment: the records still hold on servers
            log.exception("reading the drift records of partition %d failed", partition)
            taken = {}
        for identity, record in taken.items():
            self.examiner.restore(identity, record)
        held = self._held[partition] = _Held(partition, revision)
        held.task = asyncio.create_task(self._consume(held))
        log.info("worker %s claimed partition %d", self.name, partition)

    async def _release(self, held: _Held) -> None:
        held.releasing.set()
        if held.task is not None:
            with contextlib.suppress(Exception):  # a failed consumer has said why already
                await held.task  # its batch in flight is examined and acknowledged first
        self._held.pop(held.partition, None)
        try:
            await self._kv.delete(f"p.{held.partition}", last=held.revision)
        except Exception:  # already expired or taken: nothing of ours to free
            log.debug("partition %d lease already gone", held.partition)

    # --- consuming -------------------------------------------------------------------------

    async def _examine(self) -> None:
        """Examine the fetched batches of every held partition that wait, together (one
        dedupe lookup, one detection step, one write of hashes for all), off the loop."""
        loop = asyncio.get_running_loop()
        while True:
            waiting = [await self._waiting.get()]
            while not self._waiting.empty():
                waiting.append(self._waiting.get_nowait())
            batches = [(partition, batch) for partition, batch, _ in waiting]
            try:
                await loop.run_in_executor(
                    self._executor, self.examiner.examine_partitions, batches
                )
            except Exception as exc:  # each partition's consumer says why and lets it go
                for _, _, examined in waiting:
                    if not examined.done():
                        examined.set_exception(exc)
            else:
                for _, _, examined in waiting:
                    if not examined.done():
                        examined.set_result(None)

    async def _consume(self, held: _Held) -> None:
        config, partition = self.config, held.partition
        durable = config.consumer_of(partition)
        loop = asyncio.get_running_loop()
        try:
            info = await self._js.consumer_info(config.stream, durable)
            if info.num_ack_pending:  # a previous holder's unacknowledged batch comes first
                await asyncio.sleep(ACK_WAIT_S)
            # Its own inbox, unsubscribed when the partition goes (lost, released, failed):
            # what it delivered and nobody examined comes again to the next holder.
            async with PullFetcher(self._connection, config.stream, durable) as fetcher:
                while not held.releasing.is_set():
                    messages = await fetcher.fetch(BATCH, FETCH_WAIT_S)
                    if not messages:  # nothing new yet
                        continue
                    examined = loop.create_future()
                    self._waiting.put_nowait((partition, self._decoded(messages), examined))
                    await examined
                    if self._held.get(partition) is not held:
                        # The lease was lost meanwhile: the new holder gets the batch again
                        # (its hashes are recorded: skipped, not examined twice).
                        break
                    # Every message of the batch, then one flush: a round trip a batch.
                    # One after the other, not gathered: an ack only appends to the
                    # client's buffer, and gathering made a task of each (15 us against 3).
                    for message in messages:
                        await message.ack()
                    await self._connection.flush()
        except Exception:
            log.exception("consuming partition %d failed; releasing it", partition)
            held.releasing.set()
            if self._held.get(partition) is held:  # not a later claim of the same partition
                del self._held[partition]

    def _decoded(self, messages: list[Any]) -> list[tuple[int, BusMessage]]:
        batch: list[tuple[int, BusMessage]] = []
        for message in messages:
            try:
                batch.append((delivery_of(message.reply).stream_seq, decode(message.data)))
            except BusMessageInvalid as exc:  # acknowledged with the batch: never retried
                self.invalid += 1
                log.warning("skipping stream message `%s`: %s", message.reply, exc)
        return batch
