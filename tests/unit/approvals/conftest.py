"""Fixtures of the approval tests: ``people``, a store with who might decide."""

from __future__ import annotations

from pathlib import Path

import pytest
from approval_people import People, make_people
from sqlalchemy import Engine


@pytest.fixture
def people(store: Engine, tmp_path: Path) -> People:
    return make_people(store, tmp_path)
