"""Who is under watch: identity views, class thresholds and data-class levels, per estate revision.

Built from the store (identities, their entitlements, data classes, workload classes) and
the live compiled estate (resource sensitivity rules) whenever the estate revision
changes, so that a detector's ``entitled(action, resource)`` is a pure in-memory answer.

Blast radius (0..1) of an identity, from its grants::

    blast = 0.7 * reach + 0.3 * breadth

``reach`` is the highest data-class level a grant's resource patterns can touch (a
sensitivity rule whose pattern overlaps one of them), divided by the estate's highest
level; :data:`~tether.drift.scoring.NEUTRAL_SENSITIVITY` when no rule says. ``breadth``
grows with wildcards (``*`` alone counts 1, ``type:*`` 0.5, a glob 0.25, an exact
resource 0.05) and the number of actions (0.05 each), capped at 1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, select

from tether.drift.cloud import authorised_as
from tether.drift.model import IdentityView
from tether.drift.scoring import NEUTRAL_SENSITIVITY, Thresholds, thresholds_for
from tether.estate import ResourcePattern, glob_regex, parse_pattern
from tether.estate.compiled import CompiledEstate, ResourceClassifier, ResourceRule
from tether.policy import EntityRef
from tether.store.tables import data_classes, entitlements, identities, workload_classes
from tether.tokens.tasks import Grant

ESTATE_ORIGIN = "estate"
DISCOVERED_ORIGIN = "discovered"
STATIC_KINDS = frozenset({"api_key"})


@dataclass(frozen=True, slots=True)
class Watched:
    """One identity: its view for detectors and its class's thresholds."""

    view: IdentityView
    thresholds: Thresholds


def action_matcher(actions: frozenset[str]) -> Callable[[str], bool]:
    """Whether an action falls under ``actions``: exact names, and IAM-style patterns.

    An action with a ``:`` (``s3:GetObject``, ``k8s:get pods``) is a cloud action
    pattern: compared case-insensitively, ``*`` matching any run of characters, as IAM
    compares the actions of a policy (IAM User Guide, "IAM JSON policy elements: Action"),
    and an observed CloudTrail name as the IAM action it is authorised as
    (:func:`tether.drift.cloud.authorised_as`).
    Other actions (agent tools) are compared exactly.
    """
    cloud = [a for a in actions if ":" in a]
    if not cloud:
        return actions.__contains__
    exact = frozenset(a.lower() for a in cloud if "*" not in a)
    wild = [glob_regex(a.lower()) for a in cloud if "*" in a]

    def matches(action: str) -> bool:
        if action in actions:
            return True
        for name in authorised_as(action):
            if name in exact or any(w.fullmatch(name) for w in wild):
                return True
        return False

    return matches


def _entitled_by(grants: Sequence[Grant]) -> Callable[[str, str | None], bool]:
    matchers = [(action_matcher(grant.actions), grant) for grant in grants]

    def entitled(action: str, resource: str | None) -> bool:
        for allows, grant in matchers:
            if not allows(action):
                continue
            if resource is None:
                return True
            resource_type, _, resource_id = resource.partition(":")
            if any(p.matches(resource_type, resource_id) for p in grant.resources):
                return True
        return False

    return entitled


def _anything(action: str, resource: str | None) -> bool:
    return True


def _overlaps(grant: ResourcePattern, rule: str) -> bool:
    if grant.type is None:
        return True
    rule_type, _, rule_glob = rule.partition(":")
    if rule_type not in (grant.type, "*") and rule != "*":
        return False
    return (
        glob_regex(grant.id_glob).fullmatch(rule_glob) is not None
        or glob_regex(rule_glob or "*").fullmatch(grant.id_glob) is not None
    )


def blast_radius(grants: Sequence[Grant], rules: Sequence[ResourceRule], top: int) -> float:
    """How much ``grants`` can reach, in 0..1 (see the module docstring)."""
    if not grants:
        return 0.0
    levels = [
        r.level for g in grants for p in g.resources for r in rules if _overlaps(p, r.pattern)
    ]
    reach = min(1.0, max(levels) / top) if levels and top > 0 else NEUTRAL_SENSITIVITY
    breadth = 0.0
    for grant in grants:
        breadth += 0.05 * len(grant.actions)
        for pattern in grant.resources:
            if pattern.type is None:
                breadth += 1.0
            elif pattern.id_glob == "*":
                breadth += 0.5
            elif "*" in pattern.id_glob:
                breadth += 0.25
            else:
                breadth += 0.05
    return round(0.7 * reach + 0.3 * min(1.0, breadth), 4)


