"""The drift vocabulary: what detectors see, what they report, how a finding reads (pure data).

A detector looks at one :class:`Observation` (an observed access or a tether decision,
normalised) in a :class:`DetectionContext` (who the identity is, what its task declared,
its learned baseline, what it did earlier in the task) and returns zero or more
:class:`Signal` values: *this deviates, by this much, because*. Scoring
(:mod:`tether.drift.scoring`) turns a signal into a :class:`Finding` with a score from
deviation x data sensitivity x blast radius and a severity from the workload class's
thresholds; exceptions may suppress or downgrade it; responses act on it.

Contract shared by every detector module (``tether.drift.detectors.<name>``):

    NAME = "out_of_intent"                      # stable detector name (findings, exceptions)
    def detect(obs: Observation, ctx: DetectionContext) -> list[Signal]: ...

Detectors are pure and fast (no I/O; called on every event as it is recorded).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from tether.telemetry.model import NO_ENVIRONMENT, Environment

if TYPE_CHECKING:
    from tether.drift.provenance import RunRecord

EMPTY: Mapping[str, Any] = MappingProxyType({})

DETECTOR_NAMES = (
    "out_of_entitlement",
    "out_of_intent",
    "scope_widening",
    "novel_access",
    "tool_chain",
    "volume_anomaly",
    "environment_change",
    "static_credential_use",
    "unmanaged_action",
)


class Severity(StrEnum):
    """How bad a finding is; ordered (``Severity.HIGH.rank > Severity.LOW.rank``)."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANKS[self]


_RANKS = {s: i for i, s in enumerate(Severity)}


class Mode(StrEnum):
    """What a workload class does with findings: record and alert, or act."""

    MONITOR = "monitor"
    ENFORCE = "enforce"


class ToolRole(StrEnum):
    """What a tool (an agent's action) does to data, for chain and flow detection.

    ``source`` reads data (sensitive when its data class says so); ``sink`` sends data
    or value out of the identity's control (e-mail, payment, post, share, external
    URL); ``mutate`` changes state inside; ``read`` is any other read-only call.
    """

    READ = "read"
    SOURCE = "source"
    MUTATE = "mutate"
    SINK = "sink"


@dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    """One thing an identity did, as every detector sees it.

    ``ref`` names the evidence: ``event:<seq>`` for a stored event, ``decision:<id>`` for a
    tether decision, ``exchange:<jti>`` for a token exchange. ``arguments`` are a tool
    call's arguments where the source knows them (OTel spans, MCP, AuthZEN context
    ``args``). ``scopes`` are the scopes asked for (token exchanges). ``sensitivity`` is the
    level of ``data_class`` in the estate (0 when unknown).
    """

    ref: str
    at: datetime
    identity_id: str
    action: str
    kind: str = "event"  # event | decision | exchange
    resource: str | None = None
    resource_type: str | None = None
    data_class: str | None = None
    sensitivity: int = 0
    outcome: str = "allowed"  # allowed | denied | error | approval_required | constrain
    task_id: str | None = None
    token_id: str | None = None
    tool_name: str | None = None
    call_id: str | None = None
    parent_call_id: str | None = None
    arguments: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    scopes: tuple[str, ...] = ()
    environment: Environment = NO_ENVIRONMENT
    records: int | None = None
    bytes: int | None = None
    # How it authenticated: task_token | workload_proof | static_secret | ...
    credential: str | None = None
    # Who reported it (a telemetry source: cloudtrail, k8s-audit, ...); None for decisions.
    source: str | None = None
    # The kind of principal the source named (``aws:root``, ``k8s:service-account``, ...).
    principal_kind: str | None = None
    # Who the source named, as it names them (a Kubernetes user name, a GCP email, an ARN).
    principal: str | None = None


@dataclass(frozen=True, slots=True)
class IntendedCall:
    """One call a task declared it would make: a tool and the argument values that matter."""

    tool: str
    arguments: Mapping[str, Any] = field(default_factory=lambda: EMPTY)


