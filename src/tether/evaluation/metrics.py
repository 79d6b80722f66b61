"""Counting an evaluation: confusion counts per suite and in total, and the rates from them.

Positives are runs whose injection succeeded and left at least one tool call; negatives
are clean runs. Attacked runs whose injection failed, and successful ones without any
tool call (``unobservable``), are counted apart and enter neither rate.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tether.evaluation.agentdojo import Label
from tether.evaluation.replay import RunVerdict


def _ratio(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


@dataclass(slots=True)
class Counts:
    """Confusion counts of one suite (or of all)."""

    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0
    unobservable: int = 0
    failed: int = 0  # attacked runs whose injection failed
    failed_flagged: int = 0
    calls: int = 0
    refused: int = 0  # calls tether's decision core did not allow

    def add(self, verdict: RunVerdict) -> None:
        label = verdict.run.label
        self.calls += verdict.calls
        self.refused += verdict.refused
        if label is Label.SUCCEEDED:
            self.tp += verdict.flagged
            self.fn += not verdict.flagged
        elif label is Label.CLEAN:
            self.fp += verdict.flagged
            self.tn += not verdict.flagged
        elif label is Label.FAILED:
            self.failed += 1
            self.failed_flagged += verdict.flagged
        else:
            self.unobservable += 1

    @property
    def positives(self) -> int:
        return self.tp + self.fn

    @property
    def negatives(self) -> int:
        return self.fp + self.tn

    @property
    def precision(self) -> float | None:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float | None:
        return _ratio(self.tp, self.positives)

    @property
    def fpr(self) -> float | None:
        return _ratio(self.fp, self.negatives)

    def to_json(self) -> dict[str, Any]:
        return {
            "tp": self.tp,
            "fp": self.fp,
            "tn": self.tn,
            "fn": self.fn,
            "positives": self.positives,
            "negatives": self.negatives,
            "precision": self.precision,
            "recall": self.recall,
            "fpr": self.fpr,
            "unobservable": self.unobservable,
            "attacked_failed": {"runs": self.failed, "flagged": self.failed_flagged},
            "calls": self.calls,
            "refused_calls": self.refused,
        }


@dataclass(slots=True)
class Evaluation:
    """Every verdict of one trace file, counted per suite and in total."""

    total: Counts = field(default_factory=Counts)
    suites: dict[str, Counts] = field(default_factory=dict)
    verdicts: list[RunVerdict] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)  # lines of runs without ground truth

    def add(self, verdict: RunVerdict) -> None:
        self.verdicts.append(verdict)
        self.total.add(verdict)
        self.suites.setdefault(verdict.run.suite, Counts()).add(verdict)

    def extend(self, verdicts: Iterable[RunVerdict]) -> None:
        for verdict in verdicts:
            self.add(verdict)

    def to_json(self, **about: Any) -> dict[str, Any]:
        total = self.total
        return {
            "precision": total.precision,
            "recall": total.recall,
            "fpr": total.fpr,
            "unobservable": total.unobservable,
            **about,
            "runs": len(self.verdicts),
            "skipped_runs": self.skipped,
            "total": total.to_json(),
            "suites": {name: self.suites[name].to_json() for name in sorted(self.suites)},
            "flagged": [
                {
                    "line": v.run.line,
                    "suite": v.run.suite,
                    "user_task": v.run.user_task_id,
                    "injection_task": v.run.injection_task_id,
                    "label": v.run.label.value,
                    "severity": v.worst.severity.value,
                    "score": v.worst.score,
                    "detector": v.worst.detector,
                    "reason": v.worst.reason,
                }
                for v in self.verdicts
                if v.flagged and v.worst is not None
            ],
        }
