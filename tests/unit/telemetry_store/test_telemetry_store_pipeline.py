"""The ingest pipeline: the on_stored hook, batches half stored already, sessions of a role."""

from __future__ import annotations

import dataclasses
import gc
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, select
from store_support import ROLE_ARN, add_estate_identity, cloudtrail, count, record

from tether.store.telemetry_tables import events as events_table
from tether.telemetry.audit import verify_chain
from tether.telemetry.ingest._base import Context
from tether.telemetry.ingest.cloudtrail import decode_record
from tether.telemetry.model import ObservedAccess, dedupe_key_of
from tether.telemetry.store import EventStore
from tether.tokens import KeyRing


def test_on_stored_sees_each_new_event_once_in_chain_order(
    events: EventStore, store: Engine, keys: KeyRing
) -> None:
    seen: list[list[str | None]] = []

    def hook(stored: Sequence[ObservedAccess]) -> None:
        seen.append([e.source_event_id for e in stored])

    events.on_stored.append(hook)
    summary = events.ingest(cloudtrail(1, 2, 3, 4, 5, 1, 6, 7))  # batches of 3
    assert (summary.ingested, summary.duplicates) == (7, 1)
    assert [i for batch in seen for i in batch] == [f"evt-{n}" for n in range(1, 8)]
    assert all(seen)  # a batch of duplicates only is not handed over

    seen.clear()
    again = events.ingest(cloudtrail(1, 2, 8))
    assert (again.ingested, again.duplicates) == (1, 2)
    assert seen == [["evt-8"]]
    with store.connect() as connection:
        order = connection.execute(
            select(events_table.c.source_event_id).order_by(events_table.c.seq)
        ).scalars()
        assert list(order) == [f"evt-{n}" for n in range(1, 9)]
    assert verify_chain(store, keys).ok


def test_a_batch_partly_stored_already_is_numbered_without_gaps(
    store: Engine, keys: KeyRing
) -> None:
    writer = EventStore(store, keys, batch_size=100)
    writer.ingest(cloudtrail(*range(1, 11)))
    # A fresh writer guesses nothing is stored; the guess fails and the batch is redone.
    summary = EventStore(store, keys, batch_size=100).ingest(cloudtrail(*range(5, 16)))
    assert (summary.ingested, summary.duplicates) == (5, 6)
    with store.connect() as connection:
        seqs = list(connection.execute(select(events_table.c.seq).order_by("seq")).scalars())
    assert seqs == list(range(1, 16))
    assert verify_chain(store, keys).ok


def test_every_session_of_a_role_is_attributed_to_it(store: Engine, keys: KeyRing) -> None:
    add_estate_identity(store, "etl", [ROLE_ARN])
    writer = EventStore(store, keys, batch_size=50)
    writer.ingest(cloudtrail(*range(1, 301)))  # 300 distinct sessions of one role
    with store.connect() as connection:
        owners = set(connection.execute(select(events_table.c.identity_id)).scalars())
    assert owners == {"etl"}
    assert count(store, "SELECT COUNT(*) FROM events") == 300


def test_the_adapter_hands_the_store_the_canonical_json_of_its_dedupe_key() -> None:
    event = decode_record(record(1), Context())
    assert event.raw_json is not None
    assert event.dedupe_key == dedupe_key_of(event.raw)
    assert event.dedupe_key == dedupe_key_of(orjson.loads(event.raw_json))


def test_collection_is_back_on_after_an_ingest_even_when_it_fails(
    events: EventStore, store: Engine
) -> None:
    def items() -> Iterator[ObservedAccess]:
        yield from cloudtrail(1, 2, 3, 4)
        raise RuntimeError("reader failed")

    assert gc.isenabled()
    with pytest.raises(RuntimeError, match="reader failed"):
        events.ingest(items())
    assert gc.isenabled()
    assert count(store, "SELECT COUNT(*) FROM events") == 3  # the batch before the failure


class _Raw(dict[str, Any]):
    """A record's parsed JSON that can be watched (a plain dict takes no weak reference)."""


def _watched(numbers: range, refs: list[weakref.ref[_Raw]]) -> Iterator[ObservedAccess]:
    """Events whose parsed JSON ``refs`` watch; yields each once the ones before it were
    handed over."""
    for event in cloudtrail(*numbers):
        raw = _Raw(event.raw)
        refs.append(weakref.ref(raw))
        yield dataclasses.replace(event, raw=raw)
        del raw


@pytest.mark.parametrize("hooked", [False, True])
def test_without_a_hook_a_batch_holds_rows_not_the_events_read(
    store: Engine, keys: KeyRing, hooked: bool
) -> None:
    writer = EventStore(store, keys, batch_size=100)
    seen: list[int] = []
    if hooked:
        writer.on_stored.append(lambda stored: seen.append(len(stored)))
    refs: list[weakref.ref[_Raw]] = []
    alive: list[int] = []

    def items() -> Iterator[ObservedAccess]:
        for event in _watched(range(1, 11), refs):
            # All but the event just handed over (still the writer's loop variable).
            alive.append(sum(ref() is not None for ref in refs[:-2]))
            yield event

    progress: list[int] = []
    summary = writer.ingest(items(), on_progress=progress.append)
    assert (summary.ingested, progress) == (10, [10])
    assert alive[-1] == (8 if hooked else 0)  # the hook is handed the events themselves
    assert seen == ([10] if hooked else [])
    assert verify_chain(store, keys).ok
