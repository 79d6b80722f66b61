"""``tether eval traces --format otel``: OpenTelemetry GenAI spans judged like AgentDojo runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from agent_runs_support import FLAGGED, RUNS, TASKS
from tether.evaluation import evaluate_agentdojo
from tether.evaluation.otel import load_otel_runs


def _value(value: Any) -> dict[str, Any]:
    return {"stringValue": value if isinstance(value, str) else json.dumps(value)}


def _span(trace: str, n: int, attributes: dict[str, Any]) -> dict[str, Any]:
    return {
        "traceId": trace,
        "spanId": f"{n:016x}",
        "startTimeUnixNano": str(1_700_000_000_000_000_000 + n),
        "attributes": [{"key": k, "value": _value(v)} for k, v in attributes.items()],
    }


def _document() -> dict[str, Any]:
    spans = []
    for run in RUNS:
        trace = f"{run.line:032x}"
        task = TASKS[run.user_task_id]
        intent = {"calls": [{"tool": c.tool, "arguments": dict(c.arguments)} for c in task.calls]}
        messages = [{"role": "user", "content": run.prompt}]
        spans.append(
            _span(
                trace,
                0,
                {
                    "gen_ai.operation.name": "invoke_agent",
                    "gen_ai.input.messages": messages,
                    "tether.task.intent": intent,
                },
            )
        )
        for n, call in enumerate(run.calls, start=1):
            attributes = {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": call.tool,
                "gen_ai.tool.call.id": call.call_id,
                "gen_ai.tool.call.arguments": dict(call.arguments),
                "gen_ai.tool.call.result": call.result,
            }
            spans.append(_span(trace, n, attributes))
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "payments"}}]}
    return {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": spans}]}]}


def test_spans_give_the_verdicts_of_the_same_runs_recorded_by_agentdojo(tmp_path: Path) -> None:
    path = tmp_path / "spans.json"
    path.write_text(json.dumps(_document()))
    truth, runs = load_otel_runs([path])
    assert [r.prompt for r in runs] == [r.prompt for r in RUNS]
    flagged = {v.run.user_task_id: v.flagged for v in evaluate_agentdojo(truth, runs).verdicts}
    assert flagged == {f"{r.line:032x}": r.line in FLAGGED for r in RUNS}


def test_the_command_prints_json_and_refuses_what_is_not_otlp(tmp_path: Path) -> None:
    good = tmp_path / "spans.jsonl"
    good.write_text(json.dumps(_document()) + "\n")
    command = [sys.executable, "-m", "tether.cli", "eval", "traces", "--format", "otel"]
    done = subprocess.run(
        [*command, str(good), "--json"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["runs"] == len(RUNS)
    assert result["total"]["fp"] == len(FLAGGED)  # unlabelled runs count as clean
    assert {f["user_task"] for f in result["flagged"]} == {f"{n:032x}" for n in FLAGGED}
    bad = tmp_path / "bad.json"
    bad.write_text('{"spans": []}')
    refused = subprocess.run(
        [*command, str(bad), "--json"], capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 2
    assert "resourceSpans" in json.loads(refused.stdout)["message"]
