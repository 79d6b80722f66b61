"""Baselines learned from stored decisions: versioned, rebuildable, used by detectors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, insert, select

from tether.drift.engine import DriftEngine
from tether.estate import apply_estate
from tether.estate.compiled import EMPTY_ESTATE
from tether.store.drift_tables import drift_baselines
from tether.store.tables import decisions
from token_support import WorkloadKey, write_estate


def _decision(n: int, action: str, resource: str, at: datetime, caller: str | None = None) -> dict:  # type: ignore[type-arg]
    kind, _, rid = resource.partition(":")
    return {
        "decision_id": f"d{n}",
        "at": at,
        "subject_type": "agent",
        "subject_id": "billing-bot",
        "action": action,
        "resource_type": kind,
        "resource_id": rid,
        "outcome": "allow",
        "decision": True,
        "reasons": [],
        "obligations": {},
        "errors": [],
        "context": {"records": 100},
        "caller": caller,
        "duration_us": 1,
    }


def test_rebuild_learns_versions_and_novel_access_uses_them(store: Engine, tmp_path: Path) -> None:
    apply_estate(store, write_estate(tmp_path / "estate", WorkloadKey.generate("k")))
    now = datetime.now(UTC)
    start = now - timedelta(days=2)
    rows = [
        _decision(i, "read_invoice", f"invoice:INV-{i % 4}", start + timedelta(minutes=i), "etl")
        for i in range(30)
    ]
    old = _decision(99, "pay_invoice", "payments:x", now - timedelta(days=40))
    with store.begin() as connection:
        connection.execute(insert(decisions), [*rows, old])
    drift = DriftEngine(store, lambda: (None, EMPTY_ESTATE), tail_events=False)
    drift.start(background=False)
    [first] = drift.rebuild_baselines(now=now, identity_id="billing-bot")
    assert first.version == 1
    assert first.observations == 30
    assert first.seen("action", "read_invoice")
    assert not first.seen("action", "pay_invoice")  # outside the 30-day window
    assert first.volume("read_invoice") == (100.0, 0.0)
    built = {b.identity_id: b for b in drift.rebuild_baselines(now=now)}
    assert built["billing-bot"].version == 2
    # The PEP (`etl` here) asked about billing-bot: self-governance observations.
    assert built["etl"].seen("resource", "agent:billing-bot")
    with store.connect() as connection:
        versions = connection.execute(
            select(drift_baselines.c.version).where(drift_baselines.c.identity_id == "billing-bot")
        ).scalars()
        assert sorted(versions) == [1, 2]
    novel = _decision(100, "read_invoice", "invoice:INV-NEW", now - timedelta(minutes=1))
    with store.begin() as connection:
        connection.execute(insert(decisions), [novel])
    found = drift.scan(since=now - timedelta(minutes=5), identity_id="billing-bot")
    assert [(f.detector, f.details["novel"]) for f in found if f.detector == "novel_access"] == [
        ("novel_access", {"resource": "invoice:INV-NEW"})
    ]
