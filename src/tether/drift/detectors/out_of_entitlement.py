"""Detector ``out_of_entitlement``: an access outside the identity's standing entitlement.

The entitlement is what the estate approved (compiled ``permit`` policies), answered by
``IdentityView.entitled(action, resource)`` without a Cedar call. An access that went
through outside it (an ingested event the estate never approved) deviates fully; one that
was refused or held for approval was an attempt, and deviates less.

A cloud call (CloudTrail, Kubernetes or GCP audit; :mod:`tether.drift.cloud`) deviates
by what the action risks: its access level's weight (a List call little, a Permissions
management call much), raised to 1 by the ATT&CK tactics it serves. One that went
through and serves persistence, privilege escalation, defense evasion or credential
access is at least high (``severity_floor``); the reason names the action, its access
level, its tactics and where they come from.
"""

from __future__ import annotations

from tether.drift.cloud import risk_of
from tether.drift.model import DetectionContext, Observation, Signal

NAME = "out_of_entitlement"
_DEVIATION = {"allowed": 1.0, "constrain": 1.0, "approval_required": 0.7, "denied": 0.5}


def detect(obs: Observation, ctx: DetectionContext) -> list[Signal]:
    if obs.kind == "exchange" or obs.outcome == "error":
        return []
    if ctx.identity.entitled(obs.action, obs.resource):
        return []
    attempt = _DEVIATION.get(obs.outcome, 1.0)
    target = f" on `{obs.resource}`" if obs.resource else ""
    verb = "did" if attempt == 1.0 else "tried"
    reason = f"`{obs.identity_id}` {verb} `{obs.action}`{target} outside its entitlement"
    details: dict[str, object] = {"outcome": obs.outcome}
    deviation = attempt
    risk = risk_of(obs.action, obs.source) if obs.kind == "event" else None
    if risk is not None:
        deviation = attempt * risk.weight
        reason = f"{reason} ({risk.described})"
        if attempt == 1.0 and risk.floor is not None:
            details["severity_floor"] = risk.floor.value
    return [Signal(NAME, round(deviation, 4), reason, (obs.ref,), details)]
