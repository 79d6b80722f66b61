"""Compiling an estate into what a server decides with: Cedar policies, entities, a schema,
resource rules and workload classes (a :class:`~tether.estate.compiled.CompiledEstate`).

Each entitlement becomes one ``permit`` with the stable id ``entitlement:<identity>:<n>``
and the file and line of its YAML entry, so a reason or a validation error points at the
grant a person wrote. Every policy is validated against the Cedar schema.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import cedarpy

from tether.errors import EstateProblem
from tether.estate._load import SCHEMA_FILE, raise_if_problems
from tether.estate._model import Entitlement, Estate, Identity, Where
from tether.estate._patterns import cedar_condition, cedar_string, fnmatch_literal
from tether.estate._schema import HINT, EntitySource, generate_schema
from tether.estate.compiled import CompiledEstate, ResourceRule
from tether.policy import (
    EntityRecord,
    PolicyInvalid,
    PolicySpec,
    parse_policy_file,
    validate_against_schema,
)


def compile_estate(estate: Estate) -> CompiledEstate:
    """Compile a loaded estate; every policy is validated against the Cedar schema.

    Raises:
        EstateInvalid: a policy that fails schema validation, a schema that cannot be
            generated, or entities Cedar rejects; each problem with its file and line.
    """
    problems: list[EstateProblem] = []
    sources = _entities(estate, problems)
    file_specs = [spec for f in estate.policy_files for spec in f.specs]
    grant_specs = [
        entitlement_spec(grant, identity.kind)
        for identity in estate.identities.values()
        for grant in identity.entitlements
    ]
    specs = file_specs + grant_specs
    if estate.schema_text is not None:
        schema_text = estate.schema_text
        hint = ""
    else:
        schema_text, schema_problems = generate_schema(
            sources,
            identity_kinds={i.kind for i in estate.identities.values()},
            resource_types=_resource_types(estate),
            actions={a for e in estate.entitlements for a in e.actions},
            specs=file_specs,  # entitlements name only the kinds, types and actions given above
        )
        problems += schema_problems
        hint = HINT
    if specs and not problems:
        for found in validate_against_schema(specs, schema_text, schema_file=SCHEMA_FILE):
            message = found.message + (hint if found.file != SCHEMA_FILE else "")
            problems.append(EstateProblem(found.file, found.line, message))
    raise_if_problems(estate.directory, problems)
    compiled = CompiledEstate(
        policies=tuple(specs),
        entities=tuple(s.record for s in sources),
        schema_text=schema_text,
        resource_rules=tuple(_resource_rules(estate)),
        classes={name: dict(c.settings) for name, c in sorted(estate.classes.items())},
        tools=dict(estate.tools),
        organisation=estate.organisation,
    )
    try:
        compiled.engine()
    except PolicyInvalid as exc:
        raise_if_problems(estate.directory, [EstateProblem(".", None, exc.message)])
    return compiled


def entitlement_text(grant: Entitlement, kind: str) -> str:
    """The Cedar ``permit`` an entitlement compiles to."""
    actions = ", ".join(f"Action::{cedar_string(a)}" for a in grant.actions)
    conditions = [cedar_condition(p) for p in grant.resources]
    head = (
        f"@id({cedar_string(grant.id)})\n"
        f"permit (principal == {kind}::{cedar_string(grant.identity)}, "
        f"action in [{actions}], resource)"
    )
    if any(c is None for c in conditions):  # a `*` pattern: any resource
        return head + ";"
    if len(conditions) == 1:
        return f"{head}\nwhen {{ {conditions[0]} }};"
    return f"{head}\nwhen {{ " + " || ".join(f"({c})" for c in conditions) + " };"


def entitlement_spec(grant: Entitlement, kind: str) -> PolicySpec:
    """The entitlement's permit, keyed by its stable id and located at its YAML entry."""
    specs, problems = parse_policy_file(grant.where.file, entitlement_text(grant, kind))
    if problems or len(specs) != 1:  # generated text always parses; a failure is a bug here
        raise AssertionError(f"entitlement `{grant.id}` compiled to bad Cedar: {problems}")
    return dataclasses.replace(specs[0], id=grant.id, line=grant.where.line)


def policy_texts(estate: Estate) -> dict[str, str]:
    """The Cedar text of every policy, by policy id (stored for people to read)."""
    texts: dict[str, str] = {}
    for policy_file in estate.policy_files:
        for spec in policy_file.specs:
            texts[spec.id] = policy_file.texts.get(spec.id) or _render(spec)
    for identity in estate.identities.values():
        for grant in identity.entitlements:
            texts[grant.id] = entitlement_text(grant, identity.kind)
    return texts


def _render(spec: PolicySpec) -> str:
    est = {"staticPolicies": {spec.id: spec.est}, "templates": {}, "templateLinks": []}
    return str(cedarpy.PolicySet.from_json_str(json.dumps(est))).strip()


def identity_attributes(identity: Identity) -> dict[str, Any]:
    attrs: dict[str, Any] = {"kind": identity.kind}
    if identity.workload_class is not None:
        attrs["class"] = identity.workload_class
    if identity.owner is not None:
        attrs["owner"] = identity.owner
    attrs.update(identity.attributes)
    return attrs


def _entities(estate: Estate, problems: list[EstateProblem]) -> list[EntitySource]:
    sources: list[EntitySource] = []
    seen: dict[tuple[str, str], Where] = {}
    for identity in estate.identities.values():
        record = EntityRecord(
            identity.kind, identity.id, identity_attributes(identity), identity.parents
        )
        seen[(identity.kind, identity.id)] = identity.where
        sources.append(EntitySource(record, identity.where, identity.attribute_lines))
    for resource in estate.resources:
        key = (resource.type, resource.id)
        if key in seen:
            problems.append(
                EstateProblem(
                    resource.where.file,
                    resource.where.line,
                    f"resource `{resource.type}:{resource.id}` is also the identity declared "
                    f"at {seen[key]}",
                )
            )
            continue
        record = EntityRecord(
            resource.type, resource.id, dict(resource.attributes), resource.parents
        )
        sources.append(EntitySource(record, resource.where, resource.attribute_lines))
    return sources


def _resource_types(estate: Estate) -> set[str]:
    types = {r.type for r in estate.resources}
    types.update(p.type for e in estate.entitlements for p in e.resources if p.type)
    types.update(r.pattern.type for r in estate.rules if r.pattern.type)
    return types


def _resource_rules(estate: Estate) -> list[ResourceRule]:
    rules = [
        ResourceRule(r.pattern.text, r.data_class, estate.data_classes[r.data_class])
        for r in estate.rules
    ]
    rules += [
        ResourceRule(
            fnmatch_literal(f"{r.type}:{r.id}"), r.data_class, estate.data_classes[r.data_class]
        )
        for r in estate.resources
        if r.data_class is not None
    ]
    return rules
