"""Right-sizing: a Cedar policy set generated from observed use (like IAM Access Analyzer
policy generation), valid against the estate's Cedar schema and ready for ``policies/``.

For each identity, only the *used* parts of its entitlement (see
:mod:`tether.review.access`) are granted, with one ``permit`` per group of actions that
reached the same resources::

    @id("rightsized:etl-bot:1")
    permit (principal == service_account::"etl-bot",
            action in [Action::"s3:GetObject"], resource)
    when { (resource == arn::"aws:s3:::reports/a.csv")
        || (resource == arn::"aws:s3:::reports/b.csv") };

**Collapse rule.** Observed resources are listed exactly, except that the resources one
action reached under one wildcard pattern of the entitlement collapse into that pattern
when they are *dense* in it: at least ``collapse_at`` distinct resources (default 10), or,
where the estate declares the resources of that type, at least ``dense_share`` (default
80 %) of the declared resources the pattern matches (and at least two). A collapsed grant
never exceeds the entitlement's own pattern, and a part nobody used is never granted.
An allowed use that named no resource keeps the part's own pattern for that action.

Unused entitlement parts and activity outside the entitlement are not granted: the first
is what right-sizing removes, the second needs a person's decision (the review lists it).
Every generated policy is validated against the estate's schema; one that does not
validate (a resource type the schema does not know) falls back to the entitlement's own
pattern for those actions, and is noted.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from tether.estate import ResourcePattern
from tether.estate._patterns import cedar_condition, cedar_string
from tether.policy import EntityRecord, EntityRef, PolicySpec, parse_policy_file
from tether.policy import validate_against_schema as _validate
from tether.review.access import AccessReview, EntitlementPart, IdentityReview

_IDENTIFIER = re.compile(r"^[_a-zA-Z][_a-zA-Z0-9]*$")
RIGHTSIZED_FILE = "policies/rightsized.cedar"


@dataclass(frozen=True)
class CollapseRule:
    """When observed resources collapse into the entitlement pattern they fall under."""

    collapse_at: int = 10
    dense_share: float = 0.8


@dataclass(frozen=True)
class GeneratedPolicy:
    """One generated ``permit`` and what it grants."""

    policy_id: str
    identity_id: str
    actions: tuple[str, ...]
    condition: str | None  # Cedar condition on `resource`; None: any resource
    grants: tuple[str, ...]  # readable: exact resources or `pattern` (collapsed)
    text: str


@dataclass(frozen=True)
class RightsizedPolicySet:
    """The generated policies of every identity reviewed, with notes on fallbacks."""

    policies: tuple[GeneratedPolicy, ...]
    notes: tuple[str, ...]
    header: str

    @property
    def text(self) -> str:
        body = "\n\n".join(p.text for p in self.policies)
        return f"{self.header}\n{body}\n" if body else f"{self.header}\n"

    def for_identity(self, identity_id: str) -> tuple[GeneratedPolicy, ...]:
        return tuple(p for p in self.policies if p.identity_id == identity_id)


def rightsize(
    review: AccessReview,
    *,
    schema_text: str | None,
    entities: Sequence[EntityRecord] = (),
    rule: CollapseRule | None = None,
) -> RightsizedPolicySet:
    """Generate the right-sized policy set of ``review``; validated when a schema is given."""
    rule = rule or CollapseRule()
    declared: dict[str, list[str]] = defaultdict(list)
    for entity in entities:
        declared[entity.type].append(entity.id)
    policies: list[GeneratedPolicy] = []
    notes: list[str] = []
    for identity in review.identities:
        policies += _identity_policies(identity, schema_text, declared, rule, notes)
    header = (
        "// right-sized from observed use by `tether review`;\n"
        "// put this file under the estate's policies/ and remove the identities' entitlements"
    )
    return RightsizedPolicySet(tuple(policies), tuple(notes), header)


def _identity_policies(
    identity: IdentityReview,
    schema_text: str | None,
    declared: dict[str, list[str]],
    rule: CollapseRule,
    notes: list[str],
) -> list[GeneratedPolicy]:
    # condition text -> (actions, readable grants), in first-seen order
    groups: dict[str | None, tuple[list[str], tuple[str, ...]]] = {}
    for part in identity.used:
        for condition, readable in _conditions(part, declared, rule):
            actions, _ = groups.setdefault(condition, ([], readable))
            if part.action not in actions:
                actions.append(part.action)
    # Actions that reached the same resources share one permit.
    by_actions: dict[tuple[str, ...], list[tuple[str | None, tuple[str, ...]]]] = defaultdict(list)
    for condition, (actions, readable) in groups.items():
        by_actions[tuple(sorted(actions))].append((condition, readable))
    made: list[GeneratedPolicy] = []
    for granted, conditions in by_actions.items():
        policy = _policy(identity, len(made) + 1, granted, conditions)
        if schema_text is not None and _invalid(policy, schema_text):
            fallback = _fallback(identity, len(made) + 1, granted)
            notes.append(
                f"`{identity.identity_id}`: {', '.join(granted)} kept at the entitlement's "
                "pattern: the estate's schema does not accept the exact resources"
            )
            if _invalid(fallback, schema_text):
                notes.append(f"`{identity.identity_id}`: {', '.join(granted)} not generated")
                continue
            policy = fallback
        made.append(policy)
    return made


def _conditions(
    part: EntitlementPart, declared: dict[str, list[str]], rule: CollapseRule
) -> list[tuple[str | None, tuple[str, ...]]]:
    pattern = part.pattern
    whole = (cedar_condition(pattern), (pattern.text,))
    if part.without_resource or pattern.is_exact or not part.resources:
        return [whole]
    if _dense(part, pattern, declared, rule):
        return [whole]
    exact = [r for r in part.resources if _IDENTIFIER.match(r.type)]
    if len(exact) < len(part.resources):  # a type Cedar cannot name: keep the pattern
        return [whole]
    return [(_one_of(exact), tuple(str(r) for r in exact))]


def _dense(
    part: EntitlementPart,
    pattern: ResourcePattern,
    declared: dict[str, list[str]],
    rule: CollapseRule,
) -> bool:
    if len(part.resources) >= rule.collapse_at:
        return True
    if pattern.type is None:
        return False
    population = [i for i in declared.get(pattern.type, ()) if pattern.matches(pattern.type, i)]
    if len(population) < 2:
        return False
    reached = sum(1 for r in part.resources if r.type == pattern.type and r.id in population)
    return reached >= rule.dense_share * len(population)


def _one_of(resources: Sequence[EntityRef]) -> str:
    terms = [f"resource == {r.type}::{cedar_string(r.id)}" for r in resources]
    return terms[0] if len(terms) == 1 else " || ".join(f"({t})" for t in terms)


def _policy(
    identity: IdentityReview,
    number: int,
    actions: Sequence[str],
    conditions: Sequence[tuple[str | None, tuple[str, ...]]],
) -> GeneratedPolicy:
    policy_id = f"rightsized:{identity.identity_id}:{number}"
    readable = tuple(g for _, grants in conditions for g in grants)
    if any(c is None for c, _ in conditions):
        condition: str | None = None
    elif len(conditions) == 1:
        condition = conditions[0][0]
    else:
        condition = " || ".join(f"({c})" for c, _ in conditions)
    action_list = ", ".join(f"Action::{cedar_string(a)}" for a in actions)
    text = (
        f"@id({cedar_string(policy_id)})\n"
        f"permit (principal == {identity.kind}::{cedar_string(identity.identity_id)}, "
        f"action in [{action_list}], resource)"
    )
    text += ";" if condition is None else f"\nwhen {{ {condition} }};"
    return GeneratedPolicy(
        policy_id, identity.identity_id, tuple(actions), condition, readable, text
    )


def _fallback(identity: IdentityReview, number: int, actions: Sequence[str]) -> GeneratedPolicy:
    patterns: list[ResourcePattern] = []
    for part in identity.used:
        if part.action in actions and part.pattern not in patterns:
            patterns.append(part.pattern)
    conditions = [(cedar_condition(p), (p.text,)) for p in patterns]
    return _policy(identity, number, actions, conditions)


def _invalid(policy: GeneratedPolicy, schema_text: str) -> bool:
    specs, problems = parse_policy_file(RIGHTSIZED_FILE, policy.text)
    if problems:
        return True
    return bool(_validate(specs, schema_text, schema_file="schema.cedarschema"))


def validate_policy_set(text: str, schema_text: str) -> list[str]:
    """Problems of a generated policy set against a schema (empty when valid)."""
    specs, problems = parse_policy_file(RIGHTSIZED_FILE, text)
    found = [p.message for p in problems]
    found += [p.message for p in _validate(specs, schema_text, schema_file="schema.cedarschema")]
    return found


def parsed(policy_set: RightsizedPolicySet) -> list[PolicySpec]:
    specs, _ = parse_policy_file(RIGHTSIZED_FILE, policy_set.text)
    return specs
