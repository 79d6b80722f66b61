"""The access review: approved entitlement beside observed activity, per identity, over a window.

An entitlement (``actions x resource patterns``) is split into *parts*, one per
(action, pattern). Over the window ``[since, until)`` every observation of the identity
(ingested events and tether decisions) is matched against the parts:

* a part is **used** when at least one *allowed* observation (event outcome ``allowed``,
  decision ``allow``/``constrain``) of its action reached a resource its pattern matches;
  an allowed observation without a resource uses every part of its action (the source
  did not say which resource, so none can be ruled out);
* a part with no such observation is **unused** (the excess privilege a review removes);
* an observation, of any outcome, that no part covers is **outside** the entitlement
  (denied probes included: they show what the identity tried).

An event's resource is read as estate patterns read it (``invoice:INV-1`` is
``invoice::"INV-1"``, an ARN ``arn:aws:s3:::b/k`` is of type ``arn``); events that tether
recorded for its own decisions are not counted twice. Findings in the window (when the
drift tables exist) and exceptions in force are listed beside.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, inspect, select

from tether.estate import ResourcePattern, parse_pattern
from tether.policy import EntityRef
from tether.store.schema import metadata
from tether.store.tables import decisions, entitlements, exceptions, identities
from tether.store.telemetry_tables import events

UNTYPED = "resource"  # the type of a resource whose text names none
_ALLOWED_DECISIONS = ("allow", "constrain")


def resource_ref(resource: str | None, resource_type: str | None) -> EntityRef | None:
    """An event's resource as ``type:id`` the way estate patterns read it."""
    if not resource:
        return None
    pattern = parse_pattern(resource)
    if not isinstance(pattern, str) and pattern.type is not None:
        return EntityRef(pattern.type, pattern.id_glob)
    return EntityRef(resource_type or UNTYPED, resource)


@dataclass(frozen=True, slots=True)
class Observed:
    """What one identity did with one action on one resource in the window, aggregated."""

    identity_id: str
    action: str
    resource: EntityRef | None
    allowed: int
    denied: int
    first_seen: datetime
    last_seen: datetime
    sources: tuple[str, ...]

    @property
    def resource_text(self) -> str:
        return str(self.resource) if self.resource is not None else ""


@dataclass(frozen=True, slots=True)
class EntitlementPart:
    """One (action, pattern) of an entitlement and the use observed of it."""

    entitlement_id: str
    identity_id: str
    action: str
    pattern: ResourcePattern
    uses: int = 0
    resources: tuple[EntityRef, ...] = ()  # distinct resources reached, sorted
    without_resource: int = 0  # allowed observations of the action that named no resource
    last_used: datetime | None = None

    @property
    def used(self) -> bool:
        return self.uses > 0

    @property
    def row_id(self) -> str:
        return f"{self.entitlement_id}|{self.action}|{self.pattern.text}"


@dataclass(frozen=True)
class IdentityReview:
    """One identity's review: its entitlement parts, what it did outside them, and context."""

    identity_id: str
    kind: str
    owner: str | None
    workload_class: str | None
    origin: str
    parts: tuple[EntitlementPart, ...]
    outside: tuple[Observed, ...]
    observed: tuple[Observed, ...]
    findings: tuple[Mapping[str, Any], ...] = ()
    exceptions: tuple[Mapping[str, Any], ...] = ()

    @property
    def used(self) -> tuple[EntitlementPart, ...]:
        return tuple(p for p in self.parts if p.used)

    @property
    def unused(self) -> tuple[EntitlementPart, ...]:
        return tuple(p for p in self.parts if not p.used)


@dataclass(frozen=True)
class AccessReview:
    """The review of every identity in scope over ``[since, until)``."""

    since: datetime
    until: datetime
    identity: str | None
    identities: tuple[IdentityReview, ...]
    estate_revision: int | None = None
    notes: tuple[str, ...] = field(default=())


