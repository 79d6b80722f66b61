"""AWS CloudTrail records (AWS CloudTrail User Guide, "CloudTrail record contents").

Reads CloudTrail log files (``{"Records": [...]}``, as delivered to S3, streamed one
record at a time however large the file) and JSON lines of single records (as
EventBridge, CloudWatch Logs or a SIEM export them), gzip or not.

``errorCode`` makes the outcome: authorisation failures are ``denied``, other errors
``error`` (a failed console sign-in, reported without an error code, is ``denied``).
``requestParameters`` name the resource where the service is known (S3 bucket/key, IAM
role/user, Lambda function, ...); see ``_aws_resources``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import Any

from tether.frozen import builder
from tether.telemetry.ingest._aws import outcome_of_error, principal_of
from tether.telemetry.ingest._aws_resources import resource_of
from tether.telemetry.ingest._base import (
    Clock,
    Context,
    NotAnEvent,
    integer,
    iter_decoded,
    json_type,
    mapping,
    respell,
    respelling,
    text,
)
from tether.telemetry.ingest._reader import TextSource
from tether.telemetry.model import (
    AccessOutcome,
    Environment,
    IngestError,
    ObservedAccess,
    Source,
    canonical_json,
)


def iter_events(
    source: TextSource, *, source_name: str, now: Clock | None = None
) -> Iterator[ObservedAccess | IngestError]:
    """Every CloudTrail record in ``source`` as an event; an IngestError per unreadable one."""
    return iter_decoded(source, decode, source_name=source_name, now=now, records_key="Records")


def decode(raw: dict[str, Any], context: Context) -> Iterable[ObservedAccess | str]:
    """The events of one record, or of every record of a ``{"Records": [...]}`` document."""
    records = raw.get("Records")
    if isinstance(records, list):
        return _each_record(records, context)
    return (decode_record(raw, context),)


def _each_record(records: list[Any], context: Context) -> Iterator[ObservedAccess | str]:
    for index, record in enumerate(records, 1):
        if not isinstance(record, dict):
            yield f"record {index}: expected a JSON object, got {json_type(record)}"
            continue
        try:
            yield decode_record(record, context)
        except NotAnEvent as exc:
            yield f"record {index}: {exc}"
        except UnicodeError:
            yield f"record {index}: event holds text that is not valid UTF-8"


# ObservedAccess(...) and Environment(...) per record, at half the cost (tether.frozen).
_observed = builder(ObservedAccess)
_environment = builder(Environment)

# Some exporters lower-case every key; such records are read through a respelt copy.
_SPELLING = respelling(
    "eventName eventSource eventTime eventID awsRegion recipientAccountId userIdentity"
    " requestParameters sourceIPAddress userAgent readOnly errorCode responseElements"
    " additionalEventData"
)


def decode_record(raw: dict[str, Any], context: Context) -> ObservedAccess:
    """One CloudTrail record as an event."""
    fields = raw if "eventName" in raw else respell(raw, _SPELLING)
    event_name = text(fields.get("eventName"))
    if event_name is None:
        raise NotAnEvent("not a CloudTrail record: no `eventName`")
    event_source = text(fields.get("eventSource"))
    service = event_source.split(".", 1)[0] if event_source else None
    principal = principal_of(fields.get("userIdentity"))
    region = text(fields.get("awsRegion"))
    account = text(fields.get("recipientAccountId")) or principal.attributes.get("account_id")
    arn = principal.attributes.get("arn", "")
    partition = arn.split(":", 2)[1] if arn.startswith("arn:") else "aws"
    resource, resource_type = resource_of(
        service or "",
        fields.get("requestParameters"),
        fields.get("resources"),
        partition,
        region or "",
        account or "",
    )
    at, at_is_ingest_time = context.time_of(fields.get("eventTime"))
    raw_json = canonical_json(raw)
    return _observed(
        at=at,
        at_is_ingest_time=at_is_ingest_time,
        source=Source.CLOUDTRAIL,
        source_event_id=text(fields.get("eventID")),
        dedupe_key=hashlib.sha256(raw_json).hexdigest(),  # = dedupe_key_of(raw)
        principal=principal,
        action=f"{service}:{event_name}" if service else event_name,
        resource=resource,
        resource_type=resource_type,
        outcome=_outcome(fields),
        read_only=_read_only(fields.get("readOnly")),
        environment=_environment(
            source_ip=text(fields.get("sourceIPAddress")),
            region=region,
            user_agent=text(fields.get("userAgent")),
        ),
        bytes=_bytes(fields.get("additionalEventData")),
        raw=raw,
        raw_json=raw_json,
    )


def _outcome(fields: dict[str, Any]) -> AccessOutcome:
    outcome = outcome_of_error(fields.get("errorCode"))
    if outcome is AccessOutcome.ALLOWED:
        response = fields.get("responseElements")
        if isinstance(response, dict) and response.get("ConsoleLogin") == "Failure":
            return AccessOutcome.DENIED
    return outcome


def _read_only(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _bytes(extra: Any) -> int | None:
    """S3 data events report ``bytesTransferredIn``/``Out`` in ``additionalEventData``."""
    data = mapping(extra)
    counts = [integer(data.get("bytesTransferredIn")), integer(data.get("bytesTransferredOut"))]
    known = [count for count in counts if count is not None]
    return sum(known) if known else None
