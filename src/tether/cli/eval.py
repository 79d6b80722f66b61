"""``tether eval agentdojo``: backtest drift detection on recorded agent runs.

Replays every run of an AgentDojo trace file through a throw-away tether (temporary
store, generated estate; see :mod:`tether.evaluation.replay`; with ``--via-gateway``
each call goes through a real MCP gateway to a stub MCP server, see
:mod:`tether.evaluation.live`) and prints, per
suite and in total, true/false positives and negatives, precision, recall and
false-positive rate of a high-severity finding: runs whose injection succeeded against
clean runs. Exit codes: 0 when the evaluation ran, 2 on missing or malformed input.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from tether.cli.output import EXIT_OK, console, emit_json, err_console, errors_to_exit, table
from tether.drift.model import Severity
from tether.evaluation import (
    DETECTORS,
    Counts,
    Evaluation,
    Replay,
    evaluate_agentdojo,
    load_ground_truth,
    load_traces,
)
from tether.evaluation.otel import load_otel_runs

eval_app = typer.Typer(
    help="Backtest drift detection on recorded agent traces.", no_args_is_help=True
)


class TraceFormat(StrEnum):
    OTEL = "otel"


class FlagAt(StrEnum):
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


def _model_name(path: Path) -> str | None:
    """The model named in a trace file's metadata header, if it has one."""
    try:
        with path.open(encoding="utf-8") as handle:
            first = json.loads(handle.readline() or "{}")
    except (OSError, ValueError):
        return None
    meta = first.get("metadata") if isinstance(first, dict) and "messages" not in first else None
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) else None


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _row(name: str, counts: Counts) -> list[Any]:
    return [
        name,
        counts.tp,
        counts.fp,
        counts.tn,
        counts.fn,
        _rate(counts.precision),
        _rate(counts.recall),
        _rate(counts.fpr),
        counts.unobservable,
        f"{counts.failed_flagged}/{counts.failed}",
    ]


def print_table(evaluation: Evaluation, title: str) -> None:
    """The readable report: one row per suite and a total row."""
    rows = [_row(name, evaluation.suites[name]) for name in sorted(evaluation.suites)]
    rows.append(_row("total", evaluation.total))
    columns = ["suite", "TP", "FP", "TN", "FN", "precision", "recall", "FPR"]
    table(title, [*columns, "unobs.", "failed: flagged"], rows)
    total = evaluation.total
    console.print(
        f"{len(evaluation.verdicts)} runs, {total.calls} tool calls decided by tether "
        f"({total.refused} not allowed); positives: successful injections with tool calls, "
        "negatives: clean runs; unobservable and attacked-but-failed runs are in neither rate",
        highlight=False,
    )
    if evaluation.skipped:
        console.print(
            f"skipped {len(evaluation.skipped)} run(s) without ground truth "
            f"(lines {', '.join(map(str, evaluation.skipped[:10]))})",
            highlight=False,
        )


@eval_app.command("agentdojo")
def agentdojo(
    traces: Annotated[Path, typer.Option("--traces", help="an AgentDojo trace file (JSONL)")],
    ground_truth: Annotated[
        Path, typer.Option("--ground-truth", help="the ground-truth tool calls (JSONL)")
    ],
    flag_at: Annotated[
        FlagAt, typer.Option("--flag-at", help="lowest finding severity that flags a run")
    ] = FlagAt.HIGH,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON for machines")] = False,
    via_gateway: Annotated[
        bool,
        typer.Option(
            "--via-gateway",
            help="send each recorded call through a real MCP gateway in front of a stub "
            "MCP server answering with the recorded results",
        ),
    ] = False,
    tools: Annotated[
        Path | None,
        typer.Option(
            "--tools",
            help="folder of the suites' `<suite>_tools.json` (--via-gateway; default: the "
            "ground truth's folder)",
        ),
    ] = None,
) -> None:
    """Replay AgentDojo runs through tether; report detection per suite and in total."""
    from tether.evaluation.live import evaluate_via_gateway, load_suite_tools  # the mcp SDK

    with errors_to_exit(as_json):
        truth = load_ground_truth(ground_truth)
        runs = load_traces(traces)
        suite_tools = load_suite_tools(tools or ground_truth.parent) if via_gateway else None
        severity = Severity(flag_at.value)
        with Progress(
            TextColumn("replaying runs" + (" through the gateway" if via_gateway else "")),
            BarColumn(),
            MofNCompleteColumn(),
            console=err_console,
            transient=True,
            disable=as_json,
        ) as bar:
            job = bar.add_task("replay", total=len(runs))

            def advance() -> None:
                bar.advance(job)

            if suite_tools is None:
                evaluation = evaluate_agentdojo(truth, runs, flag_at=severity, progress=advance)
            else:
                with Replay(truth, runs, flag_at=severity) as replay:
                    evaluation = evaluate_via_gateway(replay, runs, suite_tools, progress=advance)
    model = _model_name(traces)
    via = "gateway" if via_gateway else "offline"
    if as_json:
        emit_json(
            evaluation.to_json(
                traces=str(traces),
                model=model,
                flag_at=severity.value,
                detectors=list(DETECTORS),
                via=via,
            )
        )
    else:
        where = ", through the MCP gateway" if via_gateway else ""
        print_table(
            evaluation, f"AgentDojo: {model or traces.name} (flag at {severity.value}{where})"
        )
    raise SystemExit(EXIT_OK)


