"""Detector ``unmanaged_action``: a discovered identity changing things in the cloud.

An identity tether only discovered in telemetry (no estate declares it, nobody approved
what it may do) has no entitlement to be outside of, so out-of-entitlement cannot judge
it. What it does is judged by itself instead (:mod:`tether.drift.cloud`): every Write or
Permissions management call that went through (and every call of an unknown level, as
the conservative default) is a finding whose deviation is the action's weight; one that
serves persistence, privilege escalation, defense evasion or credential access is high,
one that moves data out, destroys or executes at least medium, whatever its access
level (reading a secret is a Read). Refused and failed calls are left to
``scope_widening`` (repeated probes).
"""

from __future__ import annotations

from tether.drift.cloud import risk_of
from tether.drift.model import DetectionContext, Observation, Signal

NAME = "unmanaged_action"


def detect(obs: Observation, ctx: DetectionContext) -> list[Signal]:
    if ctx.identity.managed or obs.kind != "event" or obs.outcome != "allowed":
        return []
    risk = risk_of(obs.action, obs.source)
    if risk is None or not (risk.changes or risk.floor is not None):
        return []
    target = f" on `{obs.resource}`" if obs.resource else ""
    details: dict[str, object] = {"managed": False}
    if risk.floor is not None:
        details["severity_floor"] = risk.floor.value
    return [
        Signal(
            NAME,
            risk.weight,
            f"unmanaged `{obs.identity_id}` did `{obs.action}`{target} ({risk.described})",
            (obs.ref,),
            details,
        )
    ]
