"""The estate as validated values: what the files declare, each item with its file and line.

Files are named relative to the estate folder (``estate.yaml``, ``policies/a.cedar``)
so that what is stored does not depend on where the folder was when it was applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tether.estate._patterns import ResourcePattern
from tether.estate.compiled import Organisation, ToolMapping
from tether.policy import EntityRef, PolicySpec

IDENTITY_KINDS = ("agent", "service_account", "api_key", "workload", "oauth_app", "user")
CLASS_MODES = ("monitor", "enforce")


@dataclass(frozen=True)
class Where:
    """A place in the estate files."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class WorkloadClass:
    """Thresholds and mode of a workload class; durations are in seconds."""

    name: str
    mode: str
    settings: Mapping[str, Any]
    where: Where


@dataclass(frozen=True)
class TrustAnchor:
    """Who may prove workload identity: a SPIFFE trust domain or an OIDC issuer."""

    name: str
    kind: str  # spiffe | oidc
    settings: Mapping[str, Any]
    where: Where


@dataclass(frozen=True)
class SensitivityRule:
    """``{pattern, data_class}``: the data class of every resource under a pattern."""

    pattern: ResourcePattern
    data_class: str
    where: Where


@dataclass(frozen=True)
class DeclaredResource:
    """A resource entity the estate declares, with its attributes."""

    type: str
    id: str
    attributes: Mapping[str, Any]
    parents: tuple[EntityRef, ...]
    data_class: str | None
    where: Where
    attribute_lines: Mapping[str, Where] = field(default_factory=dict)


@dataclass(frozen=True)
class Entitlement:
    """One approved grant of an identity: these actions on these resources."""

    identity: str
    index: int  # 1-based position in the identity's list
    actions: tuple[str, ...]
    resources: tuple[ResourcePattern, ...]
    where: Where

    @property
    def id(self) -> str:
        return f"entitlement:{self.identity}:{self.index}"


@dataclass(frozen=True)
class Identity:
    """A non-human (or human) identity and what it is entitled to."""

    id: str
    kind: str
    workload_class: str | None
    owner: str | None
    workload: str | Mapping[str, str] | None
    attributes: Mapping[str, Any]
    parents: tuple[EntityRef, ...]
    entitlements: tuple[Entitlement, ...]
    where: Where
    attribute_lines: Mapping[str, Where] = field(default_factory=dict)
    # Roles it holds as a caller of tether itself (`tether.callers.Role` values).
    tether_roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class EstateException:
    """A monitored exception: findings of ``detector`` for ``identity`` are suppressed."""

    id: str
    identity: str
    detector: str
    resource: ResourcePattern | None
    owner: str
    justification: str
    expires_at: datetime
    where: Where


@dataclass(frozen=True)
class PolicyFile:
    """A ``.cedar`` file: its parsed policies and each policy's source text."""

    name: str
    specs: tuple[PolicySpec, ...]
    texts: Mapping[str, str]  # policy id -> statement text


@dataclass(frozen=True)
class Estate:
    """Everything an estate folder declares, validated."""

    directory: Path
    classes: Mapping[str, WorkloadClass]
    trust: Mapping[str, TrustAnchor]
    data_classes: Mapping[str, int]
    rules: tuple[SensitivityRule, ...]
    resources: tuple[DeclaredResource, ...]
    identities: Mapping[str, Identity]
    exceptions: tuple[EstateException, ...]
    policy_files: tuple[PolicyFile, ...]
    schema_text: str | None = None
    schema_file: str | None = None
    data_class_lines: Mapping[str, Where] = field(default_factory=dict)
    # The `tools:` section (tether.estate._tools), by tool name.
    tools: Mapping[str, ToolMapping] = field(default_factory=dict)
    # The `organisation:` section (tether.estate._organisation).
    organisation: Organisation = field(default_factory=Organisation)

    @property
    def entitlements(self) -> list[Entitlement]:
        return [e for identity in self.identities.values() for e in identity.entitlements]
