"""The event bus's messages and drift records, without a NATS server (tether.bus).

The bus itself (streams, consumers, the key-value buckets) is tested against the real
server in tests/integration/test_event_bus.py; here: what goes into the messages and the
bucket values, and what a server does with each bucket entry.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.bus import (
    DECISION,
    EVENT,
    BehaviourFollower,
    BusConfig,
    BusMessageInvalid,
    EventPublisher,
    decode,
    encode,
)
from tether.bus._behaviour import behaviour_key, decode_record, encode_record
from tether.bus._stream import RESULT
from tether.drift.engine import RESULT_KEY

CONFIG = BusConfig("nats://127.0.0.1:4222", partitions=8)
RECORD = {"drift_score": 80, "open_findings": 1, "restricted": True, "constrained": False}


@given(st.text(min_size=1, max_size=200))
def test_a_behaviour_key_is_a_valid_nats_key_and_names_its_identity(identity: str) -> None:
    key = behaviour_key(identity)
    assert all(c.isascii() and (c.isalnum() or c in "-_=./") for c in key)
    follower = BehaviourFollower(CONFIG, behaviour := {identity: RECORD})
    follower.apply(key, None, "DEL")
    assert behaviour == {}


def test_a_record_put_then_deleted_comes_and_goes_in_the_servers_map() -> None:
    behaviour: dict[str, Any] = {}
    follower = BehaviourFollower(CONFIG, behaviour)
    key = behaviour_key("spiffe://example.org/ns/a/sa/bot")
    follower.apply(key, encode_record("spiffe://example.org/ns/a/sa/bot", RECORD), None)
    assert behaviour == {"spiffe://example.org/ns/a/sa/bot": RECORD}
    follower.apply(key, None, "PURGE")
    assert behaviour == {}
    assert follower.applied == 2


@pytest.mark.parametrize(
    "value", [b"", b"not json", b"[]", b'{"identity": 1, "record": {}}', b'{"identity": "a"}']
)
def test_a_bucket_value_that_is_no_record_changes_nothing(value: bytes) -> None:
    behaviour: dict[str, Any] = {"a": RECORD}
    follower = BehaviourFollower(CONFIG, behaviour)
    assert decode_record(value) is None
    follower.apply(behaviour_key("a"), value, None)
    follower.apply("p.0", b"a lease, not a record", None)
    assert behaviour == {"a": RECORD}


def test_a_result_goes_to_its_decisions_partition_after_it() -> None:
    publisher = EventPublisher(CONFIG)
    publisher.submit_decision({"decision_id": "d-1", "subject_id": "bot-7", "outcome": "allow"})
    assert publisher.submit_result("decision:d-1", {"rows": 3}, decision_id="d-1") is True
    assert publisher.submit_result("decision:d-2", "text", decision_id="d-2") is False
    assert publisher.unplaced_results == 1
    (kind_1, row_1), (kind_2, row_2) = list(publisher._queue)
    decision, result = encode(kind_1, row_1), encode(kind_2, row_2)
    assert (decision.kind, result.kind) == (DECISION, RESULT)
    assert result.row[RESULT_KEY] == "decision:d-1"
    assert CONFIG.partition_of(result.identity_id) == CONFIG.partition_of(decision.identity_id)


def test_messages_of_every_kind_round_trip_and_anything_else_is_refused() -> None:
    for kind, row in ((EVENT, {"identity_id": "a", "seq": 1}), (RESULT, {"subject_id": "a"})):
        message = encode(kind, row)
        assert decode(message.payload) == message
        assert message.identity_id == "a"
    for payload in (b"{", b'{"kind": "other", "row": {}}', b'{"kind": "event", "row": []}'):
        with pytest.raises(BusMessageInvalid):
            decode(payload)


def test_pruning_forgets_only_the_hashes_examined_before_the_cutoff(tmp_path: Any) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import select

    from tether.bus._examiner import prune_examined
    from tether.store import migrate
    from tether.store.bus_tables import bus_examined
    from tether.store.engine import open_engine

    engine = open_engine(f"sqlite:///{tmp_path / 'bus.db'}")
    migrate.upgrade(engine)
    now = datetime.now(UTC)
    ages = [timedelta(days=3)] * 25_000 + [timedelta(hours=2)] * 10 + [timedelta(days=2)] * 5
    rows = [
        {
            "event_hash": f"{n:064x}",
            "partition": n % 4,
            "stream_seq": n + 1,
            "worker": "w",
            "examined_at": now - age,
        }
        for n, age in enumerate(ages)
    ]
    with engine.begin() as connection:
        connection.execute(bus_examined.insert(), rows)
    # Every old one, in three chunks of the primary key; the newer ones stay.
    assert prune_examined(engine, now - timedelta(days=1)) == 25_005
    with engine.connect() as connection:
        left = connection.execute(select(bus_examined.c.stream_seq)).scalars().all()
    assert left == list(range(25_001, 25_011))
    assert prune_examined(engine, now - timedelta(days=1)) == 0
    engine.dispose()


def test_a_worker_taking_over_keeps_a_restricted_identity_restricted() -> None:
    """The new holder of a partition restores the bucket's record; a later low finding of
    its own does not lift the restriction the previous holder's finding made."""
    from datetime import UTC, datetime

    from tether.drift.model import Finding, Severity
    from tether.drift.responses import BehaviourBoard

    board = BehaviourBoard()
    board.restore(
        "bot",
        {
            "drift_score": 90,
            "open_findings": 1,
            "restricted": True,
            "constrained": False,
            "response": "approval",
        },
    )
    assert board.cedar["bot"]["restricted"] is True
    low = Finding(
        "f-1",
        datetime.now(UTC),
        "bot",
        "out_of_intent",
        Severity.LOW,
        12.0,
        0.2,
        0.1,
        0.1,
        "a small thing",
        ("decision:1",),
    )
    board.note(low, "none")
    assert board.cedar["bot"]["restricted"] is True
    assert board.cedar["bot"]["response"] == "approval"
    board.restore("bot", {"restricted": False, "constrained": True, "response": "none"})
    assert board.cedar["bot"]["restricted"] is True  # restored flags only ever add
