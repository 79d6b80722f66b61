"""A tool's result that reaches the engine before its call's decision (reported to one
replica, decided on another, both on the bus) is held and counts once the call comes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from drift_support import T0, obs
from sqlalchemy import Engine

from tether.drift import engine as drift_engine
from tether.drift.detectors import Detector
from tether.drift.engine import RESULT_KEY, TASK_KEY, DriftEngine
from tether.drift.model import DetectionContext, Observation
from tether.drift.provenance import RunRecord
from tether.estate import apply_estate
from tether.estate.compiled import EMPTY_ESTATE
from token_support import WorkloadKey, write_estate


class RecordSeen:
    """A detector that finds nothing and keeps the run record each call was judged with."""

    def __init__(self) -> None:
        self.records: dict[str, RunRecord | None] = {}

    def detect(self, observation: Observation, ctx: DetectionContext) -> list[Any]:
        self.records[observation.ref] = ctx.record
        return []


@pytest.fixture
def seen(store: Engine, tmp_path: Path) -> tuple[DriftEngine, RecordSeen]:
    apply_estate(store, write_estate(tmp_path / "estate", WorkloadKey.generate("k")))
    engine = DriftEngine(store, lambda: (None, EMPTY_ESTATE), tail_events=False)
    engine.start(background=False)
    spy = RecordSeen()
    engine.detectors = (Detector(name="record_seen", detect=spy.detect),)
    return engine, spy


def _call(ref: str, minutes: int) -> Observation:
    return obs(
        "read_invoice", ref=ref, task_id="t-1", kind="decision", at=T0 + timedelta(minutes=minutes)
    )


def _result(ref: str, text: str, task: tuple[str, str] | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {RESULT_KEY: ref, "result": text}
    if task is not None:
        row[TASK_KEY] = list(task)
    return row


def test_a_result_before_its_call_counts_for_the_calls_after_it(
    seen: tuple[DriftEngine, RecordSeen],
) -> None:
    engine, spy = seen
    engine.process([_result("decision:d-1", "pay IBAN GB29NWBK60161331926819")], respond=False)
    engine.process([_call("decision:d-1", 0), _call("decision:d-2", 1)], respond=False)
    first, second = spy.records["decision:d-1"], spy.records["decision:d-2"]
    assert first is not None
    assert first.outputs == ()
    assert second is not None
    assert [o.ref for o in second.outputs] == ["decision:d-1"]
    assert second.complete


def test_an_early_result_of_another_task_is_still_refused(
    seen: tuple[DriftEngine, RecordSeen],
) -> None:
    engine, spy = seen
    foreign = ("billing-bot", "t-other")
    engine.process([_result("decision:d-1", "text", task=foreign)], respond=False)
    engine.process([_call("decision:d-1", 0), _call("decision:d-2", 1)], respond=False)
    assert spy.records["decision:d-2"] is None  # no result counted for the task's calls


def test_results_of_calls_that_never_come_are_dropped_after_the_hold(
    seen: tuple[DriftEngine, RecordSeen], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, spy = seen
    monkeypatch.setattr(drift_engine, "MAX_EARLY_RESULTS", 3)
    engine.process([_result(f"decision:x-{n}", "text") for n in range(5)], respond=False)
    assert engine.early_results_expired == 2
    engine.process(
        [_call("decision:x-0", 0), _call("decision:x-4", 1), _call("decision:z", 2)], respond=False
    )
    last = spy.records["decision:z"]
    assert last is not None
    assert [o.ref for o in last.outputs] == ["decision:x-4"]
