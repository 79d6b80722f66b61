"""Kubernetes audit events (``audit.k8s.io/v1`` ``Event``), as JSON lines.

Reads the API server's log backend output, EKS control-plane audit logs, and AKS
diagnostic records (``{"category": "kube-audit", "properties": {"log": "<event JSON>"}}``,
unwrapped here; the raw event kept is the record as delivered).

``user.username`` ``system:serviceaccount:NS:NAME`` is a service account, anything else
a user. ``responseStatus.code`` 401 or 403 is ``denied``, other codes from 400 up are
``error``. ``objectRef`` becomes the action ``k8s:VERB RESOURCE[/SUBRESOURCE]`` and the
resource ``RESOURCE/NAMESPACE/NAME[/SUBRESOURCE]`` (``-`` for the namespace of a
cluster-scoped object; a collection stops before the name). The time is
``requestReceivedTimestamp``, else ``stageTimestamp``; many exported samples carry
neither, and then the event gets the ingest time and ``at_is_ingest_time``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from tether.telemetry.ingest._base import (
    UNKNOWN_ACTION,
    Clock,
    Context,
    NotAnEvent,
    attributes,
    first,
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

_SERVICE_ACCOUNT = "system:serviceaccount:"
_READ_VERBS = frozenset({"get", "list", "watch"})
_AUDIT_FIELDS = ("verb", "user", "objectRef", "requestURI", "auditID")


def iter_events(
    source: TextSource, *, source_name: str, now: Clock | None = None
) -> Iterator[ObservedAccess | IngestError]:
    """Every Kubernetes audit event in ``source``; an IngestError per unreadable line."""
    return iter_decoded(source, decode, source_name=source_name, now=now)


def decode(raw: dict[str, Any], context: Context) -> tuple[ObservedAccess]:
    """The event of one object (the decoder :func:`iter_events` runs)."""
    return (decode_event(raw, context),)


def decode_event(raw: dict[str, Any], context: Context) -> ObservedAccess:
    """One audit event (or AKS diagnostic record holding one) as an event."""
    event = _unwrap(raw)
    if event.get("kind") != "Event" and not any(key in event for key in _AUDIT_FIELDS):
        raise NotAnEvent("not a Kubernetes audit event: no `verb`, `user` or `objectRef`")
    verb = text(event.get("verb"))
    ref = mapping(event.get("objectRef"))
    kind = text(ref.get("resource"))
    subresource = text(ref.get("subresource"))
    what = f"{kind}/{subresource}" if kind and subresource else kind
    path = text(event.get("requestURI"))
    if kind:
        resource: str | None = _resource(ref, kind, subresource, event.get("requestObject"))
    else:
        resource = path.split("?", 1)[0] if path else None
    at, at_is_ingest_time = context.time_of(
        event.get("requestReceivedTimestamp"), event.get("stageTimestamp")
    )
    return ObservedAccess(
        at=at,
        at_is_ingest_time=at_is_ingest_time,
        source=Source.K8S_AUDIT,
        source_event_id=text(event.get("auditID")),
        dedupe_key=dedupe_key_of(raw),
        principal=principal_of(event.get("user")),
        action=f"k8s:{verb or UNKNOWN_ACTION}" + (f" {what}" if what else ""),
        resource=resource,
        resource_type=f"k8s:{kind}" if kind else ("k8s:non-resource" if path else None),
        outcome=_outcome(event),
        read_only=(verb in _READ_VERBS) if verb else None,
        environment=Environment(
            source_ip=text(first(event.get("sourceIPs"))),
            user_agent=text(event.get("userAgent")),
        ),
        raw=raw,
    )


def principal_of(user: Any) -> RawPrincipal:
    """The principal of an audit event's ``user`` (``authentication.k8s.io/v1 UserInfo``)."""
    info = mapping(user)
    username = text(info.get("username"))
    if username is None:
        return UNKNOWN_PRINCIPAL
    groups = info.get("groups")
    extra = mapping(info.get("extra"))
    details = attributes(
        groups=",".join(g for g in groups if isinstance(g, str))
        if isinstance(groups, list)
        else None,
        aws_arn=text(first(extra.get("arn"))),  # EKS: the IAM principal behind the user
    )
    if username.startswith(_SERVICE_ACCOUNT):
        namespace, _, name = username[len(_SERVICE_ACCOUNT) :].partition(":")
        if namespace and name:
            sa = {"namespace": namespace, "name": name, **details}
            return RawPrincipal(
                PrincipalKind.K8S_SERVICE_ACCOUNT, username, f"{namespace}/{name}", sa
            )
    return RawPrincipal(PrincipalKind.K8S_USER, username, username, details)


def _unwrap(raw: dict[str, Any]) -> dict[str, Any]:
    """The audit event inside an AKS diagnostic record, or ``raw`` itself."""
    if raw.get("category") != "kube-audit":
        return raw
    log = mapping(raw.get("properties")).get("log")
    if isinstance(log, dict):
        return log
    if not isinstance(log, str):
        raise NotAnEvent("AKS `kube-audit` record without `properties.log`")
    try:
        event = orjson.loads(log)
    except orjson.JSONDecodeError as exc:
        raise NotAnEvent(f"AKS `properties.log` is not JSON ({exc})") from None
    if not isinstance(event, dict):
        raise NotAnEvent("AKS `properties.log` is not a JSON object")
    return event


def _resource(ref: dict[str, Any], kind: str, subresource: str | None, body: Any) -> str:
    namespace = text(ref.get("namespace"))
    # A create names its object in the body, not in the URL.
    name = text(ref.get("name")) or text(mapping(mapping(body).get("metadata")).get("name"))
    if name is None:
        return f"{kind}/{namespace}" if namespace else kind
    resource = f"{kind}/{namespace or '-'}/{name}"
    return f"{resource}/{subresource}" if subresource else resource


def _outcome(event: dict[str, Any]) -> AccessOutcome:
    code = integer(mapping(event.get("responseStatus")).get("code"))
    decision = mapping(event.get("annotations")).get("authorization.k8s.io/decision")
    if code in (401, 403) or decision == "forbid":
        return AccessOutcome.DENIED
    if code is not None and code >= 400:
        return AccessOutcome.ERROR
    return AccessOutcome.ALLOWED
