"""Fixtures for the telemetry tests: the shared labelled raw events.

Helpers (a fixed clock, chunked and generated streams) live in ``telemetry_support.py``
beside this file, so test modules can import them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from telemetry_support import CLOUD_AUDIT


@pytest.fixture(scope="session")
def cloud_audit() -> Path:
    """The folder of labelled raw events (external material; see its README)."""
    if not CLOUD_AUDIT.is_dir():
        pytest.fail(f"shared test data missing at {CLOUD_AUDIT} (set TETHER_SHARED_DATA)")
    return CLOUD_AUDIT
