"""Backtesting drift detection on recorded agent runs (AgentDojo traces).

::

    truth = load_ground_truth(Path("agentdojo_v1.2.2_ground_truth_tool_calls.jsonl"))
    runs = load_traces(Path("traces-command-r-plus.jsonl"))
    evaluation = evaluate_agentdojo(truth, runs)       # replays every run through tether
    evaluation.total.recall, evaluation.total.fpr

``tether eval agentdojo --traces FILE --ground-truth FILE [--json]`` is the same from
the command line.

It sits beside :mod:`tether.drift`, not inside it: a replay drives a whole tether
(:class:`tether.services.Tether`) the way a served one runs, so it depends on the
composition of the domain packages and the domain must not depend on it.
"""

from __future__ import annotations

from collections.abc import Callable

from tether.drift.model import Severity
from tether.evaluation.agentdojo import (
    EvaluationInputInvalid,
    GroundTruth,
    Label,
    Run,
    load_ground_truth,
    load_traces,
)
from tether.evaluation.metrics import Counts, Evaluation
from tether.evaluation.replay import DETECTORS, Replay, RunVerdict


def evaluate_agentdojo(
    truth: GroundTruth,
    runs: list[Run],
    *,
    flag_at: Severity = Severity.HIGH,
    progress: Callable[[], None] | None = None,
) -> Evaluation:
    """Replay every run through a throw-away tether and count the verdicts.

    Runs whose user task the ground truth lacks are skipped (their lines are listed).

    Raises:
        EvaluationInputInvalid: no run matches a user task of the ground truth.
    """
    evaluation = Evaluation()
    with Replay(truth, runs, flag_at=flag_at) as replay:
        for run in runs:
            if replay.knows(run):
                evaluation.add(replay.replay(run))
            else:
                evaluation.skipped.append(run.line)
            if progress is not None:
                progress()
    if not evaluation.verdicts:
        raise EvaluationInputInvalid.no_run_matches()
    return evaluation


__all__ = [
    "DETECTORS",
    "Counts",
    "Evaluation",
    "EvaluationInputInvalid",
    "GroundTruth",
    "Label",
    "Replay",
    "Run",
    "RunVerdict",
    "evaluate_agentdojo",
    "load_ground_truth",
    "load_traces",
]
