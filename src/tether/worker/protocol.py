"""What crosses the pipe between a server and its worker: one JSON document per line.

Server → worker: a decision row (a JSON object, the columns of ``decisions``), or a
control message (a JSON array): ``["flush", n]``, or ``["result", {"ref", "result", "task"?}]``:
what a decided call returned, for drift detection's provenance (never written as a row;
``task``: the ``[identity, task id]`` a reporter over HTTP holds a token of).
Worker → server: ``["ready", pid]`` once it is up, ``["flushed", n]`` once everything
before flush ``n`` is committed, ``["health", {"healthy": bool, "written": n, "lost": n,
"problem": str | null}]`` when its decision log's state changes (counts since the worker
started; always before the ``flushed`` of the rows they count), and ``["behaviour",
{identity: record | null}]`` when drift records change.

:func:`encode_row` never raises: a row it cannot encode crosses as its error row
(``tether.store.decision_rows``), so one caller's value cannot cost a decision its place.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from tether.store.decision_rows import error_row, short_reason

FLUSH = "flush"
FLUSHED = "flushed"
RESULT = "result"
BEHAVIOUR = "behaviour"
HEALTH = "health"
READY = "ready"
#: The worker's settings travel in this environment variable (JSON).
SETTINGS_ENV = "TETHER_WORKER_SETTINGS"


def encode_row(row: Mapping[str, Any]) -> bytes:
    """One line for ``row``; its error row's line if ``row`` cannot be encoded."""
    try:
        return orjson.dumps(row) + b"\n"
    except Exception as exc:
        try:  # integers beyond 64 bits, non-string keys: JSON can say them
            text = json.dumps(
                row, default=_datetime, ensure_ascii=False, allow_nan=False, separators=(",", ":")
            )
            return text.encode() + b"\n"  # UnicodeEncodeError on a lone surrogate
        except Exception:
            return orjson.dumps(error_row(row, short_reason(exc))) + b"\n"


def _datetime(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"`{type(value).__name__}` is not JSON")


def decode_row(line: bytes) -> dict[str, Any]:
    row: dict[str, Any] = orjson.loads(line)
    row["at"] = datetime.fromisoformat(row["at"])
    return row


def encode_control(kind: str, value: Any) -> bytes:
    return orjson.dumps([kind, value]) + b"\n"


def is_control(line: bytes) -> bool:
    return line.startswith(b"[")
