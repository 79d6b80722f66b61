"""Fixtures for the lifecycle, offboarding, grants and metrics tests.

A test module imports the fixture functions (``tether_fixture``, ...); pytest finds them
under their ``name`` (``tether``, ``clock``, ``workload_key``).

``tether``: a tether with the token tests' estate (``tests/token_support.py``) applied, on
each backend, its task authority running on a clock the test moves.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert

from tether.config import load_settings
from tether.estate import apply_estate
from tether.services import Tether
from tether.store.tables import decisions
from token_support import ISSUER, Clock, WorkloadKey, write_estate


@pytest.fixture(scope="session", name="workload_key")
def workload_key_fixture() -> WorkloadKey:
    return WorkloadKey.generate("wk-1")


@pytest.fixture(name="clock")
def clock_fixture() -> Clock:
    return Clock()


def make_tether(
    engine: Engine, tmp_path: Path, clock: Clock, key: WorkloadKey, *, extra: str = ""
) -> Tether:
    estate = write_estate(tmp_path / "estate", key, extra=extra)
    settings = load_settings(
        {},
        database_url=str(engine.url),
        master_key_file=str(tmp_path / "master.key"),
        issuer=ISSUER,
    )
    tether = Tether(settings, engine=engine, clock=clock)
    apply_estate(tether.engine, estate)
    tether.reload()
    return tether


@pytest.fixture(name="tether")
def tether_fixture(
    store: Engine, tmp_path: Path, clock: Clock, workload_key: WorkloadKey
) -> Iterator[Tether]:
    made = make_tether(store, tmp_path, clock, workload_key)
    yield made
    made.close()


def add_decision(
    engine: Engine, subject: str, action: str, resource: str, at: datetime, outcome: str = "allow"
) -> None:
    """A decision as the decision log records it."""
    resource_type, _, resource_id = resource.partition(":")
    with engine.begin() as connection:
        connection.execute(
            insert(decisions).values(
                decision_id=f"d-{subject}-{action}-{resource}-{at.timestamp()}"[:40],
                at=at,
                subject_type="agent",
                subject_id=subject,
                action=action,
                resource_type=resource_type,
                resource_id=resource_id,
                outcome=outcome,
                decision=outcome in ("allow", "constrain"),
                reasons=[],
                obligations={},
                errors=[],
                context={},
                duration_us=1,
            )
        )
