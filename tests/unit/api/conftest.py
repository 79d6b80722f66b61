"""The ASGI app over a whole service on a fresh SQLite store, for in-process API tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tether.api.app import TetherApp, create_app
from tether.config import load_settings
from tether.services import Tether


@pytest.fixture
def app(tmp_path: Path) -> Iterator[TetherApp]:
    settings = load_settings(
        {}, database_url=f"sqlite:///{tmp_path}/t.db", master_key_file=str(tmp_path / "m.key")
    )
    tether = Tether(settings)
    application = create_app(tether)
    yield application
    application.gate.close()
    tether.close()
