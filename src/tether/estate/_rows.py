"""The store rows an estate wants: one :class:`PlannedRow` per row of the desired state.

Apply owns only the rows it created: identities, trust anchors and exceptions with
origin ``estate``, policies with origin ``file`` or ``entitlement``, entitlements with an
``entitlement:`` id, and the whole of the class, data class and resource rule tables.
Rows of other origins (``runtime``, ``discovered``, ``cli``) are never touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, true

from tether.estate._compile import policy_texts
from tether.estate._load import ENTITLEMENT_PREFIX
from tether.estate._model import Estate, Where
from tether.estate._patterns import fnmatch_literal
from tether.estate.compiled import CompiledEstate
from tether.store import tables as t
from tether.store.caller_tables import caller_roles

ESTATE_ORIGIN = "estate"


@dataclass(frozen=True)
class TableOwnership:
    """How apply finds its rows in a table and names them in changes."""

    table: Table
    key: str
    kind: str  # the `Change.kind` of its rows

    def owned(self) -> ColumnElement[bool]:
        """The rows of this table apply created (and may update or delete)."""
        c = self.table.c
        if self.table is t.policies:
            return c.origin.in_(("file", "entitlement"))
        if self.table is t.entitlements:
            return c.id.startswith(ENTITLEMENT_PREFIX, autoescape=True)
        if "origin" in c:
            return c.origin == ESTATE_ORIGIN
        return true()


OWNERSHIP = (
    TableOwnership(t.workload_classes, "name", "class"),
    TableOwnership(t.data_classes, "name", "data_class"),
    TableOwnership(t.trust_anchors, "name", "trust"),
    TableOwnership(t.resource_rules, "pattern", "resource"),
    TableOwnership(t.identities, "id", "identity"),
    TableOwnership(caller_roles, "identity_id", "roles"),
    TableOwnership(t.entitlements, "id", "entitlement"),
    TableOwnership(t.policies, "id", "policy"),
    TableOwnership(t.exceptions, "id", "exception"),
)


@dataclass(frozen=True)
class PlannedRow:
    """One row of the desired state; ``where`` is the estate item that declares it."""

    values: Mapping[str, Any]
    where: Where | None


def planned_rows(estate: Estate, compiled: CompiledEstate) -> dict[str, dict[str, PlannedRow]]:
    """Desired rows by table name, then by primary key (timestamps are added on write)."""
    rows: dict[str, dict[str, PlannedRow]] = {o.table.name: {} for o in OWNERSHIP}

    def put(table: Table, key: str, values: dict[str, Any], where: Where | None) -> None:
        rows[table.name][key] = PlannedRow(values, where)

    values: dict[str, Any]

    for name, cls in estate.classes.items():
        put(
            t.workload_classes,
            name,
            {"name": name, "mode": cls.mode, "settings": dict(cls.settings)},
            cls.where,
        )
    for name, level in estate.data_classes.items():
        put(t.data_classes, name, {"name": name, "level": level}, estate.data_class_lines.get(name))
    for name, anchor in estate.trust.items():
        values = {
            "name": name,
            "kind": anchor.kind,
            "settings": dict(anchor.settings),
            "origin": ESTATE_ORIGIN,
        }
        put(t.trust_anchors, name, values, anchor.where)
    for rule in estate.rules:
        values = {"pattern": rule.pattern.text, "data_class": rule.data_class, "attributes": {}}
        put(t.resource_rules, rule.pattern.text, values, rule.where)
    for resource in estate.resources:
        pattern = fnmatch_literal(f"{resource.type}:{resource.id}")
        values = {
            "pattern": pattern,
            "data_class": resource.data_class,
            "attributes": dict(resource.attributes),
        }
        put(t.resource_rules, pattern, values, resource.where)
    for identity in estate.identities.values():
        workload = identity.workload
        values = {
            "id": identity.id,
            "kind": identity.kind,
            "workload_class": identity.workload_class,
            "owner": identity.owner,
            "workload": dict(workload) if isinstance(workload, Mapping) else workload,
            "attributes": dict(identity.attributes),
            "origin": ESTATE_ORIGIN,
        }
        put(t.identities, identity.id, values, identity.where)
        if identity.tether_roles:
            values = {
                "identity_id": identity.id,
                "roles": list(identity.tether_roles),
                "origin": ESTATE_ORIGIN,
            }
            put(caller_roles, identity.id, values, identity.where)
        for grant in identity.entitlements:
            values = {
                "id": grant.id,
                "identity_id": identity.id,
                "actions": list(grant.actions),
                "resources": [p.text for p in grant.resources],
                "policy_id": grant.id,
            }
            put(t.entitlements, grant.id, values, grant.where)
    texts = policy_texts(estate)
    for spec in compiled.policies:
        values = {
            "id": spec.id,
            "file": spec.file,
            "line": spec.line,
            "effect": spec.effect,
            "outcome": spec.outcome.value,
            "origin": "entitlement" if spec.id.startswith(ENTITLEMENT_PREFIX) else "file",
            "text": texts[spec.id],
        }
        put(t.policies, spec.id, values, Where(spec.file, spec.line))
    for exc in estate.exceptions:
        values = {
            "id": exc.id,
            "identity_id": exc.identity,
            "detector": exc.detector,
            "resource_pattern": exc.resource.text if exc.resource else None,
            "owner": exc.owner,
            "justification": exc.justification,
            "expires_at": exc.expires_at,
            "origin": ESTATE_ORIGIN,
        }
        put(t.exceptions, exc.id, values, exc.where)
    return rows


def comparable(value: Any) -> Any:
    """A value as it compares across backends: aware UTC ISO times, lists for tuples."""
    if isinstance(value, datetime):
        aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return aware.isoformat()
    if isinstance(value, Mapping):
        return {str(k): comparable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [comparable(v) for v in value]
    return value


def change_name(ownership: TableOwnership, values: Mapping[str, Any]) -> str:
    """How a change names a row to a person."""
    if ownership.table is t.exceptions:
        scope = f"{values['identity_id']}/{values['detector']}"
        return scope + (
            f" on {values['resource_pattern']}" if values.get("resource_pattern") else ""
        )
    return str(values[ownership.key])
