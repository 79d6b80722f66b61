"""The event bus: NATS JetStream between tether's servers and its drift workers.

Without ``--events`` nothing here runs: detection stays beside the server (a thread or the
embedded worker process, :mod:`tether.worker`). With ``tether serve --events
nats://HOST:PORT`` the server publishes every decision it records and every event stored
(:class:`EventPublisher`, :class:`EventsTail`) to one stream, on a subject per partition
of identities (:mod:`tether.bus._stream`), and runs no detection itself; ``tether worker
--events nats://HOST:PORT`` processes share the partitions by lease, each examining its
partitions' events in order, at least once, deduplicated by event hash
(:mod:`tether.bus._worker`, :mod:`tether.bus._examiner`). Drift records (the
``context.tether.behaviour`` decisions read) come back from the workers to every server
through a key-value bucket (:mod:`tether.bus._behaviour`).

Library: nats-py, the NATS maintainers' asyncio client (JetStream streams, pull
consumers, key-value buckets); nothing of the protocol is written here.
"""

from tether.bus._behaviour import BehaviourFollower, BehaviourSharer, behaviour_bucket
from tether.bus._examiner import Examiner
from tether.bus._nats import ensure_stream
from tether.bus._publisher import EventPublisher, publish_batch, send_batch
from tether.bus._stream import DECISION, EVENT, BusConfig, BusMessage, decode, encode, event_row
from tether.bus._tail import EventsTail
from tether.bus._worker import DriftWorker, default_worker_name
from tether.bus.errors import BusConfigInvalid, BusMessageInvalid, BusUnavailable

__all__ = [
    "DECISION",
    "EVENT",
    "BehaviourFollower",
    "BehaviourSharer",
    "BusConfig",
    "BusConfigInvalid",
    "BusMessage",
    "BusMessageInvalid",
    "BusUnavailable",
    "DriftWorker",
    "EventPublisher",
    "EventsTail",
    "Examiner",
    "behaviour_bucket",
    "decode",
    "default_worker_name",
    "encode",
    "ensure_stream",
    "event_row",
    "publish_batch",
    "send_batch",
]