@dataclass(frozen=True, slots=True)
class TaskView:
    """The task an observation belongs to, as declared when it was opened."""

    task_id: str
    purpose: str
    actions: frozenset[str]
    resources: tuple[str, ...]  # resource patterns (`type::glob` or `glob`)
    data_classes: frozenset[str] = frozenset()
    calls: tuple[IntendedCall, ...] = ()
    within_intent: Callable[[str, str | None], bool] | None = None  # (action, resource) -> bool


@dataclass(frozen=True, slots=True)
class IdentityView:
    """The identity under watch: its class and what its standing entitlement reaches.

    ``entitled(action, resource)`` answers from the compiled entitlements (no Cedar call).
    ``blast_radius`` is in [0, 1]: how much its entitlement can reach (highest reachable
    sensitivity, breadth of wildcards), computed once per estate revision. ``managed`` is
    false for an identity the estate does not declare (discovered in telemetry).
    """

    identity_id: str
    kind: str
    workload_class: str | None
    entitled: Callable[[str, str | None], bool]
    blast_radius: float
    static_credential: bool = False
    # False for an identity tether only discovered in telemetry (nobody approved it).
    managed: bool = True


@dataclass(frozen=True, slots=True)
class ToolInfo:
    """What the catalog knows of a tool: its role and which argument names a target."""

    role: ToolRole
    target_arguments: tuple[str, ...] = ()
    # The same names as a set: most calls name none of them, told in one C call.
    target_names: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "target_names", frozenset(self.target_arguments))


class ToolCatalog(Protocol):
    """Classifies tools (agent actions); a default classifies by verb, the estate may override."""

    def info(self, tool: str) -> ToolInfo: ...


class Baseline(Protocol):
    """An identity's learned behaviour (see :mod:`tether.drift.baselines`)."""

    @property
    def identity_id(self) -> str: ...

    @property
    def version(self) -> int: ...

    @property
    def observations(self) -> int: ...

    def seen(self, dimension: str, value: str) -> bool:
        """True when ``value`` was observed for ``dimension`` (``action``, ``resource``,
        ``resource_type``, ``data_class``, ``transition`` (``a->b``), ``ip_prefix``,
        ``region``, ``user_agent``, ``hour``)."""
        ...

    def volume(self, action: str) -> tuple[float, float] | None:
        """Mean and standard deviation of records per event for ``action``, if learned."""
        ...


@dataclass(frozen=True, slots=True)
class DetectionContext:
    """Everything a detector may consult besides the observation itself.

    ``history`` is what the same identity did before ``obs`` in the same task (or, with
    no task, in the recent window), oldest first, bounded in length. ``record`` is what
    the task's earlier calls returned (:mod:`tether.drift.provenance`), when reported;
    ``organisation`` tells the organisation's own destinations from outside ones.
    """

    identity: IdentityView
    task: TaskView | None
    baseline: Baseline | None
    history: Sequence[Observation]
    catalog: ToolCatalog
    data_classes: Mapping[str, int] = field(default_factory=lambda: EMPTY)
    record: RunRecord | None = None
    # Whether a destination is the organisation's own (estate `organisation:`); None: unknown.
    internal: Callable[[str], bool] | None = None


@dataclass(frozen=True, slots=True)
class Signal:
    """A detector's claim: ``obs`` deviates by ``deviation`` (0..1), for ``reason``."""

    detector: str
    deviation: float
    reason: str  # lowercase, user values in backticks
    evidence: tuple[str, ...] = ()  # refs of the observations that show it, obs first
    details: Mapping[str, Any] = field(default_factory=lambda: EMPTY)


@dataclass(frozen=True, slots=True)
class Finding:
    """A scored, attributed deviation, ready to store, show and act on."""

    finding_id: str
    at: datetime
    identity_id: str
    detector: str
    severity: Severity
    score: float  # 0..100
    deviation: float
    sensitivity: float  # 0..1
    blast_radius: float  # 0..1
    reason: str
    evidence: tuple[str, ...]
    task_id: str | None = None
    resource: str | None = None
    details: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    suppressed_by: str | None = None  # exception id
    downgraded_from: Severity | None = None
    response: str | None = None  # none | alert | constrain | approval | revoke
    frameworks: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: EMPTY)
    mode: Mode = Mode.MONITOR  # the identity's class mode when the finding was made
