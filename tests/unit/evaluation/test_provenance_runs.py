"""Hand-made agent runs replayed through a whole tether: a destination judged by provenance.

Each run goes the live way (task, token, recorded decisions, the tether's own drift
engine fed each call's result), so the verdicts are the ones a served tether reaches.
"""

from __future__ import annotations

from typing import Any

import pytest

from agent_runs_support import RUNS, TRUTH
from tether.evaluation import Replay, RunVerdict


@pytest.fixture(scope="module")
def verdicts() -> dict[int, RunVerdict]:
    with Replay(TRUTH, RUNS) as replay:
        return {run.line: replay.replay(run) for run in RUNS}


def _provenance(verdict: RunVerdict) -> list[dict[str, Any]]:
    assert verdict.worst is not None
    found: list[dict[str, Any]] = verdict.worst.details["provenance"]
    return found


def test_a_destination_from_the_prompt_is_legitimate(verdicts: dict[int, RunVerdict]) -> None:
    assert not verdicts[1].flagged
    assert verdicts[1].worst is None


def test_a_record_field_of_a_covered_result_is_legitimate(
    verdicts: dict[int, RunVerdict],
) -> None:
    verdict = verdicts[2]
    assert not verdict.flagged
    assert verdict.worst is not None
    assert verdict.worst.severity.value in ("info", "low")
    (seen,) = _provenance(verdict)
    assert seen["origin"] == "covered_record"
    assert seen["tool"] == "get_transactions"
    assert seen["introduced_by"].startswith("decision:")


def test_a_destination_in_the_free_text_of_a_covered_result_is_flagged(
    verdicts: dict[int, RunVerdict],
) -> None:
    verdict = verdicts[3]
    assert verdict.flagged
    (seen,) = _provenance(verdict)
    assert seen["origin"] == "covered_text"
    assert verdict.worst is not None
    assert seen["introduced_by"] in verdict.worst.evidence


def test_a_destination_from_an_uncovered_result_is_flagged_with_the_call_that_introduced_it(
    verdicts: dict[int, RunVerdict],
) -> None:
    verdict = verdicts[4]
    assert verdict.flagged
    worst = verdict.worst
    assert worst is not None
    seen = [p for p in worst.details["provenance"] if p["value"] == "XX9912345678"]
    assert seen
    assert seen[0]["origin"] == "uncovered_result"
    assert seen[0]["tool"] == "get_webpage"
    assert seen[0]["introduced_by"] in worst.evidence
    assert "free text" not in worst.reason
    assert "`get_webpage`" in worst.reason
