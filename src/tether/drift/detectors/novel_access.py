"""Detector ``novel_access``: an action, resource, resource type or data class never seen.

Compares with the identity's learned baseline; silent while the baseline is still
learning (fewer than :data:`MIN_OBSERVATIONS`). A new data class is the strongest
signal (an identity reaching a kind of data it never touched), a new resource the
weakest (resources are many and change).
"""

from __future__ import annotations

from tether.drift.model import DetectionContext, Observation, Signal

NAME = "novel_access"
MIN_OBSERVATIONS = 10
WEIGHTS = {"data_class": 0.8, "action": 0.6, "resource_type": 0.5, "resource": 0.3}


def detect(obs: Observation, ctx: DetectionContext) -> list[Signal]:
    baseline = ctx.baseline
    if baseline is None or baseline.observations < MIN_OBSERVATIONS or obs.outcome == "error":
        return []
    values = {
        "data_class": obs.data_class,
        "action": obs.action,
        "resource_type": obs.resource_type,
        "resource": obs.resource,
    }
    novel = {d: v for d, v in values.items() if v and not baseline.seen(d, v)}
    if not novel:
        return []
    deviation = max(WEIGHTS[d] for d in novel)
    listed = ", ".join(f"{d.replace('_', ' ')} `{v}`" for d, v in novel.items())
    return [
        Signal(
            NAME,
            deviation,
            f"`{obs.identity_id}` reached what it never did before: {listed}",
            (obs.ref,),
            {"novel": novel, "baseline_version": baseline.version},
        )
    ]
