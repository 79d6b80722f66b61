"""Exceptions suppress (or downgrade) matching findings until they expire, then stop;
each use is logged. Explicit times throughout, no sleeps; both backends."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from drift_support import T0, obs
from sqlalchemy import Engine, select

from tether.drift.engine import DriftEngine
from tether.drift.errors import ExceptionInvalid, ExceptionNotFound
from tether.drift.exceptions import add_exception, expire_exception, list_exceptions
from tether.drift.model import Severity
from tether.estate import apply_estate
from tether.estate.compiled import EMPTY_ESTATE
from tether.store.drift_tables import exception_uses
from tether.store.tables import audit_log
from token_support import WorkloadKey, write_estate

CREATED = T0 - timedelta(hours=1)


@pytest.fixture
def drift(store: Engine, tmp_path: Path) -> DriftEngine:
    apply_estate(store, write_estate(tmp_path / "estate", WorkloadKey.generate("k")))
    engine = DriftEngine(store, lambda: (None, EMPTY_ESTATE), tail_events=False)
    engine.start(background=False)
    return engine


def _exception(store: Engine, **extra: object) -> str:
    item = add_exception(
        store,
        identity_id="billing-bot",
        detector="out_of_entitlement",
        owner="team-payments",
        justification="migration week",
        expires_at=T0 + timedelta(days=1),
        actor="tests",
        now=CREATED,
        resource_pattern="table:*",
        **extra,  # type: ignore[arg-type]
    )
    return item.id


def _drop(at_offset: timedelta, resource: str = "table:orders") -> list:  # type: ignore[type-arg]
    return [obs("drop_table", resource=resource, at=T0 + at_offset, sensitivity=2)]


def test_a_valid_exception_suppresses_until_it_expires_then_stops(
    store: Engine, drift: DriftEngine
) -> None:
    exception_id = _exception(store)
    drift.refresh(force=True)
    [inside] = drift.process(_drop(timedelta(hours=2)), respond=False)
    assert inside.detector == "out_of_entitlement"
    assert inside.suppressed_by == exception_id
    [after] = drift.process(_drop(timedelta(days=1, seconds=1)), respond=False)
    assert after.suppressed_by is None
    [elsewhere] = drift.process(_drop(timedelta(hours=3), "files:orders"), respond=False)
    assert elsewhere.suppressed_by is None
    with store.connect() as connection:
        uses = connection.execute(select(exception_uses)).mappings().all()
    assert [(u["exception_id"], u["finding_id"], u["effect"]) for u in uses] == [
        (exception_id, inside.finding_id, "suppress")
    ]


def test_a_downgrading_exception_lowers_the_severity(store: Engine, drift: DriftEngine) -> None:
    exception_id = _exception(store, downgrade_to="info")
    drift.refresh(force=True)
    [lowered] = drift.process(_drop(timedelta(hours=2)), respond=False)
    assert lowered.severity is Severity.INFO
    assert lowered.downgraded_from is not None
    assert lowered.downgraded_from.rank > 0
    assert lowered.suppressed_by is None
    assert lowered.details["downgraded_by"] == exception_id


def test_expiring_an_exception_ends_it_at_that_moment(store: Engine, drift: DriftEngine) -> None:
    exception_id = _exception(store)
    expire_exception(store, exception_id, actor="tests", now=T0 + timedelta(hours=1))
    drift.refresh(force=True)
    [before] = drift.process(_drop(timedelta(minutes=30)), respond=False)
    [later] = drift.process(_drop(timedelta(hours=2)), respond=False)
    assert before.suppressed_by == exception_id
    assert later.suppressed_by is None
    with pytest.raises(ExceptionNotFound):
        expire_exception(store, "exc_missing", actor="tests", now=T0)
    with store.connect() as connection:
        audited = connection.execute(select(audit_log.c.action, audit_log.c.target)).all()
    assert ("exception.add", exception_id) in audited
    assert ("exception.expire", exception_id) in audited


def test_listing_puts_the_soon_expiring_first(store: Engine, drift: DriftEngine) -> None:
    late = _exception(store)
    soon = add_exception(
        store,
        identity_id="etl",
        detector="volume_anomaly",
        owner="team-data",
        justification="quarter close",
        expires_at=T0 + timedelta(hours=5),
        actor="tests",
        now=CREATED,
    ).id
    gone = add_exception(
        store,
        identity_id="etl",
        detector="novel_access",
        owner="team-data",
        justification="one-off",
        expires_at=T0 + timedelta(minutes=5),
        actor="tests",
        now=CREATED,
    ).id
    listed = list_exceptions(store, now=T0 + timedelta(hours=1), expiring_within=timedelta(days=1))
    assert [e.id for e in listed] == [soon, late, gone]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"owner": " "}, "owner"),
        ({"justification": ""}, "justification"),
        ({"expires_at": CREATED - timedelta(seconds=1)}, "not in the future"),
        ({"detector": "vibes"}, "detector `vibes`"),
        ({"identity_id": "ghost"}, "identity `ghost` is not known"),
        ({"resource_pattern": "no-colon"}, "pattern `no-colon`"),
        ({"downgrade_to": "meh"}, "downgrade_to"),
    ],
)
def test_bad_exceptions_are_refused_and_nothing_is_stored(
    store: Engine, drift: DriftEngine, change: dict[str, object], message: str
) -> None:
    fields: dict[str, object] = {
        "identity_id": "billing-bot",
        "detector": "out_of_entitlement",
        "owner": "team-payments",
        "justification": "why",
        "expires_at": T0,
        "actor": "tests",
        "now": CREATED,
        **change,
    }
    with pytest.raises(ExceptionInvalid, match=message):
        add_exception(store, **fields)  # type: ignore[arg-type]
    assert list_exceptions(store, now=T0) == []
