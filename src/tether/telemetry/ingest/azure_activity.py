"""Azure Monitor activity log records (Azure Monitor "Activity log event schema"), as JSON lines.

Reads the diagnostic-settings export (``operationName`` text, ``resultType``, ``time``)
and the REST shape (``operationName.value``, ``status.value``, ``eventTimestamp``). The
principal is ``caller``: a user principal name when it holds ``@``, else the object or
application id of a service principal. The action is ``azure:OPERATION``, the resource
``resourceId``. AKS ``kube-audit`` records are Kubernetes audit events and belong to
:mod:`tether.telemetry.ingest.k8s_audit`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tether.telemetry.ingest._base import (
    Clock,
    Context,
    NotAnEvent,
    iter_decoded,
    mapping,
    text,
)
from tether.telemetry.ingest._reader import TextSource
from tether.telemetry.model import (
    UNKNOWN_PRINCIPAL,
    AccessOutcome,
    Environment,
    IngestError,
    ObservedAccess,
    PrincipalKind,
    RawPrincipal,
    Source,
    dedupe_key_of,
)

_FAILED = frozenset({"failure", "failed"})
_REFUSED = ("forbidden", "unauthorized", "authorizationfailed")


def iter_events(
    source: TextSource, *, source_name: str, now: Clock | None = None
) -> Iterator[ObservedAccess | IngestError]:
    """Every activity log record in ``source``; an IngestError per unreadable one."""
    return iter_decoded(source, decode, source_name=source_name, now=now)


def decode(raw: dict[str, Any], context: Context) -> tuple[ObservedAccess]:
    """The event of one object (the decoder :func:`iter_events` runs)."""
    return (decode_record(raw, context),)


def decode_record(raw: dict[str, Any], context: Context) -> ObservedAccess:
    """One activity log record as an event."""
    operation = _value(raw.get("operationName"))
    if operation is None:
        raise NotAnEvent("not an Azure activity log record: no `operationName`")
    caller = text(raw.get("caller"))
    at, at_is_ingest_time = context.time_of(raw.get("time"), raw.get("eventTimestamp"))
    return ObservedAccess(
        at=at,
        at_is_ingest_time=at_is_ingest_time,
        source=Source.AZURE_ACTIVITY,
        source_event_id=text(raw.get("eventDataId")) or text(raw.get("correlationId")),
        dedupe_key=dedupe_key_of(raw),
        principal=_principal(caller) if caller else UNKNOWN_PRINCIPAL,
        action=f"azure:{operation}",
        resource=text(raw.get("resourceId")),
        resource_type=_value(raw.get("resourceType")),
        outcome=_outcome(raw),
        environment=Environment(
            source_ip=text(raw.get("callerIpAddress")),
            region=text(raw.get("location")),
        ),
        raw=raw,
    )


def _value(field: Any) -> str | None:
    """Text, or the ``value`` of a REST ``{"value", "localizedValue"}`` pair."""
    return text(field) or text(mapping(field).get("value"))


def _principal(caller: str) -> RawPrincipal:
    if "@" in caller:
        return RawPrincipal(PrincipalKind.AZURE_USER, caller.lower(), caller)
    return RawPrincipal(PrincipalKind.AZURE_SERVICE_PRINCIPAL, caller.lower(), caller)


def _outcome(raw: dict[str, Any]) -> AccessOutcome:
    signature = (_value(raw.get("resultSignature")) or "").lower()
    if any(word in signature for word in _REFUSED):
        return AccessOutcome.DENIED
    result = (text(raw.get("resultType")) or _value(raw.get("status")) or "").lower()
    return AccessOutcome.ERROR if result in _FAILED else AccessOutcome.ALLOWED