def review_access(
    engine: Engine,
    *,
    since: datetime,
    until: datetime | None = None,
    identity: str | None = None,
    estate_revision: int | None = None,
) -> AccessReview:
    """Review every identity (or only ``identity``) over ``[since, until)``."""
    until = until or datetime.now(UTC)
    with engine.connect() as connection:
        people = _identities(connection, identity)
        grants = _entitlements(connection, identity)
        observed = _observed(connection, since, until, identity)
        found = _findings(connection, since, until, identity)
        in_force = _exceptions(connection, until, identity)
    reviews = []
    for row in people:
        ident = row["id"]
        parts, outside = match(ident, grants.get(ident, ()), observed.get(ident, ()))
        reviews.append(
            IdentityReview(
                identity_id=ident,
                kind=row["kind"],
                owner=row["owner"],
                workload_class=row["workload_class"],
                origin=row["origin"],
                parts=parts,
                outside=outside,
                observed=tuple(observed.get(ident, ())),
                findings=tuple(found.get(ident, ())),
                exceptions=tuple(in_force.get(ident, ())),
            )
        )
    return AccessReview(
        since=since,
        until=until,
        identity=identity,
        identities=tuple(reviews),
        estate_revision=estate_revision,
        notes=() if "findings" in metadata.tables else ("no findings table in this store",),
    )


Grant = tuple[str, tuple[str, ...], tuple[ResourcePattern, ...]]  # id, actions, patterns


def match(
    identity_id: str, grants: Sequence[Grant], observed: Iterable[Observed]
) -> tuple[tuple[EntitlementPart, ...], tuple[Observed, ...]]:
    """Split ``observed`` against the parts of ``grants``: the parts with their use, and
    the observations no part covers."""
    keys = [(gid, a, p) for gid, actions, patterns in grants for a in actions for p in patterns]
    uses: dict[int, int] = defaultdict(int)
    bare: dict[int, int] = defaultdict(int)
    reached: dict[int, set[EntityRef]] = defaultdict(set)
    last: dict[int, datetime] = {}
    outside: list[Observed] = []
    for obs in observed:
        covering = [
            i
            for i, (_, action, pattern) in enumerate(keys)
            if action == obs.action
            and (obs.resource is None or pattern.matches(obs.resource.type, obs.resource.id))
        ]
        if not covering:
            outside.append(obs)
            continue
        if not obs.allowed:
            continue
        for i in covering:
            uses[i] += obs.allowed
            if obs.resource is None:
                bare[i] += obs.allowed
            else:
                reached[i].add(obs.resource)
            if i not in last or obs.last_seen > last[i]:
                last[i] = obs.last_seen
    parts = tuple(
        EntitlementPart(
            entitlement_id=gid,
            identity_id=identity_id,
            action=action,
            pattern=pattern,
            uses=uses.get(i, 0),
            resources=tuple(sorted(reached.get(i, ()), key=lambda r: (r.type, r.id))),
            without_resource=bare.get(i, 0),
            last_used=last.get(i),
        )
        for i, (gid, action, pattern) in enumerate(keys)
    )
    return parts, tuple(outside)


# --- reading the store -----------------------------------------------------------------------


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _identities(connection: Connection, identity: str | None) -> list[Mapping[str, Any]]:
    query = select(identities).order_by(identities.c.id)
    if identity is not None:
        query = query.where(identities.c.id == identity)
    return [dict(row) for row in connection.execute(query).mappings()]


def _entitlements(connection: Connection, identity: str | None) -> dict[str, list[Grant]]:
    query = select(entitlements).order_by(entitlements.c.identity_id, entitlements.c.id)
    if identity is not None:
        query = query.where(entitlements.c.identity_id == identity)
    found: dict[str, list[Grant]] = defaultdict(list)
    for row in connection.execute(query).mappings():
        patterns = [parse_pattern(str(t)) for t in row["resources"] or ()]
        found[row["identity_id"]].append(
            (
                row["id"],
                tuple(str(a) for a in row["actions"] or ()),
                tuple(p for p in patterns if not isinstance(p, str)),
            )
        )
    # Stable order: entitlement:<identity>:<n> by n, not as text (10 after 9).
    for grants in found.values():
        grants.sort(key=lambda g: (len(g[0]), g[0]))
    return found