@eval_app.command("cloud-audit")
def cloud_audit(
    files: Annotated[list[Path], typer.Argument(help="labelled audit-event files (JSONL)")],
    flag_at: Annotated[
        FlagAt, typer.Option("--flag-at", help="lowest finding severity that flags an event")
    ] = FlagAt.HIGH,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON for machines")] = False,
) -> None:
    """Ingest labelled cloud audit events into a throw-away tether; report detection per file.

    Counted: identity-behaviour rules (tests that differ by the action taken or its
    outcome, not by its parameters); see ``tether.evaluation.cloud_audit``.
    """
    from tether.evaluation.cloud_audit import evaluate_files

    severity = Severity(flag_at.value)
    with errors_to_exit(as_json):
        results = evaluate_files(files, flag_at=severity)
    if as_json:
        emit_json({"flag_at": severity.value, "files": [r.to_json() for r in results]})
        raise SystemExit(EXIT_OK)
    rows = [
        [
            r.file,
            r.source,
            len(r.counted_rules),
            r.tp,
            r.fp,
            r.tn,
            r.fn,
            _rate(r.precision),
            _rate(r.recall),
            _rate(r.recall_rated),
            _rate(r.fpr),
            _rate(r.fpr_all_benign),
            _rate(r.fpr_all_uncontested),
            len(r.skipped),
        ]
        for r in results
    ]
    columns = ["file", "source", "rules", "TP", "FP", "TN", "FN", "precision", "recall"]
    columns += ["recall rated > info", "FPR"]
    table(
        f"cloud audit (flag at {severity.value})",
        [*columns, "FPR all benign", "FPR all uncontested", "no event"],
        rows,
    )
    console.print(
        "positives: malicious events of identity-behaviour rules (tests that differ by the "
        "action or its outcome); negatives: their benign events that repeat no malicious "
        "test of the file (uncontested); every principal is unmanaged (no estate); "
        "'rated > info': rules their authors rate above informational",
        highlight=False,
    )


@eval_app.command("traces")
def traces(
    files: Annotated[list[Path], typer.Argument(help="trace files (OTLP/JSON)")],
    trace_format: Annotated[
        TraceFormat, typer.Option("--format", help="the traces' format")
    ] = TraceFormat.OTEL,
    flag_at: Annotated[
        FlagAt, typer.Option("--flag-at", help="lowest finding severity that flags a run")
    ] = FlagAt.HIGH,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON for machines")] = False,
) -> None:
    """Replay your own agents' recorded runs (OpenTelemetry GenAI `execute_tool` spans,
    one run per trace) through tether; report what drift detection flags."""
    with errors_to_exit(as_json):
        truth, runs = load_otel_runs(files)
        severity = Severity(flag_at.value)
        evaluation = evaluate_agentdojo(truth, runs, flag_at=severity)
    if as_json:
        emit_json(
            evaluation.to_json(
                traces=[str(f) for f in files],
                format=trace_format.value,
                flag_at=severity.value,
                detectors=list(DETECTORS),
            )
        )
    else:
        print_table(evaluation, f"Traces: {len(runs)} runs (flag at {severity.value})")
        for verdict in evaluation.verdicts:
            if verdict.flagged and verdict.worst is not None:
                console.print(
                    f"flagged {verdict.run.user_task_id}: {verdict.worst.severity.value} "
                    f"{verdict.worst.reason}",
                    highlight=False,
                )
    raise SystemExit(EXIT_OK)
