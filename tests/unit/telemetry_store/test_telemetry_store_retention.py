"""Retention pruning: the expired prefix goes, the rest still verifies, pruned != deleted."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from sqlalchemy import Engine, insert, select
from store_support import START, cloudtrail, count, remove

from tether.store.tables import audit_log
from tether.store.telemetry_tables import audit_checkpoints
from tether.telemetry.audit import BreakKind, verify_chain
from tether.telemetry.checkpoints import PRUNED, latest_checkpoint
from tether.telemetry.model import ObservedAccess
from tether.telemetry.retention import (
    RetentionInvalid,
    RetentionPolicy,
    apply_retention,
    parse_retention,
)
from tether.telemetry.store import EventStore
from tether.tokens import KeyRing

NOW = START + timedelta(days=100)
# internal: 30 days; restricted: 7 years; anything else: 400 days.
POLICY = RetentionPolicy(
    default=timedelta(days=400),
    classes={"internal": timedelta(days=30), "restricted": timedelta(days=7 * 365)},
)


def classed(numbers: range, data_class: str | None) -> list[ObservedAccess]:
    return [dataclasses.replace(e, data_class=data_class) for e in cloudtrail(*numbers)]


@pytest.fixture
def mixed(events: EventStore) -> EventStore:
    """Events 1-6 internal (expired), 7 restricted (kept 7 years), 8-10 internal (expired)."""
    events.ingest([*classed(range(1, 7), "internal"), *classed(range(7, 8), "restricted")])
    events.ingest(classed(range(8, 11), "internal"))
    events.checkpoint()
    return events


def events_left(store: Engine) -> int:
    return count(store, "SELECT COUNT(*) FROM events")


def test_pruning_removes_the_expired_prefix_and_the_rest_verifies(
    mixed: EventStore, store: Engine, keys: KeyRing
) -> None:
    result = apply_retention(store, keys, POLICY, now=NOW)
    assert (result.pruned, result.pruned_through, result.expired) == (6, 6, 9)
    # Events 8-10 are expired but chained after the restricted event 7: kept, and said so.
    assert result.held_back == 3
    assert result.held_back_by is not None
    assert (result.held_back_by.seq, result.held_back_by.data_class) == (7, "restricted")
    assert events_left(store) == 4

    report = verify_chain(store, keys)
    assert report.ok, report.broken
    assert (report.events, report.first_seq, report.last_seq) == (4, 7, 10)
    assert report.pruned is not None
    assert (report.pruned.last_event_seq, report.pruned.kind) == (6, PRUNED)

    # The chain goes on from where it was; a later prune starts after the first.
    mixed.ingest(classed(range(11, 13), "internal"))
    mixed.checkpoint()
    assert verify_chain(store, keys).ok
    later = apply_retention(store, keys, POLICY, now=START + timedelta(days=8 * 365))
    assert (later.pruned, later.pruned_through, later.previously_pruned_through) == (6, 12, 6)
    report = verify_chain(store, keys)
    assert report.ok, report.broken
    assert report.events == 0
    assert report.pruned is not None
    assert report.pruned.last_event_seq == 12


def test_a_fully_pruned_chain_continues_from_the_pruned_head(
    mixed: EventStore, store: Engine, keys: KeyRing
) -> None:
    everything = RetentionPolicy(default=timedelta(days=1))
    result = apply_retention(store, keys, everything, now=NOW)
    assert (result.pruned, result.pruned_through, result.held_back) == (10, 10, 0)
    assert events_left(store) == 0
    mixed.ingest(classed(range(20, 23), None))
    report = verify_chain(store, keys)
    assert report.ok, report.broken
    assert (report.first_seq, report.last_seq) == (11, 13)


def test_a_row_deleted_inside_the_kept_range_is_still_named(
    mixed: EventStore, store: Engine, keys: KeyRing
) -> None:
    apply_retention(store, keys, POLICY, now=NOW)
    remove(store, 9)
    broken = verify_chain(store, keys).broken
    assert broken is not None
    assert (broken.seq, broken.kind) == (9, BreakKind.DELETED)


def test_a_row_deleted_right_after_the_pruned_range_is_a_deletion(
    mixed: EventStore, store: Engine, keys: KeyRing
) -> None:
    apply_retention(store, keys, POLICY, now=NOW)
    remove(store, 7)
    report = verify_chain(store, keys)
    assert report.broken is not None
    assert (report.broken.seq, report.broken.kind) == (7, BreakKind.DELETED)
    assert "retention pruned" in report.broken.message
    assert report.pruned is not None
    assert report.pruned.last_event_seq == 6


def test_a_prefix_deleted_without_pruning_is_a_deletion(
    mixed: EventStore, store: Engine, keys: KeyRing
) -> None:
    remove(store, *range(1, 7))
    report = verify_chain(store, keys)
    assert report.pruned is None
    assert report.broken is not None
    assert (report.broken.seq, report.broken.kind) == (1, BreakKind.DELETED)
    assert "1-6" in report.broken.message


def test_a_forged_pruned_checkpoint_does_not_excuse_a_deletion(
    mixed: EventStore, store: Engine, keys: KeyRing
) -> None:
    remove(store, *range(1, 7))
    latest = latest_checkpoint(store)
    assert latest is not None
    with store.begin() as connection:
        connection.execute(
            insert(audit_checkpoints).values(
                at=NOW,
                last_event_seq=6,
                last_hash="0" * 64,
                kind=PRUNED,
                signature=latest.signature,
            )
        )
    broken = verify_chain(store, keys).broken
    assert broken is not None
    assert broken.kind is BreakKind.CHECKPOINT_FORGED


def test_a_dry_run_changes_nothing(mixed: EventStore, store: Engine, keys: KeyRing) -> None:
    before = [
        count(store, f"SELECT COUNT(*) FROM {t}")
        for t in ("events", "audit_checkpoints", "audit_log")
    ]
    dry = apply_retention(store, keys, POLICY, now=NOW, dry_run=True)
    after = [
        count(store, f"SELECT COUNT(*) FROM {t}")
        for t in ("events", "audit_checkpoints", "audit_log")
    ]
    assert after == before
    assert dry.dry_run
    assert verify_chain(store, keys).pruned is None
    real = apply_retention(store, keys, POLICY, now=NOW)
    assert (dry.pruned, dry.pruned_through, dry.held_back) == (
        real.pruned,
        real.pruned_through,
        real.held_back,
    )


def test_an_applied_prune_is_audit_logged(mixed: EventStore, store: Engine, keys: KeyRing) -> None:
    apply_retention(store, keys, POLICY, now=NOW, actor="cli")
    with store.connect() as connection:
        row = connection.execute(
            select(audit_log).where(audit_log.c.action == "retention.apply")
        ).one()
    assert row.actor == "cli"
    assert row.details["pruned_through"] == 6
    assert row.details["policy"]["classes"] == {
        "internal": 30 * 86_400,
        "restricted": 7 * 365 * 86_400,
    }


def test_nothing_expired_prunes_nothing(mixed: EventStore, store: Engine, keys: KeyRing) -> None:
    checkpoints = count(store, "SELECT COUNT(*) FROM audit_checkpoints")
    result = apply_retention(store, keys, POLICY, now=START + timedelta(days=1))
    assert (result.pruned, result.pruned_through, result.expired) == (0, None, 0)
    assert count(store, "SELECT COUNT(*) FROM audit_checkpoints") == checkpoints
    assert count(store, "SELECT COUNT(*) FROM audit_log") == 0


def test_events_of_a_class_without_retention_and_no_default_are_kept(
    mixed: EventStore, store: Engine, keys: KeyRing
) -> None:
    only_restricted = RetentionPolicy(classes={"restricted": timedelta(days=1)})
    result = apply_retention(store, keys, only_restricted, now=NOW)
    # Event 1 (internal) has no retention at all: nothing before event 7 can go.
    assert (result.pruned, result.expired, result.held_back) == (0, 1, 1)
    assert events_left(store) == 10


@pytest.mark.parametrize(
    ("text", "days"), [("90d", 90), ("7y", 7 * 365), ("6w", 42), ("48h", 2), (" 30d ", 30)]
)
def test_retention_durations(text: str, days: int) -> None:
    assert parse_retention(text) == timedelta(days=days)


@pytest.mark.parametrize("text", ["", "0d", "30", "d", "-1d", "1.5d", "30 days", "3mo"])
def test_bad_retention_durations_are_refused(text: str) -> None:
    with pytest.raises(RetentionInvalid, match="positive duration"):
        parse_retention(text)
