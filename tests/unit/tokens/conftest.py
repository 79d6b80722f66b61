"""Fixtures for the task and token tests: workload keys, a moving clock, a tether with the
test estate (``tests/token_support.py``) on each backend or on SQLite only."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tether.config import load_settings
from tether.estate import apply_estate
from tether.services import Tether
from tether.store.engine import open_engine
from token_support import ISSUER, Clock, WorkloadKey, write_estate


@pytest.fixture(scope="session")
def workload_key() -> WorkloadKey:
    return WorkloadKey.generate("wk-1")


@pytest.fixture(scope="session")
def other_key() -> WorkloadKey:
    """The key of another trust domain, `spiffe://other.org`."""
    return WorkloadKey.generate("other-1")


@pytest.fixture
def clock() -> Clock:
    return Clock()


TetherFactory = Callable[..., Tether]


def _make_tether(
    engine: Engine, tmp_path: Path, clock: Clock, *keys: WorkloadKey, other: WorkloadKey, **env: str
) -> Tether:
    estate = write_estate(tmp_path / "estate", *keys, other=other)
    settings = load_settings(
        {},
        database_url=str(engine.url),
        master_key_file=str(tmp_path / "master.key"),
        issuer=env.get("issuer", ISSUER),
        audience=env.get("audience", "tether"),
    )
    tether = Tether(settings, engine=engine, clock=clock)
    apply_estate(tether.engine, estate)
    tether.reload()
    return tether


@pytest.fixture
def tether(
    store: Engine, tmp_path: Path, clock: Clock, workload_key: WorkloadKey, other_key: WorkloadKey
) -> Iterator[Tether]:
    """A tether with the test estate applied, on each backend; its authority runs on ``clock``."""
    made = _make_tether(store, tmp_path, clock, workload_key, other=other_key)
    yield made
    made.close()


@pytest.fixture
def sqlite_tether(
    tmp_path: Path, clock: Clock, workload_key: WorkloadKey, other_key: WorkloadKey
) -> Iterator[Tether]:
    """Like ``tether``, on SQLite only (for what does not depend on the backend)."""
    engine = open_engine(f"sqlite:///{tmp_path}/tether.db")
    made = _make_tether(engine, tmp_path, clock, workload_key, other=other_key)
    yield made
    made.close()
    engine.dispose()
