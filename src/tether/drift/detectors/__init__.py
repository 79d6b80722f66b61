"""Detector registry: one module per detector under ``tether.drift.detectors``, loaded by name.

Each module exposes ``NAME`` (one of :data:`~tether.drift.model.DETECTOR_NAMES`) and
``detect(obs, ctx) -> list[Signal]``. Modules are imported by name, when an engine that
enables them starts (a disabled detector is never imported); a detector whose module is
missing or malformed is an explicit :class:`DetectorUnavailable` error, never silently
skipped.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import ModuleType

from tether.drift.errors import DetectorUnavailable
from tether.drift.model import DETECTOR_NAMES, DetectionContext, Observation, Signal

DetectFunction = Callable[[Observation, DetectionContext], list[Signal]]


@dataclass(frozen=True, slots=True)
class Detector:
    """A loaded detector: its stable name and its pure ``detect`` function."""

    name: str
    detect: DetectFunction


_LOADED: dict[str, Detector] = {}


def load_detector(name: str) -> Detector:
    """Import ``tether.drift.detectors.<name>`` and check it honours the contract."""
    hit = _LOADED.get(name)
    if hit is not None:
        return hit
    if name not in DETECTOR_NAMES:
        known = ", ".join(DETECTOR_NAMES)
        raise DetectorUnavailable(f"unknown detector `{name}` (known: {known})")
    try:
        module: ModuleType = importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise
        raise DetectorUnavailable(f"detector `{name}` is enabled but not installed") from exc
    detect = getattr(module, "detect", None)
    if getattr(module, "NAME", None) != name or not callable(detect):
        raise DetectorUnavailable(f"detector module `{name}` must define NAME and detect()")
    detector = Detector(name, detect)
    _LOADED[name] = detector
    return detector


def load_detectors(names: Iterable[str] | None = None) -> tuple[Detector, ...]:
    """Load the named detectors (all of :data:`DETECTOR_NAMES` when ``None``), in order."""
    return tuple(load_detector(n) for n in (DETECTOR_NAMES if names is None else names))


__all__ = ["DetectFunction", "Detector", "DetectorUnavailable", "load_detector", "load_detectors"]