#: Resources classified and unknown identities remembered per revision (then forgotten).
MAX_REMEMBERED = 50_000


@dataclass
class Directory:
    """Identity views for one estate revision, and the estate's data-class levels."""

    revision: int | None
    watched: dict[str, Watched] = field(default_factory=dict)
    data_classes: Mapping[str, int] = field(default_factory=dict)
    classifier: ResourceClassifier = field(default_factory=lambda: ResourceClassifier(()))
    classes: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    # Remembered per revision: resource -> (data class, level); unknown identities' views.
    _classified: dict[str, tuple[str | None, int]] = field(default_factory=dict, repr=False)
    _unknown: dict[str, Watched] = field(default_factory=dict, repr=False)

    def get(self, identity_id: str) -> Watched | None:
        return self.watched.get(identity_id)

    def classify(self, resource: str | None) -> tuple[str | None, int]:
        if not resource or ":" not in resource:
            return None, 0
        known = self._classified.get(resource)
        if known is None:
            resource_type, _, resource_id = resource.partition(":")
            known = self.classifier.classify(EntityRef(resource_type, resource_id))
            if len(self._classified) >= MAX_REMEMBERED:
                self._classified.clear()
            self._classified[resource] = known
        return known

    def watch(self, identity_id: str) -> Watched:
        """The identity's view, or one of an identity the inventory does not hold."""
        watched = self.watched.get(identity_id)
        if watched is None:
            watched = self._unknown.get(identity_id)
            if watched is None:
                if len(self._unknown) >= MAX_REMEMBERED:
                    self._unknown.clear()
                watched = self._unknown[identity_id] = unknown_identity(identity_id)
        return watched


def load_directory(
    connection: Connection, revision: int | None, estate: CompiledEstate
) -> Directory:
    """Read identities, entitlements, data classes and classes into a :class:`Directory`."""
    levels = {r.name: int(r.level) for r in connection.execute(select(data_classes))}
    top = max(levels.values(), default=0) or 4
    classes = {r.name: dict(r.settings or {}) for r in connection.execute(select(workload_classes))}
    grants: dict[str, list[Grant]] = {}
    for grant_row in connection.execute(
        select(entitlements.c.identity_id, entitlements.c.actions, entitlements.c.resources)
    ):
        patterns = [parse_pattern(t) for t in grant_row.resources or ()]
        grants.setdefault(grant_row.identity_id, []).append(
            Grant(
                frozenset(grant_row.actions or ()),
                tuple(p for p in patterns if isinstance(p, ResourcePattern)),
            )
        )
    rules = list(estate.resource_rules)
    watched: dict[str, Watched] = {}
    for row in connection.execute(
        select(identities.c.id, identities.c.kind, identities.c.workload_class, identities.c.origin)
    ):
        own = grants.get(row.id, [])
        # An identity tether only discovered has no approved scope to compare with.
        entitled = _entitled_by(own) if own or row.origin == ESTATE_ORIGIN else _anything
        view = IdentityView(
            identity_id=row.id,
            kind=row.kind,
            workload_class=row.workload_class,
            entitled=entitled,
            blast_radius=blast_radius(own, rules, top),
            static_credential=row.kind in STATIC_KINDS,
            managed=row.origin != DISCOVERED_ORIGIN,
        )
        settings = classes.get(row.workload_class or "", {})
        watched[row.id] = Watched(view, thresholds_for(row.workload_class, row.kind, settings))
    return Directory(revision, watched, levels, estate.classifier(), classes)


def unknown_identity(identity_id: str) -> Watched:
    """A view of an identity the inventory does not hold (nothing approved, nothing known)."""
    view = IdentityView(identity_id, "unknown", None, _anything, NEUTRAL_SENSITIVITY, managed=False)
    return Watched(view, thresholds_for(None, None))
