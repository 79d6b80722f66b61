"""Detector ``unmanaged_action``: a discovered identity changing things in the cloud.

An identity tether only discovered in telemetry (no estate declares it, nobody approved
what it may do) has no entitlement to be outside of, so out-of-entitlement cannot judge
it. What it does is judged by itself instead (:mod:`tether.drift.cloud`): every Write or
Permissions management call that went through (and every call of an unknown level, as
the conservative default) is a finding whose deviation is the action's weight. One that
serves persistence, privilege escalation, defense evasion or credential access is high
(as for any identity), and so is one that moves data out, collects it, destroys it, runs
code or connects to a machine (for a declared identity these are at least medium): with
no owner and no entitlement vouching for the identity, nothing tells such a call from an
attacker's. Reading a secret is a Read, and high all the same. A change a CIS benchmark
alarms on every time (IAM policies, trails, Config, network controls; ``monitoring.yaml``)
and a Permissions management call are at least medium: someone should look, but the
same calls are most of an administrator's day, so high is kept for what ATT&CK names.

Console sign-ins authorise no IAM action; a failed one (ATT&CK T1110) and a root one
(T1078.004) are high (:mod:`tether.drift.cloud._signin`). Other refused and failed calls
are left to ``scope_widening`` (repeated probes).
"""

from __future__ import annotations

from tether.drift.cloud import TACTICS, risk_of, sign_in_technique
from tether.drift.model import DetectionContext, Observation, Severity, Signal

NAME = "unmanaged_action"


def detect(obs: Observation, ctx: DetectionContext) -> list[Signal]:
    if ctx.identity.managed or obs.kind != "event":
        return []
    if obs.source == "cloudtrail":
        technique = sign_in_technique(obs.action, obs.outcome, obs.principal_kind)
        if technique is not None:
            tactics = ", ".join(TACTICS[t] for t in technique.tactics)
            how = "failed a console sign-in" if obs.outcome != "allowed" else "signed in as root"
            reason = (
                f"unmanaged `{obs.identity_id}` {how} (`{obs.action}`; {tactics}, "
                f"ATT&CK {technique.id} {technique.name}; source: AWS console sign-in events)"
            )
            raised = {"managed": False, "severity_floor": Severity.HIGH.value}
            return [Signal(NAME, 1.0, reason, (obs.ref,), raised)]
    if obs.outcome != "allowed":
        return []
    risk = risk_of(obs.action, obs.source)
    if risk is None:
        return []
    floor = risk.unmanaged_floor or risk.floor
    if not (risk.changes or floor is not None):
        return []
    target = f" on `{obs.resource}`" if obs.resource else ""
    details: dict[str, object] = {"managed": False}
    if floor is not None:
        details["severity_floor"] = floor.value
    return [
        Signal(
            NAME,
            risk.weight,
            f"unmanaged `{obs.identity_id}` did `{obs.action}`{target} ({risk.described})",
            (obs.ref,),
            details,
        )
    ]
