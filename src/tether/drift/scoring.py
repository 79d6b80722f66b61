"""Scoring: a detector's :class:`Signal` becomes a :class:`Finding` with a score and a severity.

The score (0..100) is deviation x data sensitivity x blast radius x class weight::

    score = 100 * D * (0.3 + 0.7 * S) * (0.5 + 0.5 * B) * W      (clamped to 0..100)

- ``D`` is the signal's ``deviation`` (0..1): how far the observation is from what was
  approved, declared or learned.
- ``S`` is the data sensitivity (0..1): ``obs.sensitivity`` divided by the estate's
  highest data-class level (4 when the estate declares none). When the data class is
  unknown (no ``data_class`` and level 0) ``S`` is :data:`NEUTRAL_SENSITIVITY` (0.5,
  the middle of the scale: unknown data is neither waved through nor treated as the
  crown jewels). A signal may raise ``S`` with ``details["sensitivity"]`` (0..1, e.g.
  a sensitive-source -> sink flow carries the source's level) and marks data leaving
  the identity's control with ``details["sink"] = True``, which counts as at least
  :data:`SINK_SENSITIVITY` (0.75).
- ``B`` is the identity's blast radius (0..1, what its entitlement can reach, from
  :class:`~tether.drift.model.IdentityView`).
- ``W`` is the workload class weight (see below); the estate may set ``weight``.

The floors (0.3 and 0.5) keep a large deviation visible on low-sensitivity data or a
narrowly entitled identity; they never lift it past the class's ``high`` cut-off on
their own.

Severity comes from the class's cut-offs: ``score >= critical`` is critical, then high,
medium, low; below ``low`` it is info. Defaults per workload class (the class name, or
when the estate names its classes otherwise, the identity kind's usual class):

==============  ====  ======  ====  ========  ======  =======
class           low   medium  high  critical  weight  mode
==============  ====  ======  ====  ========  ======  =======
``agent``       10    25      40    70        1.0     monitor
``third_party`` 10    25      40    70        1.0     monitor
``service``     15    30      50    80        0.8     monitor
``batch``       20    45      65    85        0.6     monitor
other           15    30      50    80        0.8     monitor
==============  ====  ======  ====  ========  ======  =======

Worked examples (blast radius 0.5): a ``batch`` job reading many more rows of
``internal`` data (level 2 of 4, ``S`` = 0.5) with ``D`` = 1 scores
``100 * 1 * 0.65 * 0.75 * 0.6`` = 29: low. An ``agent`` touching ``restricted`` data
(``S`` = 1) it never touched before with ``D`` = 0.8 scores ``100 * 0.8 * 1 * 0.75`` = 60:
high.

A signal may set a floor, ``details["severity_floor"]`` (a :class:`Severity` value): the
finding is at least that severe, its score lifted to the class's cut-off for it. Cloud
actions use it so that what ATT&CK calls persistence, privilege escalation, defense
evasion or credential access is high for every class, however low its weight (a
``batch`` class's highest possible score, 60, is below its own ``high`` cut-off).
Findings about cloud calls carry the action's risk (:mod:`tether.drift.cloud`) in
``details["cloud_action"]``: access level, tactics, techniques and their source.

The mode is the class's ``mode`` from the estate (``monitor`` when absent). The estate may
override cut-offs per class: ``thresholds: {low: 10, medium: 25, high: 40, critical: 70,
weight: 1.0}`` (any subset; other keys are estate errors).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from tether.drift.cloud import risk_of
from tether.drift.frameworks import frameworks_for
from tether.drift.model import DetectionContext, Finding, Mode, Observation, Severity, Signal

NEUTRAL_SENSITIVITY = 0.5
SINK_SENSITIVITY = 0.75
DEFAULT_TOP_LEVEL = 4
SENSITIVITY_FLOOR = 0.3
BLAST_FLOOR = 0.5
THRESHOLD_KEYS = ("low", "medium", "high", "critical", "weight")


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Score cut-offs, mode and weight of one workload class."""

    low: float = 15.0
    medium: float = 30.0
    high: float = 50.0
    critical: float = 80.0
    mode: Mode = Mode.MONITOR
    weight: float = 0.8

    def __post_init__(self) -> None:
        cuts = (self.low, self.medium, self.high, self.critical)
        if not all(0 <= a <= b <= 100 for a, b in itertools.pairwise(cuts)):
            raise ValueError(f"drift cut-offs must rise within 0..100, got `{cuts}`")
        if not 0 < self.weight <= 2:
            raise ValueError(f"drift weight must be in (0, 2], got `{self.weight}`")

    def severity(self, score: float) -> Severity:
        """The severity of ``score`` under these cut-offs."""
        if score >= self.critical:
            return Severity.CRITICAL
        if score >= self.high:
            return Severity.HIGH
        if score >= self.medium:
            return Severity.MEDIUM
        if score >= self.low:
            return Severity.LOW
        return Severity.INFO


DEFAULT_THRESHOLDS: Mapping[str, Thresholds] = {
    "agent": Thresholds(10, 25, 40, 70, weight=1.0),
    "third_party": Thresholds(10, 25, 40, 70, weight=1.0),
    "service": Thresholds(15, 30, 50, 80, weight=0.8),
    "batch": Thresholds(20, 45, 65, 85, weight=0.6),
}
FALLBACK_THRESHOLDS = Thresholds()

