"""`tether.frozen.builder` makes the same values as the dataclass's own `__init__`."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tether.drift.model import Observation
from tether.frozen import builder
from tether.telemetry.model import Environment, ObservedAccess, RawPrincipal, Source

AT = datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_built_values_equal_constructed_ones_defaults_and_factories_included() -> None:
    fields = {"ref": "event:1", "at": AT, "identity_id": "svc", "action": "s3:GetObject"}
    built = builder(Observation)(**fields)
    assert built == Observation(**fields)
    assert built.arguments == {}
    assert built.environment == Environment()
    full = {**fields, "resource": "arn:aws:s3:::r/k", "sensitivity": 3, "scopes": ("a",)}
    assert builder(Observation)(**full) == Observation(**full)
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.action = "other"  # type: ignore[misc]


def test_post_init_still_validates() -> None:
    make = builder(ObservedAccess)
    common = {
        "source": Source.CLOUDTRAIL,
        "principal": RawPrincipal("aws:iam-user", "u"),
        "action": "s3:GetObject",
        "raw": {},
        "dedupe_key": "k",
    }
    assert make(at=AT, **common) == ObservedAccess(at=AT, **common)
    with pytest.raises(ValueError, match="UTC"):
        make(at=AT.astimezone(timezone(timedelta(hours=2))), **common)
    with pytest.raises(TypeError):
        make(at=AT, **common, unknown=1)
    with pytest.raises(TypeError):
        make(**common)  # `at` is required


def test_only_slotted_dataclasses() -> None:
    @dataclasses.dataclass(frozen=True)
    class Plain:
        x: int

    with pytest.raises(TypeError, match="slotted"):
        builder(Plain)
