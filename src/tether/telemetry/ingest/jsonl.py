"""Generic JSON lines (JSON Lines framing, RFC 8259 objects) read through a field mapping.

For sources tether has no adapter for: each line is one object, and a mapping says where
each field of the event is, as a dotted path (``actor.id``; a number indexes an array,
``sourceIPs.0``)::

    {"at": "ts", "principal": "actor.id", "action": "op", "resource": "target"}

``principal`` and ``action`` are required; everything else is optional. ``at`` takes
ISO 8601 text or epoch numbers (missing: the ingest time, flagged). ``outcome`` takes
words (``allowed``/``success``/``ok``, ``denied``/``forbidden``, anything else is
``error``), booleans, or HTTP status codes. The principal's kind is ``principal_kind``
when mapped, else ``jsonl``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from tether.telemetry.errors import FieldMappingInvalid
from tether.telemetry.ingest._base import (
    Clock,
    Context,
    NotAnEvent,
    integer,
    iter_decoded,
    text,
)
from tether.telemetry.ingest._reader import TextSource
from tether.telemetry.model import (
    AccessOutcome,
    Environment,
    IngestError,
    ObservedAccess,
    RawPrincipal,
    Source,
    dedupe_key_of,
)

REQUIRED = ("principal", "action")
OPTIONAL = (
    "at",
    "principal_kind",
    "principal_name",
    "resource",
    "resource_type",
    "outcome",
    "read_only",
    "source_event_id",
    "task_id",
    "token_id",
    "decision_id",
    "tool_name",
    "call_id",
    "parent_call_id",
    "records",
    "bytes",
    "source_ip",
    "region",
    "user_agent",
)
DEFAULT_PRINCIPAL_KIND = "jsonl"
_ALLOWED = frozenset({"allowed", "allow", "permit", "permitted", "success", "succeeded", "ok"})
_DENIED = frozenset({"denied", "deny", "forbidden", "unauthorized", "refused", "blocked"})


@dataclass(frozen=True, slots=True)
class FieldMapping:
    """Where each event field is in a source object: field name -> path segments."""

    paths: Mapping[str, tuple[str, ...]]

    @classmethod
    def parse(cls, fields: Mapping[str, str]) -> FieldMapping:
        """Check a ``{field: "dotted.path"}`` mapping once, before any line is read.

        Raises:
            FieldMappingInvalid: an unknown field, a missing required one, or an empty path.
        """
        known = set(REQUIRED) | set(OPTIONAL)
        unknown = sorted(set(fields) - known)
        if unknown:
            names = ", ".join(f"`{name}`" for name in unknown)
            raise FieldMappingInvalid(f"unknown field(s) {names} in the mapping")
        missing = [name for name in REQUIRED if name not in fields]
        if missing:
            names = ", ".join(f"`{name}`" for name in missing)
            raise FieldMappingInvalid(f"the mapping must say where to find {names}")
        paths: dict[str, tuple[str, ...]] = {}
        for name, path in fields.items():
            segments = tuple(path.split(".")) if isinstance(path, str) else ()
            if not segments or not all(segments):
                raise FieldMappingInvalid(f"the path for `{name}` is not a dotted path: `{path}`")
            paths[name] = segments
        return cls(paths)

    def path_of(self, name: str) -> str:
        return ".".join(self.paths.get(name, ()))

    def value(self, obj: dict[str, Any], name: str) -> Any:
        """The value at field ``name``'s path in ``obj``, or None."""
        segments = self.paths.get(name)
        if segments is None:
            return None
        current: Any = obj
        for segment in segments:
            if isinstance(current, dict):
                current = current.get(segment)
            elif (
                isinstance(current, list)
                and segment.isascii()
                and segment.isdigit()
                and len(segment) < 10
            ):
                index = int(segment)
                if index >= len(current):
                    return None
                current = current[index]
            else:
                return None
        return current


def iter_events(
    source: TextSource,
    *,
    source_name: str,
    mapping: Mapping[str, str] | FieldMapping,
    now: Clock | None = None,
) -> Iterator[ObservedAccess | IngestError]:
    """Every object in ``source`` as an event through ``mapping``.

    Raises:
        FieldMappingInvalid: when ``mapping`` is wrong (checked before reading).
    """
    fields = mapping if isinstance(mapping, FieldMapping) else FieldMapping.parse(mapping)

    def decode(raw: dict[str, Any], context: Context) -> Iterator[ObservedAccess]:
        yield decode_object(raw, fields, context)

    return iter_decoded(source, decode, source_name=source_name, now=now)


def decode_object(raw: dict[str, Any], fields: FieldMapping, context: Context) -> ObservedAccess:
    """One object as an event through ``fields``."""
    principal = text(fields.value(raw, "principal"))
    if principal is None:
        raise NotAnEvent(f"no `{fields.path_of('principal')}` (principal) in the object")
    action = text(fields.value(raw, "action"))
    if action is None:
        raise NotAnEvent(f"no `{fields.path_of('action')}` (action) in the object")

    def field(name: str) -> str | None:
        return text(fields.value(raw, name))

    at, at_is_ingest_time = context.time_of(fields.value(raw, "at"))
    kind = field("principal_kind") or DEFAULT_PRINCIPAL_KIND
    return ObservedAccess(
        at=at,
        at_is_ingest_time=at_is_ingest_time,
        source=Source.JSONL,
        source_event_id=field("source_event_id"),
        dedupe_key=dedupe_key_of(raw),
        principal=RawPrincipal(kind, principal, field("principal_name") or principal),
        task_id=field("task_id"),
        token_id=field("token_id"),
        decision_id=field("decision_id"),
        action=action,
        resource=field("resource"),
        resource_type=field("resource_type"),
        outcome=outcome_of(fields.value(raw, "outcome")),
        read_only=_boolean(fields.value(raw, "read_only")),
        tool_name=field("tool_name"),
        call_id=field("call_id"),
        parent_call_id=field("parent_call_id"),
        records=integer(fields.value(raw, "records")),
        bytes=integer(fields.value(raw, "bytes")),
        environment=Environment(
            source_ip=field("source_ip"), region=field("region"), user_agent=field("user_agent")
        ),
        raw=raw,
    )


def outcome_of(value: Any) -> AccessOutcome:
    """An outcome from a word, a boolean or an HTTP status code; absent means allowed."""
    if value is None:
        return AccessOutcome.ALLOWED
    if isinstance(value, bool):
        return AccessOutcome.ALLOWED if value else AccessOutcome.DENIED
    code = integer(value)
    if code is not None:
        if code in (401, 403):
            return AccessOutcome.DENIED
        return AccessOutcome.ERROR if code >= 400 else AccessOutcome.ALLOWED
    word = str(value).strip().lower()
    if word in _ALLOWED:
        return AccessOutcome.ALLOWED
    return AccessOutcome.DENIED if word in _DENIED else AccessOutcome.ERROR


def _boolean(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None