# The usual class of an identity kind, for estates whose class names are their own.
_KIND_CLASS = {
    "agent": "agent",
    "oauth_app": "third_party",
    "service_account": "service",
    "workload": "service",
    "api_key": "service",
    "user": "service",
}


def thresholds_for(
    class_name: str | None, kind: str | None = None, settings: Mapping[str, Any] | None = None
) -> Thresholds:
    """Thresholds of a workload class: its defaults, overridden by the estate's settings.

    ``settings`` is the class as compiled (``mode`` and optional ``thresholds`` mapping
    with any of ``low``, ``medium``, ``high``, ``critical``, ``weight``).
    """
    base = DEFAULT_THRESHOLDS.get(class_name or "")
    if base is None:
        base = DEFAULT_THRESHOLDS.get(_KIND_CLASS.get(kind or "", ""), FALLBACK_THRESHOLDS)
    if not settings:
        return base
    changes: dict[str, Any] = {}
    mode = settings.get("mode")
    if mode in (Mode.MONITOR.value, Mode.ENFORCE.value):
        changes["mode"] = Mode(mode)
    given = settings.get("thresholds")
    if isinstance(given, Mapping):
        for key in THRESHOLD_KEYS:
            if key in given:
                changes[key] = float(given[key])
    if not changes:
        return base
    cuts = [float(changes.get(k, getattr(base, k))) for k in THRESHOLD_KEYS[:4]]
    given = [k in changes for k in THRESHOLD_KEYS[:4]]
    # Defaults the estate left alone make way for the cut-offs it set (they must rise).
    for i in range(1, 4):
        if not given[i]:
            cuts[i] = max(cuts[i], cuts[i - 1])
    for i in range(2, -1, -1):
        if not given[i]:
            cuts[i] = min(cuts[i], cuts[i + 1])
    changes.update(zip(THRESHOLD_KEYS[:4], cuts, strict=True))
    return replace(base, **changes)


def sensitivity_of(signal: Signal, obs: Observation, ctx: DetectionContext) -> float:
    """Data sensitivity ``S`` in 0..1 (see the module docstring)."""
    top = max(ctx.data_classes.values(), default=0) or DEFAULT_TOP_LEVEL
    level = NEUTRAL_SENSITIVITY if obs.sensitivity <= 0 else min(1.0, obs.sensitivity / top)
    raised = signal.details.get("sensitivity")
    if isinstance(raised, int | float):
        level = max(level, min(1.0, float(raised)))
    if signal.details.get("sink") is True:
        level = max(level, SINK_SENSITIVITY)
    return level


def score(
    signal: Signal, obs: Observation, ctx: DetectionContext, thresholds: Thresholds
) -> tuple[float, Severity]:
    """Score ``signal`` (0..100) and grade it with ``thresholds``."""
    deviation = _unit(signal.deviation)
    sensitivity = sensitivity_of(signal, obs, ctx)
    blast = _unit(ctx.identity.blast_radius)
    raw = (
        100.0
        * deviation
        * (SENSITIVITY_FLOOR + (1 - SENSITIVITY_FLOOR) * sensitivity)
        * (BLAST_FLOOR + (1 - BLAST_FLOOR) * blast)
        * thresholds.weight
    )
    value = round(min(100.0, max(0.0, raw)), 2)
    return value, thresholds.severity(value)


def finding_id_of(detector: str, ref: str, identity_id: str) -> str:
    """A stable finding id: the same signal on the same evidence is the same finding.

    Stable ids make ``tether drift scan`` idempotent (re-scanning stores nothing new).
    """
    digest = hashlib.sha256(f"{identity_id}\x00{detector}\x00{ref}".encode()).hexdigest()
    return f"fnd_{digest[:24]}"


def to_finding(
    signal: Signal, obs: Observation, ctx: DetectionContext, thresholds: Thresholds
) -> Finding:
    """The :class:`Finding` for ``signal``: scored, graded, with its evidence and references."""
    value, severity = score(signal, obs, ctx, thresholds)
    floor = signal.details.get("severity_floor")
    if isinstance(floor, str) and floor in Severity.__members__.values():
        least = Severity(floor)
        if least.rank > severity.rank:
            severity = least
            value = max(value, _cut_off(thresholds, least))
    details = signal.details
    risk = risk_of(obs.action, obs.source) if obs.kind == "event" else None
    if risk is not None and "cloud_action" not in details:
        details = {**details, "cloud_action": risk.summary}
    evidence = signal.evidence or (obs.ref,)
    return Finding(
        finding_id=finding_id_of(signal.detector, obs.ref, obs.identity_id),
        at=obs.at,
        identity_id=obs.identity_id,
        detector=signal.detector,
        severity=severity,
        score=value,
        deviation=_unit(signal.deviation),
        sensitivity=round(sensitivity_of(signal, obs, ctx), 4),
        blast_radius=_unit(ctx.identity.blast_radius),
        reason=signal.reason,
        evidence=tuple(evidence),
        task_id=obs.task_id,
        resource=obs.resource,
        details=details,
        frameworks=frameworks_for(signal.detector),
        mode=thresholds.mode,
    )


def _cut_off(thresholds: Thresholds, severity: Severity) -> float:
    cuts = {
        Severity.LOW: thresholds.low,
        Severity.MEDIUM: thresholds.medium,
        Severity.HIGH: thresholds.high,
        Severity.CRITICAL: thresholds.critical,
    }
    return cuts.get(severity, 0.0)


def _unit(value: float) -> float:
    return min(1.0, max(0.0, float(value)))
