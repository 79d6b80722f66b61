"""Detector ``novel_access``: an action, resource, resource type or data class never seen.

Compares with the identity's learned baseline; silent while the baseline is still
learning (fewer than :data:`MIN_OBSERVATIONS`). A new data class is the strongest
signal (an identity reaching a kind of data it never touched), a new resource the
weakest (resources are many and change).

A cloud call (:mod:`tether.drift.cloud`) also counts a new service (``s3``, ``iam``), and
the first Permissions management call an identity ever makes, or the first call of an
action serving persistence, privilege escalation, defense evasion or credential access,
is high for any class (``severity_floor``).
"""

from __future__ import annotations

from tether.drift.cloud import AccessLevel, risk_of
from tether.drift.features import service_of
from tether.drift.model import DetectionContext, Observation, Severity, Signal

NAME = "novel_access"
MIN_OBSERVATIONS = 10
WEIGHTS = {
    "data_class": 0.8,
    "action": 0.6,
    "service": 0.6,
    "resource_type": 0.5,
    "resource": 0.3,
}


def detect(obs: Observation, ctx: DetectionContext) -> list[Signal]:
    baseline = ctx.baseline
    if baseline is None or baseline.observations < MIN_OBSERVATIONS or obs.outcome == "error":
        return []
    values = {
        "data_class": obs.data_class,
        "action": obs.action,
        "resource_type": obs.resource_type,
        "resource": obs.resource,
        "service": service_of(obs),
    }
    novel = {d: v for d, v in values.items() if v and not baseline.seen(d, v)}
    if not novel:
        return []
    deviation = max(WEIGHTS[d] for d in novel)
    listed = ", ".join(f"{d.replace('_', ' ')} `{v}`" for d, v in novel.items())
    reason = f"`{obs.identity_id}` reached what it never did before: {listed}"
    details: dict[str, object] = {"novel": novel, "baseline_version": baseline.version}
    risk = risk_of(obs.action, obs.source) if "action" in novel else None
    if risk is not None and obs.outcome == "allowed":
        reason = f"{reason} ({risk.described})"
        deviation = max(deviation, risk.weight)
        if risk.access_level is AccessLevel.PERMISSIONS_MANAGEMENT:
            details["severity_floor"] = Severity.HIGH.value
        elif risk.floor is not None:
            details["severity_floor"] = risk.floor.value
    return [Signal(NAME, deviation, reason, (obs.ref,), details)]
