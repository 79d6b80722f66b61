"""Fixtures for the event store tests: a key ring and an event store on each backend."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import Engine

from tether.telemetry.store import EventStore
from tether.tokens import KeyRing


@pytest.fixture
def keys(store: Engine) -> KeyRing:
    return KeyRing(store, secrets.token_bytes(32))


@pytest.fixture
def events(store: Engine, keys: KeyRing) -> EventStore:
    """An event store that checkpoints every 4 events (so tests cross boundaries)."""
    return EventStore(store, keys, batch_size=3, checkpoint_every=4)
