"""Scoring: deviation x sensitivity x blast radius, graded by the workload class."""

from __future__ import annotations

import pytest
from drift_support import context, identity, obs

from tether.drift.model import Mode, Severity, Signal
from tether.drift.scoring import (
    NEUTRAL_SENSITIVITY,
    Thresholds,
    finding_id_of,
    score,
    sensitivity_of,
    thresholds_for,
    to_finding,
)


@pytest.mark.parametrize("deviation", [0.3, 0.6, 1.0])
@pytest.mark.parametrize("blast", [0.0, 0.5, 1.0])
def test_batch_reading_more_internal_rows_stays_low(deviation: float, blast: float) -> None:
    ctx = context(ident=identity("service_account", "batch", blast_radius=blast))
    seen = obs("select", data_class="internal", sensitivity=2, records=90_000)
    value, severity = score(
        Signal("volume_anomaly", deviation, "more rows"), seen, ctx, thresholds_for("batch")
    )
    assert severity.rank <= Severity.LOW.rank, value


@pytest.mark.parametrize("blast", [0.0, 0.5, 1.0])
def test_agent_reaching_restricted_data_is_high(blast: float) -> None:
    ctx = context(ident=identity(blast_radius=blast))
    seen = obs("read", resource="payments:acct-1", data_class="restricted", sensitivity=4)
    _, severity = score(
        Signal("novel_access", 0.8, "new data class"), seen, ctx, thresholds_for("agent")
    )
    assert severity.rank >= Severity.HIGH.rank


def test_agent_sending_to_external_sink_out_of_intent_is_high() -> None:
    ctx = context(ident=identity(blast_radius=0.5))
    seen = obs("send_money", resource="iban:XX00")  # data class unknown
    signal = Signal("out_of_intent", 0.9, "sink not in intent", details={"sink": True})
    _, severity = score(signal, seen, ctx, thresholds_for("agent"))
    assert severity.rank >= Severity.HIGH.rank


def test_unknown_data_class_is_neutral_and_signals_may_raise_it() -> None:
    ctx = context()
    assert sensitivity_of(Signal("x", 1, "r"), obs(), ctx) == NEUTRAL_SENSITIVITY
    assert sensitivity_of(Signal("x", 1, "r"), obs(sensitivity=1), ctx) == 0.25
    raised = Signal("x", 1, "r", details={"sensitivity": 0.9})
    assert sensitivity_of(raised, obs(sensitivity=1), ctx) == 0.9


def test_score_grows_with_each_factor() -> None:
    th = thresholds_for("agent")
    low_ctx, high_ctx = context(ident=identity(blast_radius=0.1)), context(ident=identity())
    weak, strong = Signal("x", 0.3, "r"), Signal("x", 0.9, "r")
    internal, restricted = obs(sensitivity=2), obs(sensitivity=4)
    assert score(weak, internal, high_ctx, th)[0] < score(strong, internal, high_ctx, th)[0]
    assert score(strong, internal, high_ctx, th)[0] < score(strong, restricted, high_ctx, th)[0]
    assert score(strong, internal, low_ctx, th)[0] < score(strong, internal, high_ctx, th)[0]


def test_thresholds_from_estate_settings_override_defaults() -> None:
    th = thresholds_for("batch", "service_account", {"mode": "enforce", "thresholds": {"high": 50}})
    assert th.mode is Mode.ENFORCE
    assert th.high == 50
    assert th.low == 20
    assert thresholds_for("bots", "agent") == thresholds_for("agent")
    assert thresholds_for("bots", "martian") == Thresholds()
    with pytest.raises(ValueError, match="rise"):
        Thresholds(low=50, medium=20)


def test_to_finding_carries_evidence_frameworks_and_stable_id() -> None:
    seen = obs("read", resource="payments:1", sensitivity=4, task_id="tsk_1")
    finding = to_finding(
        Signal("novel_access", 0.8, "new"), seen, context(), thresholds_for("agent")
    )
    assert finding.evidence == (seen.ref,)
    assert finding.task_id == "tsk_1"
    assert finding.resource == "payments:1"
    assert "ASI03" in finding.frameworks["owasp_asi"]
    assert finding.finding_id == finding_id_of("novel_access", seen.ref, "billing-bot")
    assert finding.finding_id != finding_id_of("tool_chain", seen.ref, "billing-bot")


def test_estate_cut_offs_reorder_the_defaults_they_leave_alone() -> None:
    th = thresholds_for("batch", None, {"mode": "monitor", "thresholds": {"high": 10}})
    assert (th.low, th.medium, th.high, th.critical) == (10, 10, 10, 85)
