"""Detector ``out_of_entitlement``: an access outside the identity's standing entitlement.

The entitlement is what the estate approved (compiled ``permit`` policies), answered by
``IdentityView.entitled(action, resource)`` without a Cedar call. An access that went
through outside it (an ingested event the estate never approved) deviates fully; one that
was refused or held for approval was an attempt, and deviates less.
"""

from __future__ import annotations

from tether.drift.model import DetectionContext, Observation, Signal

NAME = "out_of_entitlement"
_DEVIATION = {"allowed": 1.0, "constrain": 1.0, "approval_required": 0.7, "denied": 0.5}


def detect(obs: Observation, ctx: DetectionContext) -> list[Signal]:
    if obs.kind == "exchange" or obs.outcome == "error":
        return []
    if ctx.identity.entitled(obs.action, obs.resource):
        return []
    deviation = _DEVIATION.get(obs.outcome, 1.0)
    target = f" on `{obs.resource}`" if obs.resource else ""
    verb = "did" if deviation == 1.0 else "tried"
    return [
        Signal(
            NAME,
            deviation,
            f"`{obs.identity_id}` {verb} `{obs.action}`{target} outside its entitlement",
            (obs.ref,),
            {"outcome": obs.outcome},
        )
    ]
