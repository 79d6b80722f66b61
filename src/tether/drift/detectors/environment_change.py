"""Detector ``environment_change``: an access from a network, region, client or hour never seen.

Compares the access's IP prefix (/24, /64), region, user agent family and UTC hour with
the learned baseline; silent while the baseline is still learning. Each new dimension
adds to the deviation (a new region weighs most, a new hour least).
"""

from __future__ import annotations

from tether.drift.features import environment_features
from tether.drift.model import DetectionContext, Observation, Signal

NAME = "environment_change"
MIN_OBSERVATIONS = 10
WEIGHTS = {"region": 0.6, "ip_prefix": 0.5, "user_agent": 0.4, "hour": 0.2}


def detect(obs: Observation, ctx: DetectionContext) -> list[Signal]:
    baseline = ctx.baseline
    if baseline is None or baseline.observations < MIN_OBSERVATIONS:
        return []
    novel = {d: v for d, v in environment_features(obs).items() if not baseline.seen(d, v)}
    if not novel:
        return []
    remaining = 1.0
    for dimension in novel:
        remaining *= 1 - WEIGHTS[dimension]
    listed = ", ".join(f"{d.replace('_', ' ')} `{v}`" for d, v in novel.items())
    return [
        Signal(
            NAME,
            round(1 - remaining, 4),
            f"`{obs.identity_id}` acted from a new environment: {listed}",
            (obs.ref,),
            {"novel": novel},
        )
    ]
