"""Google Cloud Audit Logs (``LogEntry`` with a ``google.cloud.audit.AuditLog`` payload).

Reads JSON lines of log entries (a Logging sink to Cloud Storage or Pub/Sub) and the
JSON array ``gcloud logging read --format=json`` prints. GKE's Kubernetes audit
arrives in this shape too (``methodName`` ``io.k8s.core.v1.pods.create``).

The principal is ``protoPayload.authenticationInfo.principalEmail`` (a service account
when it ends in ``gserviceaccount.com``); the action is ``methodName``, the resource
``resourceName``; ``status.code`` 7 (PERMISSION_DENIED) or 16 (UNAUTHENTICATED) is
``denied``, any other non-zero code ``error``. The time is ``timestamp`` (else
``receiveTimestamp``); ``insertId`` is the source event id.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tether.telemetry.ingest._base import (
    UNKNOWN_ACTION,
    Clock,
    Context,
    NotAnEvent,
    attributes,
    first,
    get,
    integer,
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

_ENTRY_FIELDS = ("protoPayload", "logName", "insertId", "operation", "methodName")
_DENIED_CODES = (7, 16)


def iter_events(
    source: TextSource, *, source_name: str, now: Clock | None = None
) -> Iterator[ObservedAccess | IngestError]:
    """Every audit log entry in ``source`` as an event; an IngestError per unreadable one."""
    return iter_decoded(source, decode, source_name=source_name, now=now)


def decode(raw: dict[str, Any], context: Context) -> tuple[ObservedAccess]:
    """The event of one object (the decoder :func:`iter_events` runs)."""
    return (decode_entry(raw, context),)


def decode_entry(raw: dict[str, Any], context: Context) -> ObservedAccess:
    """One ``LogEntry`` as an event."""
    if not any(get(raw, key) is not None for key in _ENTRY_FIELDS):
        raise NotAnEvent("not a Cloud Audit Logs entry: no `protoPayload`")
    # Some exporters flatten the payload into the entry; read it from there then.
    payload = mapping(get(raw, "protoPayload")) or raw
    authorization = mapping(first(payload.get("authorizationInfo") or raw.get("authorizationInfo")))
    metadata = mapping(payload.get("requestMetadata"))
    monitored = mapping(raw.get("resource"))
    labels = mapping(monitored.get("labels"))
    at, at_is_ingest_time = context.time_of(raw.get("timestamp"), get(raw, "receiveTimestamp"))
    return ObservedAccess(
        at=at,
        at_is_ingest_time=at_is_ingest_time,
        source=Source.GCP_AUDIT,
        source_event_id=text(get(raw, "insertId")),
        dedupe_key=dedupe_key_of(raw),
        principal=principal_of(payload.get("authenticationInfo")),
        action=text(payload.get("methodName"))
        or text(authorization.get("permission"))
        or UNKNOWN_ACTION,
        resource=text(payload.get("resourceName")) or text(authorization.get("resource")),
        resource_type=text(mapping(authorization.get("resourceAttributes")).get("type"))
        or text(monitored.get("type")),
        outcome=_outcome(payload, authorization),
        environment=Environment(
            source_ip=text(metadata.get("callerIp")) or text(metadata.get("callerIP")),
            region=text(labels.get("location"))
            or text(labels.get("zone"))
            or text(labels.get("region")),
            user_agent=text(metadata.get("callerSuppliedUserAgent")),
        ),
        raw=raw,
    )


def principal_of(authentication: Any) -> RawPrincipal:
    """The principal of ``authenticationInfo`` (email, else ``principalSubject``)."""
    info = mapping(authentication)
    email = text(info.get("principalEmail"))
    subject = text(info.get("principalSubject"))
    if email is None and subject:
        email = subject.partition(":")[2] or subject
    if email is None:
        return UNKNOWN_PRINCIPAL
    delegation = mapping(first(info.get("serviceAccountDelegationInfo")))
    first_party = mapping(delegation.get("firstPartyPrincipal"))
    details = attributes(
        email=email,
        subject=subject,
        # A service account key in use is a long-lived secret worth knowing about.
        service_account_key=text(info.get("serviceAccountKeyName")),
        delegated_by=text(first_party.get("principalEmail")),
    )
    service_account = email.lower().endswith(".gserviceaccount.com")
    kind = PrincipalKind.GCP_SERVICE_ACCOUNT if service_account else PrincipalKind.GCP_USER
    return RawPrincipal(kind, email.lower(), email, details)


def _outcome(payload: dict[str, Any], authorization: dict[str, Any]) -> AccessOutcome:
    code = integer(mapping(payload.get("status")).get("code"))
    if code in _DENIED_CODES:
        return AccessOutcome.DENIED
    if code:
        return AccessOutcome.ERROR
    if authorization.get("granted") is False:
        return AccessOutcome.DENIED
    return AccessOutcome.ALLOWED
