"""OpenTelemetry GenAI ``execute_tool`` spans from OTLP/JSON trace exports."""

from __future__ import annotations

import io
from typing import Any

import orjson
from telemetry_support import split

from tether.telemetry import AccessOutcome, PrincipalKind, PrincipalRule, Source, resolve
from tether.telemetry.ingest import detect_source, otel

TRACE = "5b8efff798038103d269b633813fc60c"
START = 1_735_732_800_000_000_000  # 2025-01-01T12:00:00Z in nanoseconds


def attr(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value}}


def span(
    span_id: str, parent: str | None, name: str, offset_ms: int, **attrs: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "traceId": TRACE,
        "spanId": span_id,
        "name": name,
        "kind": 1,
        "startTimeUnixNano": str(START + offset_ms * 1_000_000),
        "endTimeUnixNano": str(START + (offset_ms + 5) * 1_000_000),
        "attributes": [attr(k.replace("__", "."), v) for k, v in attrs.items()],
        "status": {},
    }
    if parent:
        out["parentSpanId"] = parent
    return out


def export() -> dict[str, Any]:
    """A billing agent: reads an invoice, then a tool that runs a sub-agent that sends mail."""
    spans = [
        span(
            "a000000000000001",
            None,
            "invoke_agent billing-bot",
            0,
            gen_ai__operation__name="invoke_agent",
            gen_ai__agent__id="asst_billing_01",
            gen_ai__agent__name="billing-bot",
            gen_ai__system="openai",
        ),
        span(
            "a000000000000002",
            "a000000000000001",
            "chat gpt-4o",
            1,
            gen_ai__operation__name="chat",
            gen_ai__request__model="gpt-4o",
        ),
        span(
            "a000000000000003",
            "a000000000000001",
            "execute_tool read_invoice",
            10,
            gen_ai__operation__name="execute_tool",
            gen_ai__tool__name="read_invoice",
            gen_ai__tool__call__id="call_read_1",
            gen_ai__tool__type="function",
            tether__task__id="task-42",
            tether__token__id="jti-9",
        ),
        span(
            "a000000000000004",
            "a000000000000001",
            "execute_tool notify",
            20,
            gen_ai__operation__name="execute_tool",
            gen_ai__tool__name="notify",
            gen_ai__tool__call__id="call_notify_1",
        ),
        span(
            "a000000000000005",
            "a000000000000004",
            "invoke_agent mailer",
            21,
            gen_ai__operation__name="invoke_agent",
            gen_ai__agent__id="asst_mailer_07",
            gen_ai__agent__name="mailer",
        ),
        span(
            "a000000000000006",
            "a000000000000005",
            "execute_tool send_email",
            22,
            gen_ai__operation__name="execute_tool",
            gen_ai__tool__name="send_email",
            gen_ai__tool__call__id="call_send_1",
            error__type="PermissionDenied",
        ),
    ]
    spans[5]["status"] = {"code": 2, "message": "refused by policy"}
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [
                        attr("service.name", "billing-agent"),
                        attr("cloud.region", "eu-west-1"),
                    ]
                },
                "scopeSpans": [
                    {"scope": {"name": "openai-agents", "version": "0.4.0"}, "spans": spans[:4]},
                    {"scope": {"name": "openai-agents", "version": "0.4.0"}, "spans": spans[4:]},
                ],
            }
        ]
    }


def test_execute_tool_spans_become_tool_call_events() -> None:
    document = export()
    assert detect_source(document) is Source.OTEL
    events, errors = split(otel.iter_events([orjson.dumps(document)], source_name="trace.json"))
    assert errors == []
    assert [e.tool_name for e in events] == ["read_invoice", "notify", "send_email"]
    assert [e.action for e in events] == ["read_invoice", "notify", "send_email"]
    assert [e.call_id for e in events] == ["call_read_1", "call_notify_1", "call_send_1"]
    read = events[0]
    assert read.at.isoformat() == "2025-01-01T12:00:00.010000+00:00"
    assert not read.at_is_ingest_time
    assert read.source is Source.OTEL
    assert read.source_event_id == f"{TRACE}/a000000000000003"
    assert (read.task_id, read.token_id) == ("task-42", "jti-9")
    assert read.environment.region == "eu-west-1"
    assert read.raw["span"]["spanId"] == "a000000000000003"
    assert read.raw["scope"]["name"] == "openai-agents"


def test_parent_links_follow_the_span_tree() -> None:
    events, _ = split(otel.iter_events([orjson.dumps(export())], source_name="t"))
    read, notify, send = events
    # Top-level tool calls hang off the agent step that made them.
    assert read.parent_call_id == "a000000000000001"
    assert notify.parent_call_id == "a000000000000001"
    # A tool call made inside another tool (through a sub-agent) names that tool call.
    assert send.parent_call_id == "call_notify_1"


def test_the_principal_is_the_nearest_agent() -> None:
    events, _ = split(otel.iter_events([orjson.dumps(export())], source_name="t"))
    read, _, send = events
    assert read.principal.kind == PrincipalKind.AGENT
    assert read.principal.key == "asst_billing_01"
    assert read.principal.display_name == "billing-bot"
    assert send.principal.key == "asst_mailer_07"
    rules = [PrincipalRule.by_agent_id("billing-bot", "asst_billing_01")]
    assert resolve(read.principal, rules) == "billing-bot"
    assert resolve(send.principal, rules) is None


def test_outcomes_come_from_status_and_error_type() -> None:
    events, _ = split(otel.iter_events([orjson.dumps(export())], source_name="t"))
    assert [e.outcome for e in events] == [
        AccessOutcome.ALLOWED,
        AccessOutcome.ALLOWED,
        AccessOutcome.DENIED,
    ]
    document = export()
    failing = document["resourceSpans"][0]["scopeSpans"][0]["spans"][2]
    failing["status"] = {"code": "STATUS_CODE_ERROR"}
    events, _ = split(otel.iter_events([orjson.dumps(document)], source_name="t"))
    assert events[0].outcome is AccessOutcome.ERROR


def test_pretty_printed_exports_and_service_fallback() -> None:
    document = export()
    for scope in document["resourceSpans"][0]["scopeSpans"]:
        for item in scope["spans"]:
            item["attributes"] = [
                a for a in item["attributes"] if not a["key"].startswith("gen_ai.agent")
            ]
            item.pop("startTimeUnixNano")
    text = orjson.dumps(document, option=orjson.OPT_INDENT_2).decode()
    events, errors = split(otel.iter_events(io.StringIO(text), source_name="t"))
    assert errors == []
    assert {e.principal.key for e in events} == {"billing-agent"}
    assert {e.principal.kind for e in events} == {PrincipalKind.OTEL_SERVICE}
    assert all(e.at_is_ingest_time for e in events)


def test_documents_without_tool_spans_give_nothing_and_other_json_an_error() -> None:
    document = export()
    del document["resourceSpans"][0]["scopeSpans"][0]["spans"][2:]
    del document["resourceSpans"][0]["scopeSpans"][1]
    lines = [orjson.dumps(document), b'{"spans": []}']
    events, errors = split(otel.iter_events(lines, source_name="t"))
    assert events == []
    assert [(e.line, "resourceSpans" in e.message) for e in errors] == [(2, True)]
