"""Builders of drift observations and contexts for unit tests (real values, no mocks)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from tether.drift.baselines import BaselineLearner, LearnedBaseline
from tether.drift.model import (
    DetectionContext,
    IdentityView,
    Observation,
    TaskView,
    ToolInfo,
    ToolRole,
)

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
DATA_CLASSES = {"public": 1, "internal": 2, "confidential": 3, "restricted": 4}


class VerbCatalog:
    """Classifies tools by verb, like the default catalog does."""

    def info(self, tool: str) -> ToolInfo:
        return ToolInfo(ToolRole.SINK if tool.startswith("send") else ToolRole.READ)


_counter = iter(range(1, 10**9))


def obs(action: str = "read_invoice", **fields: Any) -> Observation:
    fields.setdefault("identity_id", "billing-bot")
    fields.setdefault("at", T0)
    fields.setdefault("ref", f"event:{next(_counter)}")
    return Observation(action=action, **fields)


def entitled_to(*pairs: tuple[str, str]) -> Callable[[str, str | None], bool]:
    """An entitlement check granting ``(action, resource-prefix)`` pairs."""

    def check(action: str, resource: str | None) -> bool:
        return any(
            action == a and (resource is None or resource.startswith(prefix)) for a, prefix in pairs
        )

    return check


def identity(
    kind: str = "agent",
    workload_class: str | None = "agent",
    *,
    entitled: Callable[[str, str | None], bool] | None = None,
    blast_radius: float = 0.5,
    static_credential: bool = False,
) -> IdentityView:
    return IdentityView(
        identity_id="billing-bot",
        kind=kind,
        workload_class=workload_class,
        entitled=entitled or entitled_to(("read_invoice", "invoice:")),
        blast_radius=blast_radius,
        static_credential=static_credential,
    )


def learned(observations: Sequence[Observation], version: int = 1) -> LearnedBaseline:
    return BaselineLearner("billing-bot").add_all(observations).build(version)


def context(
    *,
    ident: IdentityView | None = None,
    baseline: LearnedBaseline | None = None,
    history: Sequence[Observation] = (),
    task: TaskView | None = None,
) -> DetectionContext:
    return DetectionContext(
        identity=ident or identity(),
        task=task,
        baseline=baseline,
        history=tuple(history),
        catalog=VerbCatalog(),
        data_classes=DATA_CLASSES,
    )
