"""A Cedar schema (human-readable schema syntax) generated from the estate when the folder
has no ``schema.cedarschema``.

Entity types come from identity kinds, declared resources and their parents,
entitlement patterns, and the entity literals and ``is`` tests of the policies (walked
in their EST JSON). Attribute types are inferred from the values the estate gives: an
attribute is optional when not every entity of its type has it. Actions apply to every
principal type and every resource type, with the context tether builds at decision time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tether.errors import EstateProblem
from tether.estate._model import Where
from tether.estate._patterns import cedar_string
from tether.policy import EntityRecord, PolicySpec, scope_action_names

# `task` is there when the PEP passed a task token (tether.tokens.decisions).
TASK_CONTEXT_TYPE = (
    '{ "id": String, "purpose": String, "intent": { "actions": Set<String>, '
    '"resources": Set<String>, "data_classes": Set<String> }, "within_intent": Bool, '
    '"delegation_depth": Long, "actor"?: String }'
)
# `behaviour` is there once drift found something about the subject (tether.drift.responses).
BEHAVIOUR_CONTEXT_TYPE = (
    '{ "drift_score": Long, "open_findings": Long, "restricted": Bool, '
    '"constrained": Bool, "response": String }'
)
CONTEXT_TYPE = (
    '{ "action": {}, "tether": { "subject_id": String, "resource_id": String, '
    f'"sensitivity": Long, "data_class"?: String, "task"?: {TASK_CONTEXT_TYPE}, '
    f'"behaviour"?: {BEHAVIOUR_CONTEXT_TYPE} }} }}'
)
HINT = (
    "; the schema was generated from the estate, declare the types in "
    "`schema.cedarschema` if it is not enough"
)


# --- attribute types -------------------------------------------------------------------


@dataclass(frozen=True)
class CedarType:
    """A Cedar type: ``Long``, ``String``, ``Bool``, ``Set`` (``element``) or ``Record``."""

    name: str
    element: CedarType | None = None  # for Set; None when only empty sets were seen
    fields: tuple[tuple[str, CedarType, bool], ...] = ()  # for Record: (name, type, required)

    def render(self) -> str:
        if self.name == "Set":
            return f"Set<{self.element.render() if self.element else 'String'}>"
        if self.name == "Record":
            parts = [
                f"{cedar_string(n)}{'' if required else '?'}: {t.render()}"
                for n, t, required in self.fields
            ]
            return "{ " + ", ".join(parts) + " }" if parts else "{}"
        return self.name


class MixedTypes(ValueError):
    """Two values that cannot share one Cedar type."""


def infer(value: Any) -> CedarType:
    if isinstance(value, bool):
        return CedarType("Bool")
    if isinstance(value, int):
        return CedarType("Long")
    if isinstance(value, str):
        return CedarType("String")
    if isinstance(value, list | tuple):
        element: CedarType | None = None
        for item in value:
            element = unify(element, infer(item))
        return CedarType("Set", element)
    if isinstance(value, Mapping):
        return record({k: infer(v) for k, v in value.items()})
    raise MixedTypes(f"`{value}` has no Cedar type")


def record(types: Mapping[str, CedarType], optional: Iterable[str] = ()) -> CedarType:
    skip = set(optional)
    return CedarType("Record", fields=tuple((n, types[n], n not in skip) for n in sorted(types)))


def unify(a: CedarType | None, b: CedarType) -> CedarType:
    """The one type both values have; raises :class:`MixedTypes` when there is none."""
    if a is None:
        return b
    if a.name != b.name:
        raise MixedTypes(f"`{a.render()}` and `{b.render()}`")
    if a.name == "Set":
        if a.element is None or b.element is None:
            return a if b.element is None else b
        return CedarType("Set", unify(a.element, b.element))
    if a.name == "Record":
        left = {n: (t, r) for n, t, r in a.fields}
        right = {n: (t, r) for n, t, r in b.fields}
        merged: dict[str, CedarType] = {}
        optional: list[str] = []
        for name in left.keys() | right.keys():
            lt, rt = left.get(name), right.get(name)
            if lt and rt:
                merged[name] = unify(lt[0], rt[0])
                if not (lt[1] and rt[1]):
                    optional.append(name)
            else:
                merged[name] = (lt or rt)[0]  # type: ignore[index]
                optional.append(name)
        return record(merged, optional)
    return a


# --- types and actions the policies mention ----------------------------------------------


@dataclass
class PolicyTypes:
    """Entity types and action names found in policies."""

    principals: set[str] = field(default_factory=set)
    resources: set[str] = field(default_factory=set)
    others: set[str] = field(default_factory=set)
    actions: set[str] = field(default_factory=set)
    first_seen: dict[str, Where] = field(default_factory=dict)


def policy_types(specs: Sequence[PolicySpec]) -> PolicyTypes:
    found = PolicyTypes(actions=scope_action_names(specs))
    for spec in specs:
        at = Where(spec.file, spec.line)
        for var, target in (("principal", found.principals), ("resource", found.resources)):
            scope = spec.est.get(var, {})
            if scope.get("op") in ("==", "is"):
                named = scope.get("entity_type") or scope.get("entity", {}).get("type")
                if isinstance(named, str):
                    target.add(named)
                    found.first_seen.setdefault(named, at)
        for name in _walk_types(spec.est, found.actions):
            found.others.add(name)
            found.first_seen.setdefault(name, at)
    return found


def _walk_types(node: Any, actions: set[str]) -> Iterable[str]:
    if isinstance(node, list):
        for item in node:
            yield from _walk_types(item, actions)
        return
    if not isinstance(node, dict):
        return
    entity_type = node.get("entity_type")
    if isinstance(entity_type, str):
        yield entity_type
    ref = node.get("__entity")
    if not isinstance(ref, dict) and isinstance(node.get("type"), str) and "id" in node:
        ref = node  # scope form: {"type": ..., "id": ...}
    if isinstance(ref, dict) and isinstance(ref.get("type"), str):
        if ref["type"] == "Action":
            actions.add(str(ref.get("id")))
        else:
            yield ref["type"]
    for key, value in node.items():
        if key != "annotations":
            yield from _walk_types(value, actions)


# --- the schema --------------------------------------------------------------------------


@dataclass(frozen=True)
class EntitySource:
    """An entity and where the estate declares it (and each of its attributes)."""

    record: EntityRecord
    where: Where
    attribute_lines: Mapping[str, Where]


def generate_schema(
    entities: Sequence[EntitySource],
    identity_kinds: Iterable[str],
    resource_types: Iterable[str],
    actions: Iterable[str],
    specs: Sequence[PolicySpec],
) -> tuple[str, list[EstateProblem]]:
    """The schema text and the problems that kept it from describing the estate."""
    problems: list[EstateProblem] = []
    found = policy_types(specs)
    kinds = set(identity_kinds)
    all_types = kinds | set(resource_types) | found.principals | found.resources | found.others
    for entity in entities:
        all_types.add(entity.record.type)
        all_types.update(p.type for p in entity.record.parents)
    for name in sorted(t for t in all_types if "::" in t):
        at = found.first_seen[name]  # estate files only name plain types
        problems.append(
            EstateProblem(
                at.file,
                at.line,
                f"namespaced type `{name}` needs a written schema: declare it in "
                "`schema.cedarschema`",
            )
        )
    all_types = {t for t in all_types if "::" not in t}
    principals = sorted((kinds | found.principals) & all_types)
    # Resources are what is not an identity, plus what policies name as a resource; when
    # that is nothing (entitlements on `*` only), any entity may be the resource.
    resources = sorted(
        ((all_types - kinds) | found.resources | set(resource_types)) & all_types
    ) or sorted(all_types)
    lines = ["// generated by tether from the estate files; add schema.cedarschema to replace it"]
    attributes = _attribute_types(entities, problems)
    for name in sorted(all_types):
        parents = sorted(
            {p.type for e in entities if e.record.type == name for p in e.record.parents}
            & all_types
        )
        member_of = f" in [{', '.join(parents)}]" if parents else ""
        shape = attributes.get(name)
        body = f" = {shape.render()}" if shape and shape.fields else ""
        lines.append(f"entity {name}{member_of}{body};")
    for action in sorted(set(actions) | found.actions):
        if principals and resources:
            lines.append(
                f"action {cedar_string(action)} appliesTo {{ principal: [{', '.join(principals)}], "
                f"resource: [{', '.join(resources)}], context: {CONTEXT_TYPE} }};"
            )
        else:
            lines.append(f"action {cedar_string(action)};")
    return "\n".join(lines) + "\n", problems


def _attribute_types(
    entities: Sequence[EntitySource], problems: list[EstateProblem]
) -> dict[str, CedarType]:
    by_type: dict[str, CedarType] = {}
    first: dict[tuple[str, str], tuple[CedarType, Where]] = {}
    for entity in entities:
        entity_type = entity.record.type
        types: dict[str, CedarType] = {}
        for name, value in entity.record.attrs.items():
            at = entity.attribute_lines.get(name, entity.where)
            try:
                types[name] = infer(value)
            except MixedTypes as exc:
                problems.append(
                    EstateProblem(at.file, at.line, f"attribute `{name}` mixes types: {exc}{HINT}")
                )
                continue
            seen = first.setdefault((entity_type, name), (types[name], at))
            try:
                unify(seen[0], types[name])
            except MixedTypes:
                problems.append(
                    EstateProblem(
                        at.file,
                        at.line,
                        f"attribute `{name}` of `{entity_type}` entities is "
                        f"`{types[name].render()}` here but `{seen[0].render()}` at {seen[1]}"
                        f"{HINT}",
                    )
                )
                del types[name]
        this = record(types)
        previous = by_type.get(entity_type)
        with contextlib.suppress(MixedTypes):  # already reported attribute by attribute
            by_type[entity_type] = this if previous is None else unify(previous, this)
    return by_type
