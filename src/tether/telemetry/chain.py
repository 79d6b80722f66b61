"""The audit hash chain: canonical form of a stored event and the link hash over it.

``hash = SHA-256(prev_hash || "\\n" || canonical row)``, hex. The canonical row is the JSON
array of the hashed columns in :data:`HASHED_COLUMNS` order (time as
``YYYY-MM-DDTHH:MM:SS.ffffffZ``), a newline, then the canonical JSON of the raw event
(:func:`tether.telemetry.model.canonical_json`). ``seq`` is not hashed: order is fixed by
each row naming its predecessor's hash, so a row moved elsewhere still hashes to itself
but no longer links, which is how verification tells a reorder from an edit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import RowMapping

from tether.telemetry.model import canonical_json

GENESIS = "0" * 64
"""The ``prev_hash`` of the first event ever stored."""

HASHED_COLUMNS = (
    "dedupe_key",
    "at",
    "at_is_ingest_time",
    "source",
    "source_event_id",
    "principal_kind",
    "principal_key",
    "identity_id",
    "task_id",
    "token_id",
    "action",
    "resource",
    "resource_type",
    "data_class",
    "outcome",
    "decision_id",
    "tool_name",
    "call_id",
    "parent_call_id",
    "source_ip",
    "region",
    "user_agent",
    "records",
    "bytes",
)


def time_text(value: datetime) -> str:
    """``value`` in the chain's one spelling of time (naive values are taken as UTC)."""
    if value.tzinfo is not None:
        value = (value if value.tzinfo is UTC else value.astimezone(UTC)).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds") + "Z"


def row_header(row: Mapping[str, Any] | RowMapping) -> bytes:
    """The canonical JSON of a row's hashed columns (all but ``raw``)."""
    values = [row[name] for name in HASHED_COLUMNS]
    values[1] = time_text(values[1])
    values[2] = bool(values[2])
    return orjson.dumps(values)


def link_hash(prev_hash: str, header: bytes, raw_canonical: bytes) -> str:
    """The hash of a row whose predecessor hashed to ``prev_hash``."""
    return hashlib.sha256(
        b"\n".join((prev_hash.encode("ascii"), header, raw_canonical))
    ).hexdigest()


def row_hash(row: Mapping[str, Any] | RowMapping, prev_hash: str) -> str:
    """The hash ``row`` (as read back from the store) must carry after ``prev_hash``."""
    return link_hash(prev_hash, row_header(row), canonical_json(row["raw"]))
