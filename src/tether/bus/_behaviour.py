"""Drift records back from the bus workers to every server: a JetStream key-value bucket.

On the bus, detection runs in ``tether worker`` processes, and decisions in the servers:
the drift record of an identity (``context.tether.behaviour``: its drift score, open
findings, ``restricted``, ``constrained``) is made in one and read in the others. Each
worker writes the records its drift engine changed to the bucket ``<stream>_behaviour``
(one key per identity, the last value only), at most every :data:`SHARE_EVERY_S`
(:class:`BehaviourSharer`); every server watches the bucket and keeps its own map of
records, the one its decisions read, up to date (:class:`BehaviourFollower`). A watch
starts with the last value of every key, so a server started later, or reconnected,
catches up; a record a worker cleared (an offboarding, a reset) is deleted from the
bucket and from every server's map.

A worker that claims a partition first takes over the bucket's records of its identities
(:func:`records_of`, ``BehaviourBoard.restore``): a ``restricted`` or ``constrained``
identity stays so whichever worker examines it next.

Keys: ``i.`` and the identity id in unpadded base64url (NATS keys allow only letters,
digits and ``-_=./``); values: ``{"identity": id, "record": {...}}`` as JSON.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import threading
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

import orjson
from nats.js import JetStreamContext, api
from nats.js.errors import KeyNotFoundError, NoKeysError
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from tether.bus._nats import connect
from tether.bus._stream import BusConfig

log = logging.getLogger(__name__)

#: How often a worker writes the records its engine changed.
SHARE_EVERY_S = 0.1
_PREFIX = "i."

Record = Mapping[str, Any]


def behaviour_key(identity_id: str) -> str:
    encoded = base64.urlsafe_b64encode(identity_id.encode()).decode().rstrip("=")
    return _PREFIX + encoded


def identity_of(key: str) -> str | None:
    """The identity id a bucket key names (``None``: not a record's key)."""
    if not key.startswith(_PREFIX):
        return None
    encoded = key[len(_PREFIX) :]
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None


async def records_of(kv: KeyValue, wanted: Callable[[str], bool]) -> dict[str, Record]:
    """The records in the bucket of the identities ``wanted`` says yes to."""
    try:
        keys = await kv.keys()
    except NoKeysError:
        return {}
    found: dict[str, Record] = {}
    for key in keys:
        identity = identity_of(key)
        if identity is None or not wanted(identity):
            continue
        with contextlib.suppress(KeyNotFoundError):
            entry = await kv.get(key)
            decoded = decode_record(entry.value or b"")
            if decoded is not None:
                found[decoded[0]] = decoded[1]
    return found


def encode_record(identity_id: str, record: Record) -> bytes:
    return orjson.dumps({"identity": identity_id, "record": record})


def decode_record(value: bytes) -> tuple[str, Record] | None:
    """``(identity, record)`` of a bucket value, ``None`` for anything else (logged)."""
    try:
        body = orjson.loads(value)
    except orjson.JSONDecodeError:
        body = None
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("identity"), str)
        or not isinstance(body.get("record"), dict)
    ):
        log.warning("ignoring a value in the behaviour bucket that is not a drift record")
        return None
    return body["identity"], body["record"]


async def behaviour_bucket(js: JetStreamContext, config: BusConfig) -> KeyValue:
    """The bucket of drift records (made on first use; one value per key)."""
    try:
        return await js.key_value(config.behaviour_bucket)
    except Exception:  # not there yet
        return await js.create_key_value(
            api.KeyValueConfig(bucket=config.behaviour_bucket, history=1)
        )


class BehaviourSharer:
    """A worker's side: writes what changed in its engine's record map (``board``)."""

    def __init__(self, board: Mapping[str, Record]) -> None:
        self._board = board
        self._sent: dict[str, Record] = {}
        self.written = 0

    async def share(self, kv: KeyValue) -> int:
        """Write the records changed since the last call, delete the cleared ones; how
        many keys were written. Records are replaced, never changed in place, so a
        record that is not the one last sent has changed."""
        current = dict(self._board)
        changed = {i: r for i, r in current.items() if self._sent.get(i) is not r}
        cleared = [i for i in self._sent if i not in current]
        for identity, record in changed.items():
            await kv.put(behaviour_key(identity), encode_record(identity, record))
            self._sent[identity] = record
        for identity in cleared:
            await kv.delete(behaviour_key(identity))
            del self._sent[identity]
        self.written += len(changed) + len(cleared)
        return len(changed) + len(cleared)

    async def run(self, kv: KeyValue, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.share(kv)
            except Exception:  # the server away a moment: what is unsent goes next round
                log.exception("sharing drift records failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SHARE_EVERY_S)
        with contextlib.suppress(Exception):
            await self.share(kv)


class BehaviourFollower:
    """A server's side: a thread watching the bucket into ``behaviour`` (the map its
    decisions read)."""

    def __init__(self, config: BusConfig, behaviour: MutableMapping[str, Record]) -> None:
        self.config = config
        self._behaviour = behaviour
        self.applied = 0
        self.problem: str | None = None
        self._caught_up = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self, *, timeout_s: float = 10.0) -> bool:
        """Start following; whether the bucket's current records were read within
        ``timeout_s`` (the thread goes on trying if not)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="tether-bus-behaviour", daemon=True
            )
            self._thread.start()
        return self._caught_up.wait(timeout_s)

    @property
    def caught_up(self) -> bool:
        """Whether the bucket's records were all read once (until then decisions miss
        the drift records made before this server started)."""
        return self._caught_up.is_set()

    def close(self) -> None:
        self._stop.set()
        loop, task = self._loop, self._task
        if loop is not None and task is not None:
            # Cancelled, not asked: a follower still trying to reach the server stops too.
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(task.cancel)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def apply(self, key: str, value: bytes | None, operation: str | None) -> None:
        """One bucket entry into the map."""
        if not key.startswith(_PREFIX):
            return
        if operation in (KV_DEL, KV_PURGE):
            identity = identity_of(key)
            if identity is not None:
                self._behaviour.pop(identity, None)
                self.applied += 1
            return
        decoded = decode_record(value or b"")
        if decoded is not None:
            self._behaviour[decoded[0]] = decoded[1]
            self.applied += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                asyncio.run(self._follow())
            except asyncio.CancelledError:
                return  # closed
            except Exception as exc:
                self.problem = f"following drift records failed: {type(exc).__name__} {exc}"
                log.warning("%s; trying again", self.problem)
                self._stop.wait(1.0)

    async def _follow(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        if self._stop.is_set():
            return
        connection, js = await connect(self.config, name="tether-serve-behaviour")
        try:
            kv = await behaviour_bucket(js, self.config)
            watcher = await kv.watchall()
            try:
                await self._updates(watcher)
            finally:
                with contextlib.suppress(Exception):
                    await watcher.stop()  # type: ignore[no-untyped-call]
            raise ConnectionError("the watch of the behaviour bucket ended")
        finally:
            with contextlib.suppress(Exception):
                await connection.close()

    async def _updates(self, watcher: Any) -> None:
        async for entry in watcher:
            if entry is None:  # the current records are all in
                self._caught_up.set()
                self.problem = None
                continue
            self.apply(entry.key, entry.value, entry.operation)