_Key = tuple[str, str, EntityRef | None]


def _observed(
    connection: Connection, since: datetime, until: datetime, identity: str | None
) -> dict[str, list[Observed]]:
    acc: dict[_Key, list[Any]] = {}

    def add(
        key: _Key, allowed: bool, count: int, first: datetime, last: datetime, src: str
    ) -> None:
        entry = acc.setdefault(key, [0, 0, _utc(first), _utc(last), set()])
        entry[0 if allowed else 1] += count
        entry[2] = min(entry[2], _utc(first))
        entry[3] = max(entry[3], _utc(last))
        entry[4].add(src)

    e = events.c
    event_query = (
        select(
            e.identity_id,
            e.action,
            e.resource,
            e.resource_type,
            e.outcome,
            e.source,
            func.count(),
            func.min(e.at),
            func.max(e.at),
        )
        .where(e.identity_id.is_not(None), e.at >= since, e.at < until)
        # tether's own decisions are read from `decisions` below, not twice
        .where((e.source != "tether") | e.decision_id.is_(None))
        .group_by(e.identity_id, e.action, e.resource, e.resource_type, e.outcome, e.source)
    )
    if identity is not None:
        event_query = event_query.where(e.identity_id == identity)
    for ident, action, res, res_type, outcome, src, count, first, last in connection.execute(
        event_query
    ):
        ref = resource_ref(res, res_type)
        add((ident, action, ref), outcome == "allowed", count, first, last, src)
    d = decisions.c
    decision_query = (
        select(
            d.subject_id,
            d.action,
            d.resource_type,
            d.resource_id,
            d.outcome,
            func.count(),
            func.min(d.at),
            func.max(d.at),
        )
        .where(d.at >= since, d.at < until)
        .group_by(d.subject_id, d.action, d.resource_type, d.resource_id, d.outcome)
    )
    if identity is not None:
        decision_query = decision_query.where(d.subject_id == identity)
    for ident, action, res_type, res_id, outcome, count, first, last in connection.execute(
        decision_query
    ):
        ref = EntityRef(res_type, res_id)
        add((ident, action, ref), outcome in _ALLOWED_DECISIONS, count, first, last, "tether")
    found: dict[str, list[Observed]] = defaultdict(list)
    for (ident, action, ref), (allowed, denied, first, last, sources) in acc.items():
        found[ident].append(
            Observed(ident, action, ref, allowed, denied, first, last, tuple(sorted(sources)))
        )
    for items in found.values():
        items.sort(key=lambda o: (o.action, o.resource_text))
    return found


def _findings(
    connection: Connection, since: datetime, until: datetime, identity: str | None
) -> dict[str, list[Mapping[str, Any]]]:
    table = metadata.tables.get("findings")
    if table is None or "identity_id" not in table.c or "at" not in table.c:
        return {}
    if not inspect(connection).has_table("findings"):  # its migration may not have run
        return {}
    query = select(table).where(table.c.at >= since, table.c.at < until).order_by(table.c.at)
    if identity is not None:
        query = query.where(table.c.identity_id == identity)
    found: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in connection.execute(query).mappings():
        found[row["identity_id"]].append(dict(row))
    return found


def _exceptions(
    connection: Connection, now: datetime, identity: str | None
) -> dict[str, list[Mapping[str, Any]]]:
    x = exceptions.c
    query = select(exceptions).where(x.expires_at > now).order_by(x.identity_id, x.id)
    if identity is not None:
        query = query.where(x.identity_id == identity)
    found: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in connection.execute(query).mappings():
        found[row["identity_id"]].append(dict(row))
    return found
