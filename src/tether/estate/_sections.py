"""Readers of the estate sections ``classes``, ``data_classes``, ``resources`` and
``exceptions`` (``identities`` and ``trust`` have their own modules).

Each reader takes one file's section node and adds what it declares to the shared
:class:`LoadContext`, which reports an item declared twice naming both places.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tether.estate._fields import Fields, Problems, expect_list, expect_map, where
from tether.estate._model import (
    CLASS_MODES,
    DeclaredResource,
    EstateException,
    Identity,
    SensitivityRule,
    TrustAnchor,
    Where,
    WorkloadClass,
)
from tether.estate._patterns import (
    ResourcePattern,
    fnmatch_literal,
    parse_pattern,
    text_problem,
    type_name_problem,
)
from tether.estate._yaml import Node
from tether.estate.compiled import Organisation, ToolMapping
from tether.policy import EntityRef

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
# Sizes of the store's columns (tether.store.tables).
MAX_NAME = 80
MAX_ID = 200
MAX_PATTERN = 400
_DETECTOR = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass
class LoadContext:
    """What the files declared so far, shared by all section readers."""

    directory: Path
    now: datetime
    problems: Problems = field(default_factory=Problems)
    claims: dict[tuple[str, str], Where] = field(default_factory=dict)
    classes: dict[str, WorkloadClass] = field(default_factory=dict)
    trust: dict[str, TrustAnchor] = field(default_factory=dict)
    data_classes: dict[str, int] = field(default_factory=dict)
    data_class_lines: dict[str, Where] = field(default_factory=dict)
    rules: list[SensitivityRule] = field(default_factory=list)
    resources: list[DeclaredResource] = field(default_factory=list)
    identities: dict[str, Identity] = field(default_factory=dict)
    exceptions: list[EstateException] = field(default_factory=list)
    tools: dict[str, ToolMapping] = field(default_factory=dict)
    organisation: Organisation = field(default_factory=Organisation)

    names: dict[str, set[str]] = field(default_factory=dict)

    def claim(self, kind: str, name: str, at: Where) -> bool:
        """Register ``name``; a second declaration is a problem naming the first.

        Names are claimed even when the item has other problems, so that references to it
        do not add "not declared" problems on top.
        """
        first = self.claims.get((kind, name))
        if first is not None:
            self.problems.add(at, f"{kind} `{name}` is declared twice (also at {first})")
            return False
        self.claims[(kind, name)] = at
        self.names.setdefault(kind, set()).add(name)
        return True

    def declared(self, kind: str) -> set[str]:
        return self.names.get(kind, set())

    def reference(self, fields: Fields, key: str, kind: str, max_length: int) -> str | None:
        """A name in ``key`` that must refer to a declared ``kind`` (class, data class...)."""
        name = fields.string(key, max_length=max_length)
        declared = self.declared(kind)
        if name is not None and name not in declared:
            listed = ", ".join(f"`{n}`" for n in sorted(declared)) or "none"
            fields.fail(key, f"{kind} `{name}` is not declared (declared: {listed})")
            return None
        return name


def parse_entity_ref(text: str) -> EntityRef | str:
    """``type:id`` as an entity reference; a string return value is the problem."""
    entity_type, colon, entity_id = text.partition(":")
    if not colon or not entity_id:
        return f"`{text}` must look like `type:id`"
    problem = type_name_problem(entity_type) or text_problem(entity_id, "id")
    return problem if problem else EntityRef(entity_type, entity_id)


def read_classes(node: Node, ctx: LoadContext) -> None:
    if not expect_map(node, ctx.problems, "`classes`"):
        return
    for name, body in node.items():
        at = Where(node.file, node.key_line(name))
        if not _NAME.match(name):
            ctx.problems.add(
                at, f"class name `{name}` may only hold letters, digits, `_.-` (at most 80)"
            )
            continue
        if not ctx.claim("class", name, at):
            continue
        if not expect_map(body, ctx.problems, f"class `{name}`"):
            if body.value is None:
                ctx.problems.add(at, f"class `{name}` needs `mode`")
            continue
        fields = Fields(
            body,
            ctx.problems,
            what=f"class `{name}`",
            required=["mode"],
            optional=[
                "max_task_ttl",
                "token_ttl",
                "rotate_every",
                "max_delegation_depth",
                "thresholds",
                "description",
            ],
        )
        mode = fields.string("mode")
        if mode is not None and mode not in CLASS_MODES:
            fields.fail("mode", f"`mode` of class `{name}` must be `monitor` or `enforce`")
        settings: dict[str, Any] = {"mode": mode}
        for key in ("max_task_ttl", "token_ttl", "rotate_every"):
            seconds = fields.duration(key)
            if seconds is not None:
                settings[f"{key}_seconds"] = seconds
        depth = fields.integer("max_delegation_depth")
        if depth is not None:
            settings["max_delegation_depth"] = depth
        thresholds = _thresholds(fields)
        if thresholds:
            settings["thresholds"] = thresholds
        description = fields.string("description")
        if description is not None:
            settings["description"] = description
        if fields.ok and mode is not None:
            ctx.classes[name] = WorkloadClass(name, mode, settings, at)


def _thresholds(fields: Fields) -> dict[str, float | int]:
    node = fields.get("thresholds")
    if not expect_map(node, fields.problems, f"`thresholds` of {fields.what}"):
        if node is not None and node.value is not None:
            fields.ok = False
        return {}
    assert node is not None
    result: dict[str, float | int] = {}
    for key, value in node.items():
        raw = value.value
        if key not in _THRESHOLD_LIMITS:
            known = ", ".join(f"`{k}`" for k in _THRESHOLD_LIMITS)
            fields.problems.add(value, f"unknown threshold `{key}` (known: {known})")
            fields.ok = False
        elif (
            isinstance(raw, bool)
            or not isinstance(raw, int | float)
            or not 0 <= raw <= _THRESHOLD_LIMITS[key]
            or (key == "weight" and raw == 0)
        ):
            limit = _THRESHOLD_LIMITS[key]
            fields.problems.add(value, f"threshold `{key}` must be a number from 0 to {limit}")
            fields.ok = False
        else:
            result[key] = raw
    cuts = [result[k] for k in ("low", "medium", "high", "critical") if k in result]
    if cuts != sorted(cuts):
        fields.problems.add(node, "thresholds must rise: `low` <= `medium` <= `high` <= `critical`")
        fields.ok = False
    return result


# Drift score cut-offs (0..100) and the class weight (see tether.drift.scoring).
_THRESHOLD_LIMITS = {"low": 100, "medium": 100, "high": 100, "critical": 100, "weight": 2}


def read_data_classes(node: Node, ctx: LoadContext) -> None:
    if not expect_map(node, ctx.problems, "`data_classes`"):
        return
    for name, value in node.items():
        at = Where(node.file, node.key_line(name))
        raw = value.value
        if not _NAME.match(name):
            ctx.problems.add(
                at, f"data class name `{name}` may only hold letters, digits, `_.-` (at most 80)"
            )
        elif not ctx.claim("data class", name, at):
            continue
        elif isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw < 2**31:
            ctx.problems.add(value, f"level of data class `{name}` must be an integer >= 0")
        else:
            ctx.data_classes[name] = raw
            ctx.data_class_lines[name] = at


def read_resources(node: Node, ctx: LoadContext) -> None:
    for entry in expect_list(node, ctx.problems, "`resources`"):
        if not expect_map(entry, ctx.problems, "a `resources` entry"):
            continue
        if "pattern" in entry.value:
            _read_rule(entry, ctx)
        elif "type" in entry.value or "id" in entry.value:
            _read_declared_resource(entry, ctx)
        else:
            ctx.problems.add(
                entry, "a `resources` entry needs `pattern` (a rule) or `type` and `id` (an entity)"
            )


def _read_rule(entry: Node, ctx: LoadContext) -> None:
    fields = Fields(entry, ctx.problems, what="a resource rule", required=["pattern", "data_class"])
    pattern = _pattern(fields, "pattern")
    data_class = ctx.reference(fields, "data_class", "data class", MAX_NAME)
    if not fields.ok or pattern is None or data_class is None:
        return
    if ctx.claim("resource", pattern.text, where(entry)):
        ctx.rules.append(SensitivityRule(pattern, data_class, where(entry)))


def _read_declared_resource(entry: Node, ctx: LoadContext) -> None:
    fields = Fields(
        entry,
        ctx.problems,
        what="a declared resource",
        required=["type", "id"],
        optional=["attributes", "parents", "data_class"],
    )
    entity_type = fields.string("type")
    if entity_type is not None and (problem := type_name_problem(entity_type)):
        fields.fail("type", problem)
    entity_id = fields.string("id")
    attributes, lines = fields.attributes("attributes")
    parents = read_parents(fields)
    data_class = (
        ctx.reference(fields, "data_class", "data class", MAX_NAME)
        if fields.has("data_class")
        else None
    )
    if not fields.ok or entity_type is None or entity_id is None:
        return
    at = where(entry)
    key = fnmatch_literal(f"{entity_type}:{entity_id}")
    if len(key) > MAX_PATTERN:
        ctx.problems.add(at, f"resource `{entity_type}:{entity_id}` is longer than {MAX_PATTERN}")
        return
    if ctx.claim("resource", key, at):
        ctx.resources.append(
            DeclaredResource(entity_type, entity_id, attributes, parents, data_class, at, lines)
        )


def read_parents(fields: Fields) -> tuple[EntityRef, ...]:
    parents: list[EntityRef] = []
    for text, item in fields.strings("parents", non_empty=False):
        ref = parse_entity_ref(text)
        if isinstance(ref, str):
            fields.problems.add(item, f"parent {ref}")
            fields.ok = False
        else:
            parents.append(ref)
    return tuple(parents)


def _pattern(fields: Fields, key: str) -> ResourcePattern | None:
    text = fields.string(key, max_length=MAX_PATTERN)
    if text is None:
        return None
    pattern = parse_pattern(text)
    if isinstance(pattern, str):
        fields.fail(key, pattern)
        return None
    return pattern


def read_exceptions(node: Node, ctx: LoadContext) -> None:
    for entry in expect_list(node, ctx.problems, "`exceptions`"):
        if not expect_map(entry, ctx.problems, "an `exceptions` entry"):
            continue
        fields = Fields(
            entry,
            ctx.problems,
            what="an exception",
            required=["identity", "detector", "owner", "justification", "expires"],
            optional=["resource"],
        )
        identity = fields.string("identity")
        if identity is not None and identity not in ctx.declared("identity"):
            fields.fail("identity", f"exception for identity `{identity}`, which is not declared")
        detector = fields.string("detector", max_length=MAX_NAME)
        if detector is not None and not _DETECTOR.match(detector):
            fields.fail("detector", f"detector `{detector}` must be a name like `volume_anomaly`")
        owner = fields.string("owner", max_length=MAX_ID)
        justification = fields.string("justification")
        expires = fields.moment("expires")
        if expires is not None and expires <= ctx.now:
            fields.fail(
                "expires",
                f"exception expired at `{expires.isoformat()}`; renew it or remove it",
            )
        resource = _pattern(fields, "resource") if fields.has("resource") else None
        if (
            not fields.ok
            or identity is None
            or detector is None
            or owner is None
            or justification is None
            or expires is None
        ):
            continue
        scope = f"{identity}/{detector}" + (f" on {resource.text}" if resource else "")
        if ctx.claim("exception", scope, where(entry)):
            ctx.exceptions.append(
                EstateException(
                    exception_id(identity, detector, resource.text if resource else None),
                    identity,
                    detector,
                    resource,
                    owner,
                    justification,
                    expires,
                    where(entry),
                )
            )


def exception_id(identity: str, detector: str, resource: str | None) -> str:
    """A stable id: the same exception keeps its id across applies."""
    digest = hashlib.sha256(f"{identity}\0{detector}\0{resource or ''}".encode()).hexdigest()
    return f"estate-{digest[:24]}"
