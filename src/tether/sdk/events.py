"""Tool calls as OpenTelemetry GenAI ``execute_tool`` spans, the form ``POST /v1/events`` reads.

A :class:`ToolCall` is what a guarded tool did: which tool, a SHA-256 digest of its
arguments (never the arguments themselves), how large its result was, and the task,
token, decision and call it belongs to. :func:`otlp_document` writes calls as one OTLP/JSON
``ExportTraceServiceRequest`` following the GenAI semantic conventions
(``gen_ai.operation.name = execute_tool``, ``gen_ai.tool.name``, ``gen_ai.tool.call.id``,
``gen_ai.agent.id``) plus tether's attributes (``tether.task.id``, ``tether.token.id``,
``tether.decision.id``, ``tether.resource``, ``tether.arguments.sha256``,
``tether.result.records``, ``tether.result.bytes``), which tether's ``otel`` adapter
maps onto the observed access.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from tether.sdk.models import Subject, TokenGrant

SERVICE_NAME = "tether-sdk"
OK, ERROR = "ok", "error"


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One executed tool call, as reported to tether."""

    tool: str
    call_id: str
    arguments_sha256: str
    started_at: datetime
    ended_at: datetime
    outcome: str = OK
    error_type: str | None = None
    result_records: int | None = None
    result_bytes: int | None = None
    task_id: str | None = None
    token_id: str | None = None
    decision_id: str | None = None
    agent_id: str | None = None
    resource: str | None = None

    @classmethod
    def of(
        cls,
        tool: str,
        actor: Subject | TokenGrant,
        *,
        resource: str,
        decision_id: str | None,
        arguments_sha256: str,
        started_at: datetime,
        result: Any,
    ) -> ToolCall:
        """The call that just ended with ``result`` (an exception: the call failed)."""
        failed = isinstance(result, Exception)
        records, size = (None, None) if failed else result_size(result)
        grant = actor if isinstance(actor, TokenGrant) else None
        agent = actor.identity if isinstance(actor, TokenGrant) else actor.id
        return cls(
            tool=tool,
            call_id=new_call_id(),
            arguments_sha256=arguments_sha256,
            started_at=started_at,
            ended_at=datetime.now(UTC),
            outcome=ERROR if failed else OK,
            error_type=type(result).__name__ if failed else None,
            result_records=records,
            result_bytes=size,
            task_id=grant.task_id if grant else None,
            token_id=grant.token_id if grant else None,
            decision_id=decision_id,
            agent_id=agent,
            resource=resource,
        )


def _json_default(value: Any) -> Any:
    if isinstance(value, (set, frozenset, tuple)):
        return sorted(value, key=repr) if isinstance(value, (set, frozenset)) else list(value)
    if isinstance(value, bytes):
        return value.hex()
    return repr(value)


def canonical(value: Any) -> bytes:
    """Canonical JSON (sorted keys, compact); what is not JSON is written as its ``repr``."""
    return orjson.dumps(value, default=_json_default, option=orjson.OPT_SORT_KEYS)


def arguments_digest(arguments: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of a call's bound arguments."""
    return hashlib.sha256(canonical(dict(arguments))).hexdigest()


def result_size(result: Any) -> tuple[int | None, int]:
    """How large a result is: records (items of a list or tuple, else None) and the bytes
    of its canonical JSON."""
    records = len(result) if isinstance(result, (list, tuple)) else None
    return records, len(canonical(result))


#: The largest JSON of a result sent to ``POST /v1/results`` (bytes; the server's bound).
MAX_RESULT_JSON = 512_000
#: How much of a larger result is sent, as text (what tether's provenance reads of one).
MAX_RESULT_CHARS = 256_000


def reported_result(result: Any) -> Any:
    """``result`` as ``POST /v1/results`` takes it: its JSON value (what is not JSON as its
    ``repr``) when that fits :data:`MAX_RESULT_JSON` bytes, else the start of its text
    (at most :data:`MAX_RESULT_CHARS` characters, and the bytes bound once escaped).
    tether then reads the values of a cut result as free text, never as record fields."""
    encoded = orjson.dumps(result, default=_json_default)  # its own key order, as shown
    if len(encoded) <= MAX_RESULT_JSON:
        return result if isinstance(result, str) else orjson.loads(encoded)
    text = (result if isinstance(result, str) else encoded.decode())[:MAX_RESULT_CHARS]
    while len(orjson.dumps(text)) > MAX_RESULT_JSON:
        text = text[: len(text) * 3 // 4]
    return text


def new_call_id() -> str:
    return "call_" + secrets.token_hex(12)


def _attribute(key: str, value: str | int) -> dict[str, Any]:
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value}}


def _nanos(moment: datetime) -> str:
    return str(int(moment.timestamp() * 1_000_000) * 1000)


def span(call: ToolCall) -> dict[str, Any]:
    """The OTLP/JSON span of one call."""
    values: dict[str, str | int | None] = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": call.tool,
        "gen_ai.tool.call.id": call.call_id,
        "gen_ai.agent.id": call.agent_id,
        "tether.task.id": call.task_id,
        "tether.token.id": call.token_id,
        "tether.decision.id": call.decision_id,
        "tether.resource": call.resource,
        "tether.arguments.sha256": call.arguments_sha256,
        "tether.result.records": call.result_records,
        "tether.result.bytes": call.result_bytes,
        "error.type": call.error_type,
    }
    return {
        "traceId": secrets.token_hex(16),
        "spanId": secrets.token_hex(8),
        "name": f"execute_tool {call.tool}",
        "kind": 1,  # SPAN_KIND_INTERNAL: the tool ran in the agent's process
        "startTimeUnixNano": _nanos(call.started_at),
        "endTimeUnixNano": _nanos(call.ended_at),
        "attributes": [_attribute(k, v) for k, v in values.items() if v is not None],
        "status": {"code": 2} if call.outcome == ERROR else {},
    }


def otlp_document(calls: Iterable[ToolCall]) -> dict[str, Any]:
    """One ``ExportTraceServiceRequest`` holding a span per call."""
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [_attribute("service.name", SERVICE_NAME)]},
                "scopeSpans": [
                    {"scope": {"name": "tether.sdk"}, "spans": [span(c) for c in calls]}
                ],
            }
        ]
    }
