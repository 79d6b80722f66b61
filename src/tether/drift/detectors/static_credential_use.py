"""Detector ``static_credential_use``: a long-lived shared secret in use.

tether-native flows need no static secret; legacy ones (API keys, access keys) are
inventoried as monitored exceptions, never silently accepted. An access made with one
(``obs.credential == "static_secret"``) or by a static-credential identity kind
(:data:`STATIC_KINDS`) is reported once per task (or recent window), not on every call.
"""

from __future__ import annotations

from tether.drift.model import DetectionContext, Observation, Signal

NAME = "static_credential_use"
STATIC_KINDS = frozenset({"api_key"})
STATIC_CREDENTIALS = frozenset({"static_secret"})
DEVIATION = 0.4


def _static(obs: Observation, ctx: DetectionContext) -> bool:
    return (
        obs.credential in STATIC_CREDENTIALS
        or ctx.identity.static_credential
        or ctx.identity.kind in STATIC_KINDS
    )


def detect(obs: Observation, ctx: DetectionContext) -> list[Signal]:
    if not _static(obs, ctx) or any(_static(o, ctx) for o in ctx.history):
        return []
    how = obs.credential or ctx.identity.kind
    return [
        Signal(
            NAME,
            DEVIATION,
            f"`{obs.identity_id}` used a long-lived static secret (`{how}`)",
            (obs.ref,),
            {"credential": how},
        )
    ]
