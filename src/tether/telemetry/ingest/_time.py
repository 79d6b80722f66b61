"""Timestamps as sources write them: ISO 8601 / RFC 3339 text or Unix epoch numbers."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Any

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_time(value: Any) -> datetime | None:
    """A UTC datetime from ``value``, or None when it is not a usable timestamp.

    Text is ISO 8601 (``T`` or a space between date and time, any number of fraction
    digits, ``Z``, an offset, or none: then UTC). Numbers and digit strings are Unix
    epoch time in seconds, milliseconds, microseconds or nanoseconds, told apart by
    magnitude (OpenTelemetry's ``*UnixNano`` are strings of nanoseconds).
    """
    if isinstance(value, str):
        return _parse_text(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return from_epoch(value)
    return None


# Logs are mostly in time order and many events share a second: remember the last few.
@functools.lru_cache(maxsize=64)
def _parse_text(value: str) -> datetime | None:
    text = value.strip()
    if text.isascii() and text.isdigit() and len(text) < 25:
        return from_epoch(int(text))
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is UTC:
        return parsed
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def from_epoch(number: float) -> datetime | None:
    """Epoch seconds, milliseconds, microseconds or nanoseconds (by magnitude) as UTC."""
    size = abs(number)
    if size >= 1e17:
        micros = number / 1000 if isinstance(number, float) else number // 1000
    elif size >= 1e14:
        micros = number
    elif size >= 1e11:
        micros = number * 1000
    else:
        micros = number * 1_000_000
    try:
        return _EPOCH + timedelta(microseconds=micros)
    except (OverflowError, ValueError):
        return None
