"""A compiled estate: what `tether apply` stores and what a server loads to decide.

It is plain JSON-able data (the ``bundle``) so that every replica builds the same
:class:`~tether.policy.PolicyEngine` from the store, without the estate files.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tether.policy import EntityRecord, EntityRef, Outcome, PolicyEngine, PolicySpec


@dataclass(frozen=True)
class ResourceRule:
    """Sensitivity of resources by pattern: ``type:id-glob`` (``*`` matches anything)."""

    pattern: str
    data_class: str | None
    level: int


@dataclass(frozen=True)
class ToolMapping:
    """How the arguments of one agent tool (an MCP ``tools/call``) map to a decision.

    ``resource_argument`` names the argument whose value is the resource id (of type
    ``resource_type``); ``destinations`` maps argument names to the type of what they
    name (``{to: email, iban: iban}``): where the call sends something. ``data_class``
    is the data class of what the tool returns.
    """

    name: str
    resource_argument: str | None = None
    resource_type: str | None = None
    destinations: Mapping[str, str] = field(default_factory=dict)
    data_class: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "resource_argument": self.resource_argument,
            "resource_type": self.resource_type,
            "destinations": dict(self.destinations),
            "data_class": self.data_class,
        }

    @classmethod
    def from_json(cls, name: str, body: Mapping[str, Any]) -> ToolMapping:
        return cls(
            name,
            body.get("resource_argument"),
            body.get("resource_type"),
            dict(body.get("destinations") or {}),
            body.get("data_class"),
        )


@dataclass(frozen=True)
class Organisation:
    """The estate's ``organisation:``: its own domains, accounts and workspaces, so that a
    destination can be told inside from outside (:meth:`inside`)."""

    domains: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()
    workspaces: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.domains or self.accounts or self.workspaces)

    def inside(self, value: str) -> bool:
        """Whether ``value`` (an address, URL, host, account or workspace) is the
        organisation's own: an address or host at one of its domains (or a subdomain), one
        of its accounts (spaces and case ignored) or workspaces (case ignored)."""
        text = value.strip().lower()
        if _compact(text) in {_compact(a) for a in self.accounts}:
            return True
        if text in {w.lower() for w in self.workspaces}:
            return True
        host = _host(text)
        return any(host == d or host.endswith("." + d) for d in (d.lower() for d in self.domains))

    def to_json(self) -> dict[str, list[str]]:
        return {
            "domains": list(self.domains),
            "accounts": list(self.accounts),
            "workspaces": list(self.workspaces),
        }

    @classmethod
    def from_json(cls, body: Mapping[str, Any] | None) -> Organisation:
        body = body or {}
        return cls(*(tuple(body.get(k, ())) for k in ("domains", "accounts", "workspaces")))


def _compact(text: str) -> str:
    return "".join(text.split()).lower()


def _host(text: str) -> str:
    """The host of an address (``a@host``), a URL (``scheme://host:port/path``) or a host."""
    if "@" in text and "://" not in text:
        return text.rsplit("@", 1)[1]
    rest = text.split("://", 1)[-1]
    host = rest.split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]
    return host.split(":", 1)[0].rstrip(".")


@dataclass(frozen=True)
class CompiledEstate:
    """Policies (files + compiled entitlements), entities, schema, resource rules, workload
    classes and tool mappings."""

    policies: Sequence[PolicySpec]
    entities: Sequence[EntityRecord]
    schema_text: str | None = None
    resource_rules: Sequence[ResourceRule] = ()
    classes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # The `tools:` section: how each tool's arguments map to a decision, by tool name.
    tools: Mapping[str, ToolMapping] = field(default_factory=dict)
    organisation: Organisation = field(default_factory=Organisation)

    def engine(self) -> PolicyEngine:
        return PolicyEngine(self.policies, self.entities, schema_text=self.schema_text)

    def classifier(self) -> ResourceClassifier:
        return ResourceClassifier(self.resource_rules)

    def to_bundle(self) -> dict[str, Any]:
        return {
            "policies": [
                {
                    "id": p.id,
                    "file": p.file,
                    "line": p.line,
                    "effect": p.effect,
                    "outcome": p.outcome.value,
                    "obligations": dict(p.obligations),
                    "est": p.est,
                }
                for p in self.policies
            ],
            "entities": [
                {
                    "type": e.type,
                    "id": e.id,
                    "attrs": dict(e.attrs),
                    "parents": [{"type": r.type, "id": r.id} for r in e.parents],
                }
                for e in self.entities
            ],
            "schema": self.schema_text,
            "resource_rules": [
                {"pattern": r.pattern, "data_class": r.data_class, "level": r.level}
                for r in self.resource_rules
            ],
            "classes": {k: dict(v) for k, v in self.classes.items()},
            "tools": {name: tool.to_json() for name, tool in sorted(self.tools.items())},
            "organisation": self.organisation.to_json(),
        }

    @classmethod
    def from_bundle(cls, bundle: Mapping[str, Any]) -> CompiledEstate:
        return cls(
            policies=[
                PolicySpec(
                    id=p["id"],
                    file=p["file"],
                    line=p["line"],
                    effect=p["effect"],
                    outcome=Outcome(p["outcome"]),
                    obligations=p["obligations"],
                    est=p["est"],
                )
                for p in bundle["policies"]
            ],
            entities=[
                EntityRecord(
                    e["type"],
                    e["id"],
                    e["attrs"],
                    tuple(EntityRef(r["type"], r["id"]) for r in e["parents"]),
                )
                for e in bundle["entities"]
            ],
            schema_text=bundle.get("schema"),
            resource_rules=[ResourceRule(**r) for r in bundle.get("resource_rules", [])],
            classes=bundle.get("classes", {}),
            tools={
                name: ToolMapping.from_json(name, body)
                for name, body in bundle.get("tools", {}).items()
            },
            organisation=Organisation.from_json(bundle.get("organisation")),
        )


EMPTY_ESTATE = CompiledEstate(policies=(), entities=())


class ResourceClassifier:
    """Finds the data class of a resource; the most sensitive matching rule wins."""

    def __init__(self, rules: Sequence[ResourceRule]) -> None:
        ordered = sorted((r for r in rules if r.data_class), key=lambda r: -r.level)
        self._rules = [(re.compile(fnmatch.translate(r.pattern)), r) for r in ordered]
        self._cache: dict[str, tuple[str | None, int]] = {}

    def classify(self, ref: EntityRef) -> tuple[str | None, int]:
        """Return ``(data_class, level)``; ``(None, 0)`` when no rule matches."""
        key = f"{ref.type}:{ref.id}"
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        result: tuple[str | None, int] = (None, 0)
        for regex, rule in self._rules:
            if regex.match(key):
                result = (rule.data_class, rule.level)
                break
        if len(self._cache) < 100_000:
            self._cache[key] = result
        return result
