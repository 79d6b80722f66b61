"""What crosses the pipe between a server and its worker: one JSON document per line.

Server → worker: a decision row (a JSON object, the columns of ``decisions``), or a
control message (a JSON array): ``["flush", n]``.
Worker → server: ``["ready", pid]`` once it is up, ``["flushed", n]`` once everything
before flush ``n`` is committed, and ``["behaviour", {identity: record | null}]`` when
drift records change.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

FLUSH = "flush"
FLUSHED = "flushed"
BEHAVIOUR = "behaviour"
READY = "ready"
#: The worker's settings travel in this environment variable (JSON).
SETTINGS_ENV = "TETHER_WORKER_SETTINGS"


def encode_row(row: Mapping[str, Any]) -> bytes:
    try:
        return orjson.dumps(row) + b"\n"
    except TypeError:  # an integer beyond 64 bits in a caller's context
        return json.dumps(row, default=str, separators=(",", ":")).encode() + b"\n"


def decode_row(line: bytes) -> dict[str, Any]:
    row: dict[str, Any] = orjson.loads(line)
    row["at"] = datetime.fromisoformat(row["at"])
    return row


def encode_control(kind: str, value: Any) -> bytes:
    return orjson.dumps([kind, value]) + b"\n"


def is_control(line: bytes) -> bool:
    return line.startswith(b"[")
