"""Detector ``volume_anomaly``: far more records (or bytes) per access than usual.

Compares ``obs.records`` (and ``obs.bytes``) with the baseline's mean and standard
deviation for the same action (bytes are learned under ``bytes:<action>``). The spread
is floored at 10 % of the mean (and 1) so a perfectly regular job is not flagged for one
extra row. A z-score of :data:`Z_THRESHOLD` or more is a signal; the deviation grows
with z and reaches 1 at z = 10.
"""

from __future__ import annotations

from tether.drift.model import DetectionContext, Observation, Signal

NAME = "volume_anomaly"
Z_THRESHOLD = 3.0


def detect(obs: Observation, ctx: DetectionContext) -> list[Signal]:
    baseline = ctx.baseline
    if baseline is None:
        return []
    signals: list[Signal] = []
    for unit, value, key in (
        ("records", obs.records, obs.action),
        ("bytes", obs.bytes, f"bytes:{obs.action}"),
    ):
        learned = baseline.volume(key) if value is not None else None
        if value is None or learned is None:
            continue
        mean, std = learned
        spread = max(std, 0.1 * mean, 1.0)
        z = (value - mean) / spread
        if z < Z_THRESHOLD:
            continue
        signals.append(
            Signal(
                NAME,
                min(1.0, z / 10),
                f"`{obs.identity_id}` moved {value} {unit} in `{obs.action}` "
                f"(usually {mean:.0f} ± {std:.0f})",
                (obs.ref,),
                {"unit": unit, "value": value, "mean": mean, "std": std, "z": round(z, 2)},
            )
        )
        break  # one volume signal per access: records, else bytes
    return signals
