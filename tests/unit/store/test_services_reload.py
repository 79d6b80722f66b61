"""Hot reload in :class:`tether.services.Tether`: new estate revisions replace the live policy."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select

from tether.config import Settings
from tether.estate.compiled import CompiledEstate
from tether.policy import DecisionRequest, EntityRecord, EntityRef, Outcome, parse_policy_file
from tether.services import Tether
from tether.store.tables import decisions, estate_revisions

READ = DecisionRequest(EntityRef("User", "alice"), "read", EntityRef("Doc", "d1"))
WRITE = DecisionRequest(EntityRef("User", "alice"), "write", EntityRef("Doc", "d1"))


def bundle(policy_text: str) -> dict[str, Any]:
    specs, problems = parse_policy_file("policies/p.cedar", policy_text)
    assert problems == []
    estate = CompiledEstate(policies=specs, entities=[EntityRecord("User", "alice", {})])
    return estate.to_bundle()


def add_revision(engine: Engine, content: dict[str, Any]) -> int:
    with engine.begin() as connection:
        result = connection.execute(
            insert(estate_revisions).values(
                digest="0" * 64,
                applied_at=datetime.now(UTC),
                applied_by="test",
                source="test",
                summary={},
                bundle=content,
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])


ALLOW_READ = bundle('@id("read") permit(principal, action == Action::"read", resource);')
ALLOW_WRITE = bundle('@id("write") permit(principal, action == Action::"write", resource);')
BROKEN_BUNDLES = [
    pytest.param({"policies": [{"id": "x"}], "entities": []}, id="missing-keys"),
    pytest.param(
        {**ALLOW_READ, "policies": [{**ALLOW_READ["policies"][0], "est": {"effect": "maybe"}}]},
        id="bad-cedar",
    ),
    pytest.param({**ALLOW_READ, "policies": ALLOW_READ["policies"] * 2}, id="duplicate-ids"),
]


@pytest.fixture
def make_tether(store: Engine) -> Iterator[Callable[..., Tether]]:
    made: list[Tether] = []

    def make(**settings: Any) -> Tether:
        tether = Tether(Settings(**settings), engine=store)
        made.append(tether)
        return tether

    yield make
    for tether in made:
        tether.close()


def test_empty_store_denies_everything(make_tether: Callable[..., Tether]) -> None:
    tether = make_tether()
    assert tether.snapshot.revision is None
    assert tether.decide(READ).outcome is Outcome.DENY


def test_a_new_revision_is_picked_up_by_reload(
    store: Engine, make_tether: Callable[..., Tether]
) -> None:
    tether = make_tether()
    revision = add_revision(store, ALLOW_READ)
    assert tether.reload() is True
    assert tether.snapshot.revision == revision
    assert tether.decide(READ).outcome is Outcome.ALLOW
    assert tether.reload() is False
    add_revision(store, ALLOW_WRITE)
    assert tether.reload() is True
    assert tether.decide(READ).outcome is Outcome.DENY
    assert tether.decide(WRITE).outcome is Outcome.ALLOW


def test_start_up_loads_the_newest_revision(
    store: Engine, make_tether: Callable[..., Tether]
) -> None:
    add_revision(store, ALLOW_WRITE)
    newest = add_revision(store, ALLOW_READ)
    tether = make_tether()
    assert tether.snapshot.revision == newest
    assert tether.decide(READ).outcome is Outcome.ALLOW


@pytest.mark.parametrize("broken", BROKEN_BUNDLES)
def test_a_broken_bundle_keeps_the_last_good_snapshot(
    store: Engine, make_tether: Callable[..., Tether], broken: dict[str, Any]
) -> None:
    good = add_revision(store, ALLOW_READ)
    tether = make_tether()
    bad = add_revision(store, broken)
    with pytest.raises(Exception, match=f"revision `{bad}`"):
        tether.reload()
    assert tether.snapshot.revision == good
    assert tether.decide(READ).outcome is Outcome.ALLOW
    # The broken revision is not retried (nor logged) over and over; a newer one loads.
    assert tether.reload() is False
    fixed = add_revision(store, ALLOW_WRITE)
    assert tether.reload() is True
    assert tether.snapshot.revision == fixed


def test_the_watcher_reloads_in_the_background_and_survives_a_broken_bundle(
    store: Engine, make_tether: Callable[..., Tether], caplog: pytest.LogCaptureFixture
) -> None:
    tether = make_tether(reload_interval_ms=50)
    tether.start_background()

    def wait_for(revision: int) -> float:
        started = time.monotonic()
        while tether.snapshot.revision != revision:
            assert time.monotonic() - started < 1.0, "not reloaded within 1 s"
            time.sleep(0.01)
        return time.monotonic() - started

    first = add_revision(store, ALLOW_READ)
    wait_for(first)
    assert tether.decide(READ).outcome is Outcome.ALLOW
    with caplog.at_level(logging.ERROR, logger="tether.live"):
        add_revision(store, BROKEN_BUNDLES[0].values[0])
        time.sleep(0.5)
    assert tether.snapshot.revision == first
    assert tether.decide(READ).outcome is Outcome.ALLOW
    failures = [r for r in caplog.records if "keeping revision" in r.getMessage()]
    assert len(failures) == 1, "a broken revision must be reported once, not every poll"
    later = add_revision(store, ALLOW_WRITE)
    wait_for(later)
    assert tether.decide(WRITE).outcome is Outcome.ALLOW


def test_evaluate_records_the_decision_with_its_revision(
    store: Engine, make_tether: Callable[..., Tether]
) -> None:
    revision = add_revision(store, ALLOW_READ)
    tether = make_tether()
    recorded = tether.evaluate(READ, request_id="req-1", caller="test")
    denied = tether.evaluate(WRITE)
    tether.decision_log.flush()
    with store.connect() as connection:
        rows = {r.decision_id: r for r in connection.execute(select(decisions)).all()}
    row = rows[recorded.decision_id]
    assert (row.subject_type, row.subject_id, row.action) == ("User", "alice", "read")
    assert (row.outcome, row.decision, row.reasons) == ("allow", True, ["read"])
    assert (row.request_id, row.caller, row.estate_revision) == ("req-1", "test", revision)
    assert rows[denied.decision_id].outcome == "deny"
    assert tether.outcome_counts == {"allow": 1, "deny": 1}


def test_decide_does_not_record(store: Engine, make_tether: Callable[..., Tether]) -> None:
    tether = make_tether()
    tether.decide(READ)
    tether.decision_log.flush()
    with store.connect() as connection:
        assert connection.execute(select(decisions)).first() is None
