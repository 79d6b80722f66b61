"""Each detector: a true case (it fires) and a false case (it stays silent)."""

from __future__ import annotations

from datetime import timedelta

from drift_support import T0, context, entitled_to, identity, learned, obs

from tether.drift.detectors import (
    environment_change,
    novel_access,
    out_of_entitlement,
    scope_widening,
    static_credential_use,
    volume_anomaly,
)
from tether.drift.model import TaskView
from tether.telemetry.model import Environment

OFFICE = Environment(source_ip="10.1.2.3", region="eu-west-1", user_agent="boto3/1.34 Python/3.12")


def _usual(n: int = 20, **fields: object) -> list:  # type: ignore[type-arg]
    return [
        obs(
            "read_invoice",
            resource=f"invoice:{i % 5}",
            resource_type="invoice",
            data_class="internal",
            sensitivity=2,
            records=100 + (i % 3),
            environment=OFFICE,
            at=T0 + timedelta(minutes=i),
            **fields,
        )
        for i in range(n)
    ]


# --- out_of_entitlement --------------------------------------------------------------------


def test_out_of_entitlement_fires_outside_entitlement() -> None:
    [signal] = out_of_entitlement.detect(obs("pay", resource="payments:1"), context())
    assert signal.detector == "out_of_entitlement"
    assert signal.deviation == 1.0
    assert "`pay`" in signal.reason


def test_out_of_entitlement_silent_when_entitled_and_weaker_when_denied() -> None:
    assert out_of_entitlement.detect(obs("read_invoice", resource="invoice:7"), context()) == []
    [denied] = out_of_entitlement.detect(obs("pay", outcome="denied"), context())
    assert denied.deviation < 1.0


# --- scope_widening ------------------------------------------------------------------------


def test_scope_widening_fires_on_exchange_asking_beyond_entitlement() -> None:
    asked = obs("token_exchange", kind="exchange", scopes=("read_invoice", "pay"))
    [signal] = scope_widening.detect(asked, context())
    assert signal.details["scopes"] == ["pay"]


def test_scope_widening_fires_on_scopes_beyond_task_intent() -> None:
    ident = identity(entitled=entitled_to(("read_invoice", ""), ("send_email", "")))
    task = TaskView("tsk_1", "read invoices", frozenset({"read_invoice"}), ("invoice:*",))
    asked = obs("token_exchange", kind="exchange", scopes=("read_invoice", "send_email"))
    [signal] = scope_widening.detect(asked, context(ident=ident, task=task))
    assert "intent" in signal.reason


def test_scope_widening_fires_on_repeated_denied_probes() -> None:
    probes = [obs("pay", resource=f"payments:{i}", outcome="denied") for i in range(2)]
    [signal] = scope_widening.detect(obs("drop", outcome="denied"), context(history=probes))
    assert signal.details["denied"] == 3
    assert len(signal.evidence) == 3


def test_scope_widening_silent_for_narrow_exchange_and_single_denial() -> None:
    narrow = obs("token_exchange", kind="exchange", scopes=("read_invoice",))
    assert scope_widening.detect(narrow, context()) == []
    one = [obs("pay", outcome="denied")]
    assert scope_widening.detect(obs("drop", outcome="denied"), context(history=one)) == []


# --- novel_access --------------------------------------------------------------------------


def test_novel_access_fires_on_new_data_class() -> None:
    baseline = learned(_usual())
    new = obs(
        "read_invoice",
        resource="invoice:1",
        resource_type="invoice",
        data_class="restricted",
        sensitivity=4,
    )
    [signal] = novel_access.detect(new, context(baseline=baseline))
    assert signal.details["novel"] == {"data_class": "restricted"}
    assert signal.deviation == novel_access.WEIGHTS["data_class"]


def test_novel_access_silent_on_known_behaviour_and_while_learning() -> None:
    known = obs(
        "read_invoice", resource="invoice:3", resource_type="invoice", data_class="internal"
    )
    assert novel_access.detect(known, context(baseline=learned(_usual()))) == []
    new = obs("drop_table", resource="table:x")
    assert novel_access.detect(new, context(baseline=learned(_usual(3)))) == []
    assert novel_access.detect(new, context(baseline=None)) == []


def test_novel_access_flags_a_pep_asking_about_a_new_identity() -> None:
    asked = [
        obs("authzen:evaluate", resource=f"agent:bot-{i % 3}", resource_type="agent")
        for i in range(20)
    ]
    baseline = learned(asked)
    new = obs("authzen:evaluate", resource="agent:payroll-bot", resource_type="agent")
    [signal] = novel_access.detect(new, context(baseline=baseline))
    assert signal.details["novel"] == {"resource": "agent:payroll-bot"}
    again = obs("authzen:evaluate", resource="agent:bot-1", resource_type="agent")
    assert novel_access.detect(again, context(baseline=baseline)) == []


# --- volume_anomaly ------------------------------------------------------------------------


def test_volume_anomaly_fires_far_above_the_mean() -> None:
    [signal] = volume_anomaly.detect(
        obs("read_invoice", records=5000), context(baseline=learned(_usual()))
    )
    assert signal.details["unit"] == "records"
    assert signal.deviation == 1.0


def test_volume_anomaly_fires_on_bytes_too() -> None:
    history = [obs("download", bytes=1000 + i) for i in range(20)]
    [signal] = volume_anomaly.detect(
        obs("download", bytes=10**7), context(baseline=learned(history))
    )
    assert signal.details["unit"] == "bytes"


def test_volume_anomaly_silent_within_the_usual_spread() -> None:
    baseline = learned(_usual())
    assert volume_anomaly.detect(obs("read_invoice", records=110), context(baseline=baseline)) == []
    assert volume_anomaly.detect(obs("other", records=10**6), context(baseline=baseline)) == []


# --- environment_change --------------------------------------------------------------------


def test_environment_change_fires_on_new_region_and_network() -> None:
    away = Environment(source_ip="203.0.113.9", region="ap-south-1", user_agent="boto3/1.35")
    [signal] = environment_change.detect(
        obs("read_invoice", environment=away, at=T0 + timedelta(minutes=5)),
        context(baseline=learned(_usual())),
    )
    assert signal.details["novel"] == {"ip_prefix": "203.0.113.0/24", "region": "ap-south-1"}
    assert 0.6 < signal.deviation < 1


def test_environment_change_silent_in_the_usual_environment() -> None:
    same = Environment(source_ip="10.1.2.200", region="eu-west-1", user_agent="Boto3/1.35")
    assert (
        environment_change.detect(
            obs("read_invoice", environment=same, at=T0 + timedelta(minutes=3)),
            context(baseline=learned(_usual())),
        )
        == []
    )


# --- static_credential_use -----------------------------------------------------------------


def test_static_credential_use_fires_on_static_secret_and_api_key_kind() -> None:
    [signal] = static_credential_use.detect(obs(credential="static_secret"), context())
    assert signal.details["credential"] == "static_secret"
    ident = identity(kind="api_key", workload_class=None)
    assert len(static_credential_use.detect(obs(), context(ident=ident))) == 1


def test_static_credential_use_silent_for_task_tokens_and_once_per_task() -> None:
    assert static_credential_use.detect(obs(credential="task_token"), context()) == []
    earlier = [obs(credential="static_secret")]
    assert (
        static_credential_use.detect(obs(credential="static_secret"), context(history=earlier))
        == []
    )
