"""The event store: every shared sample ingests, dedupe, attribution, discovered identities."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, select
from store_support import ROLE_ARN, add_estate_identity, cloudtrail, count

from tether.store.tables import identities
from tether.store.telemetry_tables import events as events_table
from tether.telemetry.audit import verify_chain
from tether.telemetry.ingest import iter_labelled_fixture
from tether.telemetry.store import EventStore
from tether.tokens import KeyRing

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "shared" / "cloud-audit"


def test_every_shared_sample_ingests_and_reingest_adds_nothing(
    store: Engine, keys: KeyRing
) -> None:
    writer = EventStore(store, keys)
    files = sorted(SAMPLES.glob("*.jsonl"))
    assert files
    first = [writer.ingest(iter_labelled_fixture(path)) for path in files]
    for path, summary in zip(files, first, strict=True):
        assert summary.ingested > 0, path.name
    # The only lines that are no event are the test cases whose `log` is null.
    assert sum(s.errors for s in first) == 3
    stored = count(store, "SELECT COUNT(*) FROM events")
    assert stored == sum(s.ingested for s in first)

    again = EventStore(store, keys)
    second = [again.ingest(iter_labelled_fixture(path)) for path in files]
    assert sum(s.ingested for s in second) == 0
    assert sum(s.discovered for s in second) == 0
    assert count(store, "SELECT COUNT(*) FROM events") == stored
    writer.checkpoint()
    report = verify_chain(store, keys)
    assert report.ok, report.broken
    assert report.events == stored


def test_duplicates_within_a_batch_are_stored_once(events: EventStore, store: Engine) -> None:
    batch = cloudtrail(1, 1, 2)
    summary = events.append(batch)
    assert (summary.ingested, summary.duplicates) == (2, 1)
    assert count(store, "SELECT COUNT(*) FROM events") == 2


def test_assumed_role_sessions_resolve_to_the_estate_identity(store: Engine, keys: KeyRing) -> None:
    add_estate_identity(store, "etl", [ROLE_ARN])
    writer = EventStore(store, keys)
    summary = writer.append(cloudtrail(1, 2, 3))
    assert (summary.ingested, summary.discovered) == (3, 0)
    with store.connect() as connection:
        owners = connection.execute(select(events_table.c.identity_id)).scalars().all()
        estate = connection.execute(select(identities).where(identities.c.id == "etl")).one()
    assert owners == ["etl", "etl", "etl"]
    assert estate.origin == "estate"
    assert estate.attributes == {"principals": [ROLE_ARN]}


def test_unknown_principals_become_discovered_identities(store: Engine, keys: KeyRing) -> None:
    add_estate_identity(store, "aws-role-billing", ["arn:aws:iam::999988887777:role/other"])
    writer = EventStore(store, keys)
    summary = writer.append(cloudtrail(1, 2, role="billing"))
    assert summary.discovered == 1
    with store.connect() as connection:
        found = connection.execute(
            select(identities).where(identities.c.origin == "discovered")
        ).one()
        owners = set(connection.execute(select(events_table.c.identity_id)).scalars())
    # The readable id collides with an estate identity, so it was made unique.
    assert found.id.startswith("aws-role-billing-")
    assert found.kind == "workload"
    assert found.attributes["principal_key"] == "arn:aws:iam::111122223333:role/billing"
    assert found.attributes["managed"] is False
    assert owners == {found.id}
    # Seen again later, by a new writer: the same discovered identity, no new row.
    again = EventStore(store, keys).append(cloudtrail(3, role="billing"))
    assert again.discovered == 0
    assert count(store, "SELECT COUNT(*) FROM identities WHERE origin = 'discovered'") == 1
