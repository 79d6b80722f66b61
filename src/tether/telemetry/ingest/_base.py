"""What every ingest adapter shares: the decode loop and defensive field access.

An adapter is a *decoder*: a function from one parsed JSON object to the events in it
(usually one). It raises :class:`NotAnEvent` when the object lacks what its format
requires, or yields a message string for a part it cannot read (one bad span of an
OTLP batch). :func:`iter_decoded` runs a decoder over a stream and turns every problem
into an :class:`~tether.telemetry.model.IngestError` naming file and line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tether.telemetry.ingest._reader import TextSource, Unreadable, read_json
from tether.telemetry.ingest._time import parse_time
from tether.telemetry.model import IngestError, ObservedAccess

UNKNOWN_ACTION = "unknown"
# Marks a failure that is a bug in an adapter, not a problem of the input.
UNEXPECTED = "unexpected failure reading event"


class NotAnEvent(Exception):
    """Raised by a decoder for an object that lacks what its format requires."""


Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Context:
    """What a decoder may need besides the object: the ingest clock."""

    now: Clock = utc_now

    def time_of(self, *candidates: Any) -> tuple[datetime, bool]:
        """The first usable timestamp among ``candidates``, else (ingest time, True)."""
        for candidate in candidates:
            if candidate is not None:
                parsed = parse_time(candidate)
                if parsed is not None:
                    return parsed, False
        return self.now(), True


Decoder = Callable[[dict[str, Any], Context], Iterable[ObservedAccess | str]]


def iter_decoded(
    source: TextSource,
    decoder: Decoder,
    *,
    source_name: str,
    now: Clock | None = None,
    records_key: str | None = None,
) -> Iterator[ObservedAccess | IngestError]:
    """Run ``decoder`` over every JSON value in ``source``; problems become IngestErrors."""
    context = Context(now or utc_now)
    for item in read_json(source, records_key=records_key):
        if isinstance(item, Unreadable):
            yield IngestError(source_name, item.line, item.message)
            continue
        value = item.value
        if not isinstance(value, dict):
            where = f"{item.where}: " if item.where else ""
            yield IngestError(
                source_name, item.line, f"{where}expected a JSON object, got {json_type(value)}"
            )
            continue
        # decode_value, inlined: one generator less per event on the hot path.
        try:
            for out in decoder(value, context):
                if isinstance(out, ObservedAccess):
                    yield out
                else:
                    where = f"{item.where}: " if item.where else ""
                    yield IngestError(source_name, item.line, where + out)
        except _FAILURES as exc:
            where = f"{item.where}: " if item.where else ""
            yield IngestError(source_name, item.line, where + _failure(exc))


def decode_value(
    value: Any,
    decoder: Decoder,
    context: Context,
    file: str,
    line: int,
    where: str = "",
) -> Iterator[ObservedAccess | IngestError]:
    """The events a decoder makes of one parsed value, problems as IngestErrors."""
    if not isinstance(value, dict):
        yield IngestError(file, line, f"{where}expected a JSON object, got {json_type(value)}")
        return
    try:
        for out in decoder(value, context):
            yield out if isinstance(out, ObservedAccess) else IngestError(file, line, where + out)
    except _FAILURES as exc:
        yield IngestError(file, line, where + _failure(exc))


_FAILURES = (
    NotAnEvent,
    ValueError,  # UnicodeError included
    TypeError,
    AttributeError,
    KeyError,
    IndexError,
    RecursionError,
)


def _failure(exc: Exception) -> str:
    if isinstance(exc, NotAnEvent):
        return str(exc)
    if isinstance(exc, UnicodeError):
        return "event holds text that is not valid UTF-8"
    # A safety net: one odd event must not end a long ingest. Tests assert it never fires.
    return f"{UNEXPECTED} ({type(exc).__name__}: {exc})"


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def get(obj: dict[str, Any], key: str) -> Any:
    """``obj[key]``, else ``obj[key.lower()]`` (some exporters lower-case every key), else None."""
    value = obj.get(key)
    return obj.get(key.lower()) if value is None else value


def respelling(names: str) -> dict[str, str]:
    """Lower-cased spelling -> proper spelling of the space-separated ``names``."""
    return {name.lower(): name for name in names.split()}


def respell(obj: dict[str, Any], spelling: dict[str, str]) -> dict[str, Any]:
    """A copy of ``obj`` whose lower-cased keys are spelt as ``spelling`` says."""
    return {spelling.get(key, key): value for key, value in obj.items()}


def text(value: Any) -> str | None:
    """``value`` as non-empty text: strings as they are, numbers written out, else None."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def mapping(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def first(value: Any) -> Any:
    """The first element of a non-empty array, or ``value`` itself when it is not an array."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


def integer(value: Any) -> int | None:
    """A non-negative integer from a number or digit string, else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 20:
        return int(value)
    return None


def attributes(**values: str | None) -> dict[str, str]:
    """Keyword arguments whose values are present, for ``RawPrincipal.attributes``."""
    return {key: value for key, value in values.items() if value}
