"""Detector ``scope_widening``: asking for more than was approved, declared or usual.

Three shapes: a token exchange asking for scopes beyond the identity's entitlement,
beyond its task's declared actions, or never asked for before (baseline); and repeated
denied probes, :data:`PROBE_THRESHOLD` or more refusals in the recent history, which is
how an identity feels for the edge of its permissions.
"""

from __future__ import annotations

from tether.drift.model import DetectionContext, Observation, Signal

NAME = "scope_widening"
PROBE_THRESHOLD = 3
_BEYOND_ENTITLEMENT = 0.9
_BEYOND_INTENT = 0.8
_BEYOND_BASELINE = 0.4


def detect(obs: Observation, ctx: DetectionContext) -> list[Signal]:
    signals: list[Signal] = []
    if obs.scopes:
        signal = _widened_scopes(obs, ctx)
        if signal is not None:
            signals.append(signal)
    if obs.outcome == "denied":
        denied = [o for o in ctx.history if o.outcome == "denied"]
        count = len(denied) + 1
        if count >= PROBE_THRESHOLD:
            targets = {(o.action, o.resource) for o in (*denied, obs)}
            deviation = min(1.0, 0.4 + 0.1 * (count - PROBE_THRESHOLD) + 0.05 * len(targets))
            evidence = (obs.ref, *(o.ref for o in reversed(denied[-9:])))
            signals.append(
                Signal(
                    NAME,
                    deviation,
                    f"`{obs.identity_id}` was refused {count} times recently "
                    f"({len(targets)} distinct action/resource pairs)",
                    evidence,
                    {"denied": count, "targets": len(targets)},
                )
            )
    return signals


def _widened_scopes(obs: Observation, ctx: DetectionContext) -> Signal | None:
    beyond_entitlement = [s for s in obs.scopes if not ctx.identity.entitled(s, None)]
    beyond_intent = (
        [s for s in obs.scopes if s not in ctx.task.actions]
        if ctx.task is not None and ctx.task.actions
        else []
    )
    baseline = ctx.baseline
    new = (
        [s for s in obs.scopes if not baseline.seen("action", s)]
        if baseline is not None and baseline.observations > 0
        else []
    )
    if beyond_entitlement:
        deviation, what, scopes = _BEYOND_ENTITLEMENT, "its entitlement", beyond_entitlement
    elif beyond_intent:
        deviation, what, scopes = _BEYOND_INTENT, "its task's intent", beyond_intent
    elif new:
        deviation, what, scopes = _BEYOND_BASELINE, "what it used before", new
    else:
        return None
    listed = ", ".join(f"`{s}`" for s in scopes)
    return Signal(
        NAME,
        deviation,
        f"`{obs.identity_id}` asked for scopes beyond {what}: {listed}",
        (obs.ref,),
        {"scopes": list(scopes)},
    )
