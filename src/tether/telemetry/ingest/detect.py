"""Which source format a parsed event is in, told from its shape alone.

Used where one stream mixes formats (the labelled test fixtures, a batch posted to the
API). Each test looks for fields that only its format has; the order settles formats
that share field names (an AKS record is Azure-shaped but holds a Kubernetes event).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from tether.telemetry.ingest._base import Clock, Context, NotAnEvent, get, iter_decoded, mapping
from tether.telemetry.ingest._reader import TextSource
from tether.telemetry.ingest._registry import DECODERS
from tether.telemetry.model import IngestError, ObservedAccess, Source


def detect_source(raw: Any) -> Source | None:
    """The source format ``raw`` is in, or None when no adapter recognises it."""
    if not isinstance(raw, dict):
        return None
    if "resourceSpans" in raw:
        return Source.OTEL
    if isinstance(raw.get("Records"), list):
        return Source.CLOUDTRAIL
    if raw.get("schemaType") == "ModelInvocationLog" or ("modelId" in raw and "operation" in raw):
        return Source.BEDROCK
    if get(raw, "eventName") is not None and any(
        get(raw, key) is not None for key in ("eventSource", "userIdentity", "awsRegion")
    ):
        return Source.CLOUDTRAIL
    if raw.get("category") == "kube-audit" or _is_k8s_event(raw):
        return Source.K8S_AUDIT
    if get(raw, "protoPayload") is not None or "methodName" in raw or _is_log_entry(raw):
        return Source.GCP_AUDIT
    if "operationName" in raw:
        return Source.AZURE_ACTIVITY
    actor = raw.get("actor")
    if isinstance(actor, dict) and "type" in raw:
        if raw.get("object") == "organization.audit_log" or "effective_at" in raw:
            return Source.OPENAI
        if "organization_id" in raw or str(actor.get("type", "")).endswith("_actor"):
            return Source.ANTHROPIC
    return None


def _is_k8s_event(raw: dict[str, Any]) -> bool:
    api_version = raw.get("apiVersion")
    if isinstance(api_version, str) and api_version.startswith("audit.k8s.io/"):
        return True
    if raw.get("kind") == "Event" and ("verb" in raw or "user" in raw or "objectRef" in raw):
        return True
    return "objectRef" in raw and "verb" in raw


def _is_log_entry(raw: dict[str, Any]) -> bool:
    """A Cloud Logging ``LogEntry`` without a payload (``logName``, ``insertId``, ``operation``)."""
    if get(raw, "logName") is not None or get(raw, "insertId") is not None:
        return True
    return "producer" in mapping(raw.get("operation"))


def decode_detected(raw: dict[str, Any], context: Context) -> Iterable[ObservedAccess | str]:
    """Decode ``raw`` with the adapter for the format :func:`detect_source` finds."""
    source = detect_source(raw)
    if source is None:
        raise NotAnEvent("not an event of any format tether reads")
    return DECODERS[source](raw, context)


def iter_detected(
    source: TextSource,
    *,
    source_name: str,
    now: Clock | None = None,
    fallback: Source | None = None,
) -> Iterator[ObservedAccess | IngestError]:
    """Every event in a stream that mixes formats, each read by the adapter for its shape.

    An object of no recognised shape goes to ``fallback``'s adapter when one is given
    (the format the stream is said to be in), whose error then names what it lacks.
    """
    if fallback is None:
        return iter_decoded(source, decode_detected, source_name=source_name, now=now)
    default = DECODERS[fallback]

    def decode(raw: dict[str, Any], context: Context) -> Iterable[ObservedAccess | str]:
        found = detect_source(raw)
        return (default if found is None else DECODERS[found])(raw, context)

    return iter_decoded(source, decode, source_name=source_name, now=now)
