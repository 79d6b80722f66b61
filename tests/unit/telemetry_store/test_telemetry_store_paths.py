"""An identity's observed path: its events and decisions, merged in time order."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, insert
from store_support import ROLE_ARN, START, add_estate_identity, cloudtrail, execute

from tether.paths import identity_path
from tether.store.tables import decisions
from tether.telemetry.store import EventStore
from tether.tokens import KeyRing


def test_events_and_decisions_in_time_order(store: Engine, keys: KeyRing) -> None:
    add_estate_identity(store, "etl", [ROLE_ARN])
    EventStore(store, keys).append(cloudtrail(1, 3) + cloudtrail(2, role="someone-else"))
    execute(
        store,
        insert(decisions).values(
            decision_id="d1",
            at=START + timedelta(seconds=2),
            subject_type="workload",
            subject_id="etl",
            action="read",
            resource_type="Bucket",
            resource_id="reports",
            outcome="deny",
            decision=False,
            reasons=[],
            obligations={},
            errors=[],
            context={},
            duration_us=1,
        ),
    )
    steps = identity_path(store, "etl")
    assert [(s.kind, s.action) for s in steps] == [
        ("event", "s3:GetObject"),
        ("decision", "read"),
        ("event", "s3:GetObject"),
    ]
    assert [s.at for s in steps] == sorted(s.at for s in steps)
    later = identity_path(store, "etl", since=START + timedelta(seconds=2))
    assert [s.kind for s in later] == ["decision", "event"]
