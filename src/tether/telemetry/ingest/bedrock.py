"""Amazon Bedrock model invocation logs (``schemaType`` ``ModelInvocationLog``), as JSON lines.

Each record names the caller (``identity.arn``), the ``operation`` (``InvokeModel``,
``Converse``, ...), the ``modelId``, ``region``, ``accountId``, ``requestId`` and a
``timestamp``; an ``errorCode`` makes it ``denied`` or ``error`` as in CloudTrail. The
action is ``bedrock:OPERATION`` and the resource the model's ARN.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tether.telemetry.arn import split_arn
from tether.telemetry.ingest._aws import outcome_of_error, principal_from_arn
from tether.telemetry.ingest._base import (
    UNKNOWN_ACTION,
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
    Environment,
    IngestError,
    ObservedAccess,
    Source,
    dedupe_key_of,
)


def iter_events(
    source: TextSource, *, source_name: str, now: Clock | None = None
) -> Iterator[ObservedAccess | IngestError]:
    """Every invocation log record in ``source``; an IngestError per unreadable one."""
    return iter_decoded(source, decode, source_name=source_name, now=now)


def decode(raw: dict[str, Any], context: Context) -> tuple[ObservedAccess]:
    """The event of one object (the decoder :func:`iter_events` runs)."""
    return (decode_record(raw, context),)


def decode_record(raw: dict[str, Any], context: Context) -> ObservedAccess:
    """One model invocation record as an event."""
    operation = text(raw.get("operation"))
    model = text(raw.get("modelId"))
    if operation is None and model is None:
        raise NotAnEvent("not a Bedrock invocation log record: no `operation` or `modelId`")
    arn = text(mapping(raw.get("identity")).get("arn"))
    region = text(raw.get("region"))
    resource, resource_type = model, None
    if model:
        if not model.startswith("arn:"):
            resource = f"arn:aws:bedrock:{region or ''}::foundation-model/{model}"
        parsed = split_arn(resource or "")
        resource_type = f"bedrock:{parsed[4].split('/', 1)[0]}" if parsed else None
    at, at_is_ingest_time = context.time_of(raw.get("timestamp"))
    return ObservedAccess(
        at=at,
        at_is_ingest_time=at_is_ingest_time,
        source=Source.BEDROCK,
        source_event_id=text(raw.get("requestId")),
        dedupe_key=dedupe_key_of(raw),
        principal=principal_from_arn(arn) if arn else UNKNOWN_PRINCIPAL,
        action=f"bedrock:{operation or UNKNOWN_ACTION}",
        resource=resource,
        resource_type=resource_type,
        outcome=outcome_of_error(raw.get("errorCode")),
        environment=Environment(region=region),
        raw=raw,
    )
