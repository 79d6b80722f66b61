"""Where tether's events travel on NATS JetStream: the stream, its subjects, the messages.

One stream (``events_stream``, default ``TETHER_EVENTS``) holds every decision and every
ingested event a server saw, on ``<events_subject>.<partition>`` (default
``tether.events.0`` … ``tether.events.15``). The partition is a stable hash of the
identity (BLAKE2b of its id, modulo ``events_partitions``; never Python's salted
``hash``), so all of one identity's events are on one subject and one drift worker sees
them in stream order. Each partition has one durable pull consumer
(``<stream>_p<partition>``, explicit acks); the stream drops a re-published message whose
``Nats-Msg-Id`` (the event hash) it saw within its duplicate window.

A message is ``{"kind": "decision" | "event" | "result", "row": {...}}`` as JSON: a
``decisions`` row as the decider records it, the columns of an ``events`` row that
detection reads (:func:`event_row`), or what a decided call returned (the decision's
reference, its ``subject_id`` for the partition, and the result). Its hash (SHA-256 of
the canonical JSON) is the dedupe key from end to end: the stream's message id and
``bus_examined.event_hash``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from tether.bus.errors import BusConfigInvalid
from tether.config import Settings
from tether.drift.observations import OBSERVED_COLUMNS

DECISION = "decision"
EVENT = "event"
#: What a governed call returned (``Tether.report_result``), for provenance in drift.
RESULT = "result"
KINDS = (DECISION, EVENT, RESULT)
#: How long the stream remembers message ids to drop re-published ones (seconds).
DUPLICATE_WINDOW_S = 120.0
# The columns of an `events` row that drift detection reads (its `raw` only in part, see
# event_row): the same list the live tail selects, so the two cannot drift apart (a column
# left off here made a bus-fed worker judge no cloud call: `source` was missing).
_EVENT_COLUMNS = tuple(name for name in OBSERVED_COLUMNS if name != "raw")


@dataclass(frozen=True)
class BusConfig:
    """The NATS server, the stream and how it is partitioned."""

    url: str
    stream: str = "TETHER_EVENTS"
    subject: str = "tether.events"
    partitions: int = 16

    def __post_init__(self) -> None:
        scheme = urlsplit(self.url).scheme
        if scheme not in ("nats", "tls") or not urlsplit(self.url).hostname:
            raise BusConfigInvalid(f"`{self.url}` is not a NATS URL (nats://HOST:PORT)")
        if not self.stream.replace("_", "").replace("-", "").isalnum():
            raise BusConfigInvalid(f"stream name `{self.stream}` may hold letters, digits, _ and -")
        if not 1 <= self.partitions <= 1024:
            raise BusConfigInvalid(f"partitions must be from 1 to 1024, got `{self.partitions}`")

    @classmethod
    def from_settings(cls, settings: Settings, url: str | None = None) -> BusConfig:
        return cls(
            url or settings.events_url,
            settings.events_stream,
            settings.events_subject,
            settings.events_partitions,
        )

    @property
    def subjects(self) -> str:
        return f"{self.subject}.*"

    @property
    def lease_bucket(self) -> str:
        return f"{self.stream}_leases"

    @property
    def behaviour_bucket(self) -> str:
        return f"{self.stream}_behaviour"

    def subject_of(self, partition: int) -> str:
        return f"{self.subject}.{partition}"

    def consumer_of(self, partition: int) -> str:
        return f"{self.stream}_p{partition}"

    def partition_of(self, identity_id: str) -> int:
        digest = hashlib.blake2b(identity_id.encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") % self.partitions


@dataclass(frozen=True, slots=True)
class BusMessage:
    """One event on the bus."""

    kind: str
    row: Mapping[str, Any]
    payload: bytes
    hash: str

    @property
    def identity_id(self) -> str:
        who = self.row.get("identity_id" if self.kind == EVENT else "subject_id")
        return str(who or "")


def encode(kind: str, row: Mapping[str, Any]) -> BusMessage:
    """The message of a decision or event row (its payload and hash)."""
    if kind not in KINDS:
        raise ValueError(f"unknown bus message kind `{kind}`")
    payload = orjson.dumps({"kind": kind, "row": row}, option=orjson.OPT_SORT_KEYS, default=str)
    return BusMessage(kind, row, payload, hashlib.sha256(payload).hexdigest())


def decode(payload: bytes) -> BusMessage:
    """A message read from the stream.

    Raises:
        BusMessageInvalid: not a tether bus message.
    """
    from tether.bus.errors import BusMessageInvalid

    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise BusMessageInvalid(f"a bus message is not JSON: {exc}") from None
    if not isinstance(body, dict) or body.get("kind") not in KINDS:
        raise BusMessageInvalid("a bus message needs `kind` (decision, event, result) and `row`")
    row = body.get("row")
    if not isinstance(row, dict):
        raise BusMessageInvalid("a bus message's `row` must be an object")
    return BusMessage(body["kind"], row, payload, hashlib.sha256(payload).hexdigest())


def event_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """What detection reads of a stored event: its columns, and of ``raw`` only the AWS
    access key id (a long-term ``AKIA…`` key marks a static secret)."""
    kept = {name: row.get(name) for name in _EVENT_COLUMNS if row.get(name) is not None}
    raw = row.get("raw")
    who = raw.get("userIdentity") if isinstance(raw, Mapping) else None
    key = who.get("accessKeyId") if isinstance(who, Mapping) else None
    if key:
        kept["raw"] = {"userIdentity": {"accessKeyId": key}}
    return kept
