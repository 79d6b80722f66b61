"""Applying an estate folder to the store: atomically, idempotently, touching only its rows.

The files are the desired state for what they declare: apply creates, updates and
deletes the rows an earlier apply made (see ``_rows``) in one transaction, records a new
``estate_revisions`` row carrying the compiled bundle that servers load, and an audit
log entry. The revision's digest covers the bundle and the rows; when nothing differs
from the latest revision, nothing is written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    Connection,
    Engine,
    Table,
    delete,
    insert,
    null,
    select,
    text,
    update,
)

from tether.errors import EstateProblem
from tether.estate._compile import compile_estate
from tether.estate._load import SCHEMA_FILE, load_estate, raise_if_problems
from tether.estate._model import IDENTITY_KINDS, Estate
from tether.estate._patterns import fnmatch_literal
from tether.estate._rows import (
    OWNERSHIP,
    PlannedRow,
    TableOwnership,
    change_name,
    comparable,
    planned_rows,
)
from tether.estate.compiled import CompiledEstate
from tether.store import tables as t
from tether.store.caller_tables import caller_roles
from tether.store.record_chain import append_audit

_T = TypeVar("_T")
KIND_ORDER = (
    "schema",
    "class",
    "data_class",
    "trust",
    "resource",
    "identity",
    "roles",
    "entitlement",
    "policy",
    "exception",
    "tool",
)


@dataclass(frozen=True)
class Change:
    """One difference between the store and the files.

    ``kind`` is one of identity, roles (an identity's ``tether_roles``), entitlement,
    class, data_class, resource, policy, trust, exception, tool or schema; ``op`` is create,
    update or delete.
    """

    kind: str
    name: str
    op: str


@dataclass(frozen=True)
class ApplyResult:
    """What an apply did (or, with ``dry_run``, would do).

    ``revision`` is the estate revision now live: the new one, or the current one when
    nothing changed or on a dry run (``None`` when the store has none).
    """

    revision: int | None
    changed: bool
    changes: tuple[Change, ...]
    dry_run: bool


def apply_estate(
    engine: Engine,
    directory: Path,
    *,
    dry_run: bool = False,
    actor: str = "cli",
    now: datetime | None = None,
) -> ApplyResult:
    """Validate the estate folder and make the store match it, all or nothing.

    Raises:
        EstateInvalid: the files do not validate (nothing is written), or they declare
            an object that exists in the store with another origin.
    """
    now = now or datetime.now(UTC)
    directory = Path(directory)
    estate = load_estate(directory, now=now)
    compiled = compile_estate(estate)
    rows = planned_rows(estate, compiled)
    if dry_run:
        with engine.connect() as connection:
            plan = _plan(connection, estate, compiled, rows)
        return ApplyResult(plan.latest, plan.needed, plan.changes, dry_run=True)
    with engine.begin() as connection:
        _lock(connection)
        plan = _plan(connection, estate, compiled, rows)
        if not plan.needed:
            return ApplyResult(plan.latest, False, (), dry_run=False)
        _write(connection, plan, now)
        revision = _record(connection, directory, compiled, plan, actor, now)
    return ApplyResult(revision, True, plan.changes, dry_run=False)


@dataclass(frozen=True)
class _Write:
    """One row to create, update or delete (``row`` is ``None`` for a delete)."""

    ownership: TableOwnership
    key: str
    op: str
    row: PlannedRow | None
    name: str  # how the change names the row


@dataclass(frozen=True)
class _Plan:
    latest: int | None
    digest: str
    needed: bool
    changes: tuple[Change, ...]
    writes: tuple[_Write, ...]
    counts: Mapping[str, int]


def _lock(connection: Connection) -> None:
    """Serialise concurrent applies: one plans and writes while the other waits."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("LOCK TABLE estate_revisions IN SHARE ROW EXCLUSIVE MODE"))
    else:
        # A write statement makes SQLite take its write lock now, before the reads below.
        connection.execute(text("UPDATE estate_revisions SET revision = revision WHERE 1 = 0"))


def _plan(
    connection: Connection,
    estate: Estate,
    compiled: CompiledEstate,
    rows: dict[str, dict[str, PlannedRow]],
) -> _Plan:
    latest_row = connection.execute(
        select(
            t.estate_revisions.c.revision, t.estate_revisions.c.digest, t.estate_revisions.c.bundle
        )
        .order_by(t.estate_revisions.c.revision.desc())
        .limit(1)
    ).first()
    changes: dict[tuple[str, str], Change] = {}
    writes: list[_Write] = []
    problems: list[EstateProblem] = []
    for ownership in OWNERSHIP:
        _diff_table(connection, ownership, rows[ownership.table.name], writes, problems)
    for write in writes:
        kind = write.ownership.kind
        changes[(kind, write.name)] = Change(kind, write.name, write.op)
    raise_if_problems(estate.directory, problems)
    previous = latest_row.bundle if latest_row is not None else None
    for change in _bundle_changes(previous, compiled.to_bundle(), estate, rows):
        changes.setdefault((change.kind, change.name), change)
    digest = _digest(compiled, rows)
    ordered = tuple(sorted(changes.values(), key=lambda c: (KIND_ORDER.index(c.kind), c.name)))
    latest = int(latest_row.revision) if latest_row is not None else None
    same = latest_row is not None and latest_row.digest == digest
    counts = {o.kind: len(rows[o.table.name]) for o in OWNERSHIP}
    counts["policy"] = len(compiled.policies)
    return _Plan(latest, digest, bool(ordered) or not same, ordered, tuple(writes), counts)


def _diff_table(
    connection: Connection,
    ownership: TableOwnership,
    wanted: Mapping[str, PlannedRow],
    writes: list[_Write],
    problems: list[EstateProblem],
) -> None:
    """Compare one table's owned rows with the wanted ones; refuse rows of other origins."""
    table, key_column = ownership.table, ownership.table.c[ownership.key]
    existing = {
        str(r[ownership.key]): dict(r)
        for r in connection.execute(select(table).where(ownership.owned())).mappings()
    }
    foreign: set[str] = set()
    for keys in _chunks(list(wanted)):
        query = select(key_column).where(key_column.in_(keys), ~ownership.owned())
        foreign.update(connection.execute(query).scalars())
    for key, row in wanted.items():
        if key in foreign:
            problems.append(
                EstateProblem(
                    row.where.file if row.where else ".",
                    row.where.line if row.where else None,
                    f"{ownership.kind} `{key}` already exists in the store and was not made "
                    "by apply; remove it there or rename it here",
                )
            )
            continue
        current = existing.get(key)
        if current is None:
            op = "create"
        elif comparable({c: current[c] for c in row.values}) != comparable(row.values):
            op = "update"
        else:
            continue
        writes.append(_Write(ownership, key, op, row, change_name(ownership, row.values)))
    for key, current in existing.items():
        if key not in wanted:
            writes.append(_Write(ownership, key, "delete", None, change_name(ownership, current)))


def _bundle_changes(
    previous: Mapping[str, Any] | None,
    bundle: Mapping[str, Any],
    estate: Estate,
    rows: Mapping[str, Mapping[str, PlannedRow]],
) -> list[Change]:
    """Changes the rows do not show: the schema, entity parents and attributes, tools."""
    before = previous or {"entities": [], "schema": None}
    found: list[Change] = []
    if before.get("schema") != bundle.get("schema"):
        op = "create" if before.get("schema") is None else "update"
        op = "delete" if bundle.get("schema") is None else op
        found.append(Change("schema", SCHEMA_FILE if estate.schema_text else "generated", op))
    identities = set(rows[t.identities.name])
    old = {(e["type"], e["id"]): e for e in before.get("entities", [])}
    new = {(e["type"], e["id"]): e for e in bundle["entities"]}
    for key in old.keys() | new.keys():
        if comparable(old.get(key)) == comparable(new.get(key)):
            continue
        op = "create" if key not in old else "delete" if key not in new else "update"
        entity_type, entity_id = key
        if entity_type in IDENTITY_KINDS and (entity_id in identities or key not in new):
            found.append(Change("identity", entity_id, op))
        else:
            found.append(Change("resource", fnmatch_literal(f"{entity_type}:{entity_id}"), op))
    old_tools, new_tools = before.get("tools", {}), bundle.get("tools", {})
    for name in sorted(old_tools.keys() | new_tools.keys()):
        if old_tools.get(name) != new_tools.get(name):
            op = (
                "create"
                if name not in old_tools
                else "delete"
                if name not in new_tools
                else "update"
            )
            found.append(Change("tool", name, op))
    return found


def _digest(compiled: CompiledEstate, rows: Mapping[str, Mapping[str, PlannedRow]]) -> str:
    bundle = compiled.to_bundle()
    # Order in the files is not meaning: sort what Cedar treats as a set.
    bundle["policies"] = sorted(bundle["policies"], key=lambda p: p["id"])
    bundle["entities"] = sorted(bundle["entities"], key=lambda e: (e["type"], e["id"]))
    bundle["resource_rules"] = sorted(bundle["resource_rules"], key=lambda r: r["pattern"])
    stored = {
        table: {key: comparable(row.values) for key, row in sorted(by_key.items())}
        for table, by_key in sorted(rows.items())
    }
    canonical = json.dumps(
        {"bundle": bundle, "rows": stored}, sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _write(connection: Connection, plan: _Plan, now: datetime) -> None:
    for ownership in OWNERSHIP:
        table = ownership.table
        key_column = table.c[ownership.key]
        writes = [w for w in plan.writes if w.ownership is ownership]
        gone = [w.key for w in writes if w.op == "delete"]
        for keys in _chunks(gone):
            connection.execute(delete(table).where(key_column.in_(keys), ownership.owned()))
        created: list[dict[str, Any]] = []
        for write in writes:
            if write.row is None:
                continue
            values = _stored(table, write.row.values)
            if table is t.identities:
                values["updated_at"] = now
                if write.op == "create":
                    values.update(created_at=now, status="active")
            if table is t.exceptions and write.op == "create":
                values["created_at"] = now
            if table is caller_roles:
                values["updated_at"] = now
            if write.op == "create":
                created.append(values)
            else:
                connection.execute(update(table).where(key_column == write.key).values(**values))
        for batch in _chunks(created):
            connection.execute(insert(table), batch)


def _stored(table: Table, values: Mapping[str, Any]) -> dict[str, Any]:
    # SQL NULL rather than a JSON `null`, so `IS NULL` finds what the files left out.
    return {
        k: null() if v is None and isinstance(table.c[k].type, JSON) else v
        for k, v in values.items()
    }


def _chunks(items: list[_T], size: int = 500) -> list[list[_T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _record(
    connection: Connection,
    directory: Path,
    compiled: CompiledEstate,
    plan: _Plan,
    actor: str,
    now: datetime,
) -> int:
    changes = [{"kind": c.kind, "name": c.name, "op": c.op} for c in plan.changes]
    result = connection.execute(
        insert(t.estate_revisions).values(
            digest=plan.digest,
            applied_at=now,
            applied_by=actor,
            source=str(directory),
            summary={"counts": dict(plan.counts), "changes": changes},
            bundle=compiled.to_bundle(),
        )
    )
    inserted = result.inserted_primary_key
    assert inserted is not None  # an INSERT always reports its key
    revision = int(inserted[0])
    append_audit(
        connection,
        [
            {
                "at": now,
                "actor": actor,
                "action": "estate.apply",
                "target": str(directory),
                "details": {"revision": revision, "digest": plan.digest, "changes": changes},
            }
        ],
    )
    return revision
