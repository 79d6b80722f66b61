"""OpenTelemetry GenAI tool-call spans from OTLP/JSON trace exports.

Reads ``ExportTraceServiceRequest`` documents in the OTLP/JSON encoding
(``resourceSpans[].scopeSpans[].spans[]``), one per line as the Collector's file
exporter writes them, or pretty-printed. Every span whose ``gen_ai.operation.name`` is
``execute_tool`` (OpenTelemetry semantic conventions for generative AI, "execute tool"
span) becomes one event:

- action and ``tool_name``: ``gen_ai.tool.name``;
- ``call_id``: ``gen_ai.tool.call.id``, else the span id;
- ``parent_call_id``: the call id of the nearest enclosing ``execute_tool`` span in the
  same document (a tool that ran tools), else the parent span id (the agent step);
- principal: ``gen_ai.agent.id`` (else ``gen_ai.agent.name``) of the span or its nearest
  ancestor in the document, else the resource's ``service.name``;
- time: ``startTimeUnixNano``; status ``ERROR`` or an ``error.type`` makes it ``error``
  (``denied`` when the error type says so);
- ``tether.task.id``, ``tether.token.id``, ``tether.decision.id`` (set by tether's SDK)
  link the call to its task, token and decision; ``tether.resource`` (``type:id``) is
  the resource it acted on, ``tether.result.records`` and ``tether.result.bytes`` the
  size of its result.

The raw event kept for each call is ``{"resource", "scope", "span"}`` from the document.
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

_VALUE_KEYS = ("stringValue", "intValue", "boolValue", "doubleValue")
_MAX_DEPTH = 64
_REFUSALS = ("denied", "forbidden", "unauthori")


def iter_events(
    source: TextSource, *, source_name: str, now: Clock | None = None
) -> Iterator[ObservedAccess | IngestError]:
    """Every ``execute_tool`` span in ``source`` as an event; IngestErrors for bad input."""
    return iter_decoded(source, decode, source_name=source_name, now=now)


class _Span:
    __slots__ = ("attrs", "resource", "scope", "span")

    def __init__(self, span: dict[str, Any], resource: Any, scope: Any) -> None:
        self.span = span
        self.attrs = attribute_map(span.get("attributes"))
        self.resource = resource
        self.scope = scope

    def call_id(self) -> str | None:
        return text(self.attrs.get("gen_ai.tool.call.id")) or text(self.span.get("spanId"))

    def is_tool(self) -> bool:
        return self.attrs.get("gen_ai.operation.name") == "execute_tool"


def decode(raw: dict[str, Any], context: Context) -> Iterator[ObservedAccess | str]:
    """The tool-call events of one ``ExportTraceServiceRequest``."""
    batches = raw.get("resourceSpans")
    if not isinstance(batches, list):
        raise NotAnEvent("not OTLP/JSON traces: no `resourceSpans`")
    spans: list[_Span] = []
    for batch in batches:
        resource = mapping(batch).get("resource")
        scopes = mapping(batch).get("scopeSpans") or mapping(batch).get(
            "instrumentationLibrarySpans"
        )
        for scope_spans in scopes if isinstance(scopes, list) else ():
            scope = mapping(scope_spans).get("scope")
            listed = mapping(scope_spans).get("spans")
            for span in listed if isinstance(listed, list) else ():
                if isinstance(span, dict):
                    spans.append(_Span(span, resource, scope))
    by_id = {span_id: s for s in spans if (span_id := text(s.span.get("spanId")))}
    for span in spans:
        if span.is_tool():
            yield _event(span, by_id, context)


def _event(span: _Span, by_id: dict[str, _Span], context: Context) -> ObservedAccess:
    attrs = span.attrs
    resource_attrs = attribute_map(mapping(span.resource).get("attributes"))
    ancestors = list(_ancestors(span, by_id))
    parent_tool = next((a for a in ancestors if a.is_tool()), None)
    tool = text(attrs.get("gen_ai.tool.name"))
    raw = {"resource": span.resource, "scope": span.scope, "span": span.span}
    trace_id, span_id = text(span.span.get("traceId")), text(span.span.get("spanId"))
    at, at_is_ingest_time = context.time_of(span.span.get("startTimeUnixNano"))
    return ObservedAccess(
        at=at,
        at_is_ingest_time=at_is_ingest_time,
        source=Source.OTEL,
        source_event_id=f"{trace_id}/{span_id}" if trace_id and span_id else span_id,
        dedupe_key=dedupe_key_of(raw),
        principal=_principal([span, *ancestors], resource_attrs),
        task_id=text(attrs.get("tether.task.id")),
        token_id=text(attrs.get("tether.token.id")),
        decision_id=text(attrs.get("tether.decision.id")),
        action=tool or UNKNOWN_ACTION,
        tool_name=tool,
        resource=text(attrs.get("tether.resource")),
        records=integer(attrs.get("tether.result.records")),
        bytes=integer(attrs.get("tether.result.bytes")),
        call_id=span.call_id(),
        parent_call_id=(
            parent_tool.call_id() if parent_tool else text(span.span.get("parentSpanId"))
        ),
        outcome=_outcome(span),
        environment=Environment(
            source_ip=text(attrs.get("client.address")),
            region=text(resource_attrs.get("cloud.region")),
            user_agent=text(attrs.get("user_agent.original")),
        ),
        raw=raw,
    )


def attribute_map(listed: Any) -> dict[str, Any]:
    """OTLP ``KeyValue`` list as a dict of plain values (arrays and maps left out)."""
    found: dict[str, Any] = {}
    for pair in listed if isinstance(listed, list) else ():
        key = mapping(pair).get("key")
        value = mapping(mapping(pair).get("value"))
        if isinstance(key, str):
            for name in _VALUE_KEYS:
                if name in value:
                    found[key] = value[name]
                    break
    return found


def _ancestors(span: _Span, by_id: dict[str, _Span]) -> Iterator[_Span]:
    current = span
    for _ in range(_MAX_DEPTH):
        parent_id = text(current.span.get("parentSpanId"))
        parent = by_id.get(parent_id) if parent_id else None
        if parent is None or parent is span:
            return
        yield parent
        current = parent


def _principal(lineage: list[_Span], resource_attrs: dict[str, Any]) -> RawPrincipal:
    for span in lineage:
        agent_id = text(span.attrs.get("gen_ai.agent.id"))
        agent_name = text(span.attrs.get("gen_ai.agent.name"))
        if agent_id or agent_name:
            key = agent_id or agent_name or ""
            details = attributes(
                agent_name=agent_name, service_name=text(resource_attrs.get("service.name"))
            )
            return RawPrincipal(PrincipalKind.AGENT, key, agent_name or key, details)
    service = text(resource_attrs.get("service.name"))
    if service:
        return RawPrincipal(PrincipalKind.OTEL_SERVICE, service, service)
    return UNKNOWN_PRINCIPAL


def _outcome(span: _Span) -> AccessOutcome:
    status = mapping(span.span.get("status")).get("code")
    error_type = text(span.attrs.get("error.type"))
    if error_type and any(word in error_type.lower() for word in _REFUSALS):
        return AccessOutcome.DENIED
    if error_type or status in (2, "2", "STATUS_CODE_ERROR"):
        return AccessOutcome.ERROR
    return AccessOutcome.ALLOWED
