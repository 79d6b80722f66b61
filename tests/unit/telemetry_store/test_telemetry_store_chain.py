"""The audit chain: rows edited, deleted, reordered, truncated or re-chained are named."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, delete, update
from store_support import (
    cloudtrail,
    execute,
    insert_forged_after,
    modify,
    rechain,
    remove,
    swap,
)

from tether.store.telemetry_tables import audit_checkpoints
from tether.telemetry.audit import BreakKind, verify_chain
from tether.telemetry.checkpoints import latest_checkpoint, signature_matches
from tether.telemetry.store import EventStore
from tether.tokens import KeyRing


@pytest.fixture
def ten(events: EventStore) -> EventStore:
    events.ingest(cloudtrail(*range(1, 11)))
    events.checkpoint()
    return events


def test_an_untouched_store_verifies_clean(ten: EventStore, store: Engine, keys: KeyRing) -> None:
    report = verify_chain(store, keys)
    assert report.ok
    assert (report.events, report.first_seq, report.last_seq) == (10, 1, 10)
    assert report.checkpoints == 3  # at 4, at 8, and at the end (10)
    latest = latest_checkpoint(store)
    assert latest is not None
    assert latest.last_event_seq == 10
    assert signature_matches(keys, latest)


def test_appending_later_continues_the_chain(ten: EventStore, store: Engine, keys: KeyRing) -> None:
    ten.append(cloudtrail(11, 12))
    assert verify_chain(store, keys).ok


def test_a_modified_row_is_named(ten: EventStore, store: Engine, keys: KeyRing) -> None:
    modify(store, 5)
    broken = verify_chain(store, keys).broken
    assert broken is not None
    assert (broken.seq, broken.kind) == (5, BreakKind.MODIFIED)


def test_a_deleted_row_is_named(ten: EventStore, store: Engine, keys: KeyRing) -> None:
    remove(store, 6, 7)
    broken = verify_chain(store, keys).broken
    assert broken is not None
    assert (broken.seq, broken.kind) == (6, BreakKind.DELETED)
    assert "6-7" in broken.message


def test_reordered_rows_are_named(ten: EventStore, store: Engine, keys: KeyRing) -> None:
    swap(store, 3, 7)
    broken = verify_chain(store, keys).broken
    assert broken is not None
    assert (broken.seq, broken.kind) == (3, BreakKind.MOVED_OR_INSERTED)


def test_an_inserted_row_is_named(ten: EventStore, store: Engine, keys: KeyRing) -> None:
    insert_forged_after(store, 5)
    broken = verify_chain(store, keys).broken
    assert broken is not None
    # The forged event 6 links to 5 and hashes right; the event after it no longer links.
    assert (broken.seq, broken.kind) == (7, BreakKind.MOVED_OR_INSERTED)
    assert "event 6 was inserted" in broken.message


def test_a_deleted_tail_is_caught_by_the_checkpoints(
    ten: EventStore, store: Engine, keys: KeyRing
) -> None:
    remove(store, 9, 10)
    broken = verify_chain(store, keys).broken
    assert broken is not None
    assert (broken.seq, broken.kind) == (9, BreakKind.TRUNCATED)


def test_truncation_with_checkpoints_gone_is_caught_against_an_export(
    ten: EventStore, store: Engine, keys: KeyRing
) -> None:
    exported = latest_checkpoint(store)
    assert exported is not None
    remove(store, 8, 9, 10)
    execute(store, delete(audit_checkpoints))
    vanished = verify_chain(store, keys).broken  # the store tells that checkpoints are gone
    assert vanished is not None
    assert (vanished.seq, vanished.kind) == (1, BreakKind.CHECKPOINTS_MISSING)
    broken = verify_chain(store, keys, against=exported).broken  # the export says what
    assert broken is not None
    assert (broken.seq, broken.kind) == (8, BreakKind.TRUNCATED)


def test_rechaining_is_caught_against_an_export(
    ten: EventStore, store: Engine, keys: KeyRing
) -> None:
    exported = latest_checkpoint(store)
    assert exported is not None
    rechain(store, 4)
    vanished = verify_chain(store, keys).broken  # consistent end to end, checkpoints gone
    assert vanished is not None
    assert vanished.kind == BreakKind.CHECKPOINTS_MISSING
    broken = verify_chain(store, keys, against=exported).broken
    assert broken is not None
    assert (broken.seq, broken.kind) == (10, BreakKind.CHECKPOINT_MISMATCH)


def test_rechaining_is_caught_by_the_stored_checkpoints(
    ten: EventStore, store: Engine, keys: KeyRing
) -> None:
    rechain(store, 2, keep_checkpoints=True)
    broken = verify_chain(store, keys).broken
    assert broken is not None
    # Every row hashes and links again; the signed checkpoint of event 4 disagrees.
    assert (broken.seq, broken.kind) == (4, BreakKind.CHECKPOINT_MISMATCH)


def test_a_forged_checkpoint_is_named(ten: EventStore, store: Engine, keys: KeyRing) -> None:
    execute(store, update(audit_checkpoints).values(last_hash="0" * 64))
    broken = verify_chain(store, keys).broken
    assert broken is not None
    assert broken.kind is BreakKind.CHECKPOINT_FORGED
