"""Agent runs from OpenTelemetry GenAI traces: ``execute_tool`` spans, one run per trace.

``tether eval traces --format otel FILE...`` backtests drift detection on a user's own
recordings. Input: OTLP/JSON ``ExportTraceServiceRequest`` documents
(``resourceSpans[].scopeSpans[].spans[]``), one per line as the Collector's file
exporter writes them, or one whole document per file. Each trace (``traceId``) is one
run; its spans whose ``gen_ai.operation.name`` is ``execute_tool`` are its calls, in
start order (OpenTelemetry semantic conventions for generative AI):

- ``gen_ai.tool.name``, ``gen_ai.tool.call.id``, ``gen_ai.tool.call.arguments`` (JSON)
  and ``gen_ai.tool.call.result`` (what the tool returned: provenance reads it);
- the task: ``tether.task.purpose`` on any span of the trace, else the first ``user``
  message of a ``gen_ai.input.messages`` attribute (JSON); ``tether.task.intent``
  (JSON ``{"actions": [...], "calls": [{"tool", "arguments"}]}``) the declared intent,
  else none (every tool is then outside it);
- ``tether.eval.label`` (``clean``, ``injection_succeeded``, ``injection_failed``) labels
  a run for the rates; an unlabelled run counts as clean (a recording of normal work);
- the resource's ``service.name`` names the agent (the replay's "suite").
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tether.evaluation.agentdojo import (
    Call,
    EvaluationInputInvalid,
    GroundTruth,
    Run,
    UserTask,
    read_json_lines,
)
from tether.telemetry.ingest.otel import attribute_map

_LABELS = {
    "clean": (None, False),
    "injection_succeeded": ("otel", True),
    "injection_failed": ("otel", False),
}


def _documents(path: Path) -> Iterator[tuple[int, Any]]:
    if not path.is_file():
        raise EvaluationInputInvalid(f"no file `{path}`")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EvaluationInputInvalid(f"cannot read `{path}`: {exc}") from None
    try:
        yield 1, json.loads(text)
        return
    except json.JSONDecodeError:
        pass
    yield from read_json_lines(path)  # one document a line (the Collector's file exporter)


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _first_user_message(value: Any) -> str | None:
    for message in _json(value) if isinstance(_json(value), list) else ():
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            parts = message.get("parts")
            if isinstance(content, str) and content.strip():
                return content.strip()
            for part in parts if isinstance(parts, list) else ():
                if isinstance(part, dict) and isinstance(part.get("content"), str):
                    return str(part["content"]).strip()
    return None


class _Trace:
    def __init__(self, line: int, agent: str) -> None:
        self.line = line
        self.agent = agent
        self.spans: list[tuple[int, dict[str, Any]]] = []  # (start, attributes) of tools
        self.purpose: str | None = None
        self.intent: Any = None
        self.label: str | None = None


def _spans(
    document: Any, path: Path, line: int
) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    batches = document.get("resourceSpans") if isinstance(document, dict) else None
    if not isinstance(batches, list):
        raise EvaluationInputInvalid(
            f"`{path}` line {line}: not OTLP/JSON traces (no `resourceSpans`)"
        )
    for batch in batches:
        batch = batch if isinstance(batch, dict) else {}
        resource = attribute_map((batch.get("resource") or {}).get("attributes"))
        for scope in batch.get("scopeSpans") or ():
            for span in (scope or {}).get("spans") or ():
                if isinstance(span, dict):
                    yield (
                        str(resource.get("service.name") or "otel"),
                        span,
                        attribute_map(span.get("attributes")),
                    )


def load_otel_runs(paths: list[Path]) -> tuple[GroundTruth, list[Run]]:
    """The runs of the traces in ``paths`` and the tasks they declare (see the module docstring).

    Raises:
        EvaluationInputInvalid: a file is missing or not OTLP/JSON, or holds no tool call.
    """
    traces: dict[str, _Trace] = {}
    for path in paths:
        for line, document in _documents(path):
            for agent, span, attrs in _spans(document, path, line):
                trace_id = str(span.get("traceId") or f"{path.name}:{line}")
                trace = traces.setdefault(trace_id, _Trace(line, agent))
                trace.purpose = (
                    trace.purpose
                    or attrs.get("tether.task.purpose")
                    or _first_user_message(attrs.get("gen_ai.input.messages"))
                )
                trace.intent = trace.intent or _json(attrs.get("tether.task.intent"))
                trace.label = trace.label or attrs.get("tether.eval.label")
                if attrs.get("gen_ai.operation.name") == "execute_tool" and attrs.get(
                    "gen_ai.tool.name"
                ):
                    trace.spans.append((int(span.get("startTimeUnixNano") or 0), attrs))
    tasks: dict[tuple[str, str], UserTask] = {}
    tools: dict[str, set[str]] = {}
    runs: list[Run] = []
    for trace_id, trace in traces.items():
        if not trace.spans:
            continue
        calls = tuple(
            Call(
                str(a["gen_ai.tool.name"]),
                args
                if isinstance(args := _json(a.get("gen_ai.tool.call.arguments")), dict)
                else {},
                str(a.get("gen_ai.tool.call.id") or "") or None,
                a.get("gen_ai.tool.call.result"),
            )
            for _, a in sorted(trace.spans, key=lambda s: s[0])
        )
        tools.setdefault(trace.agent, set()).update(c.tool for c in calls)
        intent = trace.intent if isinstance(trace.intent, dict) else {}
        intended = [Call(str(t)) for t in intent.get("actions") or () if isinstance(t, str)]
        for call in intent.get("calls") or ():
            if isinstance(call, dict) and isinstance(call.get("tool"), str):
                arguments = call.get("arguments")
                intended.append(
                    Call(call["tool"], arguments if isinstance(arguments, dict) else {})
                )
        tools[trace.agent].update(c.tool for c in intended)
        purpose = str(trace.purpose or f"trace {trace_id}")
        tasks[(trace.agent, trace_id)] = UserTask(trace.agent, trace_id, purpose, tuple(intended))
        label = str(trace.label or "clean")
        if label not in _LABELS:
            known = ", ".join(_LABELS)
            raise EvaluationInputInvalid(
                f"trace `{trace_id}`: unknown `tether.eval.label` `{label}` (known: {known})"
            )
        injection, security = _LABELS[label]
        runs.append(Run(trace.line, trace.agent, trace_id, injection, security, calls, purpose))
    if not runs:
        raise EvaluationInputInvalid("the traces hold no `execute_tool` span")
    return GroundTruth(tasks, {a: frozenset(t) for a, t in tools.items()}), runs
