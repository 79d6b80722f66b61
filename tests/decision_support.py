"""A decision row as the writer takes it (the columns of ``decisions``), for store tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any


def row(n: int = 0, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "decision_id": uuid.uuid4().hex,
        "at": datetime.now(UTC),
        "subject_type": "User",
        "subject_id": f"user-{n}",
        "action": "read",
        "resource_type": "Doc",
        "resource_id": f"doc-{n}",
        "outcome": "allow",
        "decision": True,
        "reasons": ["p"],
        "obligations": {},
        "errors": [],
        "context": {"n": n, "score": 0.5},
        "request_id": None,
        "caller": None,
        "estate_revision": None,
        "duration_us": 7,
    }
    values.update(overrides)
    return values
