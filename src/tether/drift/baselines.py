"""Learned baselines: what an identity normally does, learned from its observed behaviour.

A baseline is learned per identity from its stored events and decisions over a learning
window (default 30 days): the actions, resources, resource types and data classes it
touched, its tool-to-tool transitions (within a task), its environment (IP /24 or /64,
region, user agent family, UTC hour) and per-action volume statistics (mean and standard
deviation of records per event, Welford's algorithm; bytes per event under
``bytes:<action>``). Stored versioned in
``drift_baselines`` (see :mod:`tether.drift.baseline_store`): every rebuild is a new
version, detectors use the latest.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tether.drift.features import environment_features, service_of, tool_of
from tether.drift.model import Observation

DIMENSIONS = (
    "action",
    "resource",
    "resource_type",
    "data_class",
    "service",
    "transition",
    "ip_prefix",
    "region",
    "user_agent",
    "hour",
)
# A value set larger than this stops growing (a baseline must stay small in memory).
MAX_VALUES_PER_DIMENSION = 5000


@dataclass(frozen=True, slots=True)
class VolumeStats:
    """Records per event of one action: count, mean and standard deviation."""

    count: int
    mean: float
    std: float


@dataclass(frozen=True, slots=True)
class LearnedBaseline:
    """One stored version of an identity's baseline (implements the ``Baseline`` protocol)."""

    identity_id: str
    version: int
    observations: int
    values: Mapping[str, frozenset[str]] = field(default_factory=dict)
    volumes: Mapping[str, VolumeStats] = field(default_factory=dict)

    def seen(self, dimension: str, value: str) -> bool:
        return value in self.values.get(dimension, frozenset())

    def volume(self, action: str) -> tuple[float, float] | None:
        stats = self.volumes.get(action)
        return None if stats is None else (stats.mean, stats.std)

    def to_json(self) -> dict[str, Any]:
        return {
            "values": {k: sorted(v) for k, v in self.values.items()},
            "volumes": {
                k: {"count": s.count, "mean": s.mean, "std": s.std} for k, s in self.volumes.items()
            },
        }

    @classmethod
    def from_json(
        cls, identity_id: str, version: int, observations: int, data: Mapping[str, Any]
    ) -> LearnedBaseline:
        return cls(
            identity_id=identity_id,
            version=version,
            observations=observations,
            values={k: frozenset(v) for k, v in data.get("values", {}).items()},
            volumes={
                k: VolumeStats(int(s["count"]), float(s["mean"]), float(s["std"]))
                for k, s in data.get("volumes", {}).items()
            },
        )


class BaselineLearner:
    """Accumulates one identity's observations (oldest first) into a :class:`LearnedBaseline`."""

    def __init__(self, identity_id: str) -> None:
        self.identity_id = identity_id
        self.observations = 0
        self._values: dict[str, set[str]] = {d: set() for d in DIMENSIONS}
        self._welford: dict[str, tuple[int, float, float]] = {}
        self._last_tool: dict[str, str] = {}

    def add(self, obs: Observation) -> None:
        """Learn from one observation; denied accesses teach nothing about normal behaviour."""
        if obs.outcome in ("denied", "error"):
            return
        self.observations += 1
        self._put("action", obs.action)
        self._put("resource", obs.resource)
        self._put("resource_type", obs.resource_type)
        self._put("data_class", obs.data_class)
        self._put("service", service_of(obs))
        for dimension, value in environment_features(obs).items():
            self._put(dimension, value)
        tool = tool_of(obs)
        chain = obs.task_id or ""
        previous = self._last_tool.get(chain)
        if previous is not None and obs.task_id is not None:
            self._put("transition", f"{previous}->{tool}")
        self._last_tool[chain] = tool
        if obs.records is not None:
            self._learn_volume(obs.action, obs.records)
        if obs.bytes is not None:
            self._learn_volume(f"bytes:{obs.action}", obs.bytes)

    def _learn_volume(self, key: str, value: int) -> None:
        count, mean, m2 = self._welford.get(key, (0, 0.0, 0.0))
        count += 1
        delta = value - mean
        mean += delta / count
        m2 += delta * (value - mean)
        self._welford[key] = (count, mean, m2)

    def add_all(self, observations: Iterable[Observation]) -> BaselineLearner:
        for obs in observations:
            self.add(obs)
        return self

    def build(self, version: int) -> LearnedBaseline:
        volumes = {
            action: VolumeStats(count, mean, math.sqrt(m2 / count) if count > 1 else 0.0)
            for action, (count, mean, m2) in self._welford.items()
        }
        return LearnedBaseline(
            identity_id=self.identity_id,
            version=version,
            observations=self.observations,
            values={k: frozenset(v) for k, v in self._values.items() if v},
            volumes=volumes,
        )

    def _put(self, dimension: str, value: str | None) -> None:
        if value:
            bucket = self._values[dimension]
            if len(bucket) < MAX_VALUES_PER_DIMENSION:
                bucket.add(value)
