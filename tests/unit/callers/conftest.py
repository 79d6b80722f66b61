"""Fixtures of the caller tests: ``world``, a store with callers of every kind."""

from __future__ import annotations

from pathlib import Path

import pytest
from callers_world import World, make_world
from sqlalchemy import Engine


@pytest.fixture
def world(store: Engine, tmp_path: Path) -> World:
    return make_world(store, tmp_path)
