"""Reading what one path is made of: tasks, tokens, decisions and events, by index only.

Every query follows an index: tasks by ``ix_tasks_identity_opened`` (and by id), tokens
by ``ix_issued_tokens_task``, decisions by ``ix_decisions_subject_at``, events by
``ix_events_identity_at`` (the identity's own) and ``ix_events_task_at`` (whoever acted
in its tasks: a sub-agent's calls are attributed to the sub-agent).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, RowMapping, Select, exists, select

from tether.errors import NotFound
from tether.paths._model import recorded_link
from tether.policy import EntityRef
from tether.store.tables import decisions, identities
from tether.store.telemetry_tables import events
from tether.store.token_tables import issued_tokens, tasks
from tether.tokens.errors import TaskNotFound
from tether.tokens.ledger import IssuedToken, grants_of, task_from_row, tokens_of_task
from tether.tokens.tasks import Grant, TaskRecord

_IN_CHUNK = 500
_EVENT_COLUMNS = (
    events.c.seq,
    events.c.at,
    events.c.identity_id,
    events.c.task_id,
    events.c.token_id,
    events.c.source,
    events.c.action,
    events.c.resource,
    events.c.resource_type,
    events.c.data_class,
    events.c.outcome,
    events.c.decision_id,
    events.c.tool_name,
    events.c.call_id,
    events.c.parent_call_id,
)
_DECISION_COLUMNS = (
    decisions.c.seq,
    decisions.c.decision_id,
    decisions.c.at,
    decisions.c.subject_id,
    decisions.c.action,
    decisions.c.resource_type,
    decisions.c.resource_id,
    decisions.c.outcome,
    decisions.c.reasons,
    decisions.c.errors,
    decisions.c.context,
)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class EventRow(NamedTuple):
    """The columns of a stored event a path shows (never ``raw``), in ``_EVENT_COLUMNS``
    order: a tuple, because a path reads a thousand of them per request."""

    seq: int
    at: datetime
    identity_id: str | None
    task_id: str | None
    token_id: str | None
    source: str
    action: str
    resource: str | None
    resource_type: str | None
    data_class: str | None
    outcome: str
    decision_id: str | None
    tool_name: str | None
    call_id: str | None
    parent_call_id: str | None


@dataclass(frozen=True, slots=True)
class DecisionRow:
    seq: int
    decision_id: str
    at: datetime
    subject_id: str
    action: str
    resource: EntityRef
    outcome: str
    reasons: tuple[str, ...]
    errors: tuple[str, ...]
    task_id: str | None
    token_jti: str | None


@dataclass(frozen=True)
class PathRecords:
    """Everything one path is built from, each list in time order."""

    identity_id: str
    identity_kind: str | None
    workload_class: str | None
    tasks: Sequence[TaskRecord]
    proofs: Mapping[str, str | None]  # task id -> proof id (jti or hash prefix)
    tokens: Sequence[IssuedToken]
    decisions: Sequence[DecisionRow]
    events: Sequence[EventRow]
    grants: Mapping[str, Sequence[Grant]]
    truncated: bool


def _window(query: Select[Any], column: Any, since: datetime | None, until: datetime | None) -> Any:
    if since is not None:
        query = query.where(column >= since)
    if until is not None:
        query = query.where(column < until)
    return query


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]


def load_records(
    engine: Engine,
    identity_id: str,
    *,
    task_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 10_000,
) -> PathRecords:
    """Read the records of ``identity_id``'s path (of one task when ``task_id`` is given).

    Raises:
        NotFound: ``identity_not_found`` when tether knows nothing of the identity,
            ``task_not_found`` when ``task_id`` is not one of its tasks.
    """
    with engine.connect() as connection:
        row = connection.execute(
            select(identities.c.kind, identities.c.workload_class).where(
                identities.c.id == identity_id
            )
        ).first()
        if row is None and not _seen(connection, identity_id):
            raise NotFound(f"no identity `{identity_id}`", code="identity_not_found")
        task_rows = _tasks(connection, identity_id, task_id, since, until)
        found = [task_from_row(r) for r in task_rows]
        task_ids = [t.id for t in found]
        tokens = [t for tid in task_ids for t in tokens_of_task(connection, tid)]
        decision_rows, cut_decisions = _decisions(
            connection, identity_id, found, task_id, since, until, limit
        )
        event_rows, cut_events = _events(
            connection, identity_id, task_ids, task_id, since, until, limit
        )
        owners = {identity_id, *(t.identity_id for t in found)}
        grants = {owner: grants_of(connection, owner) for owner in sorted(owners)}
    return PathRecords(
        identity_id=identity_id,
        identity_kind=row.kind if row else None,
        workload_class=row.workload_class if row else None,
        tasks=found,
        proofs={r["id"]: r["proof_id"] for r in task_rows},
        tokens=tokens,
        decisions=decision_rows,
        events=event_rows,
        grants=grants,
        truncated=cut_decisions or cut_events,
    )


def _seen(connection: Connection, identity_id: str) -> bool:
    """Whether any event or decision names the identity (one not in the inventory)."""
    query = select(
        exists().where(events.c.identity_id == identity_id)
        | exists().where(decisions.c.subject_id == identity_id)
    )
    return bool(connection.execute(query).scalar())


def _tasks(
    connection: Connection,
    identity_id: str,
    task_id: str | None,
    since: datetime | None,
    until: datetime | None,
) -> list[RowMapping]:
    """The identity's tasks, and those it acted in by delegation, oldest first."""
    if task_id is not None:
        row = connection.execute(select(tasks).where(tasks.c.id == task_id)).mappings().first()
        acted = row is not None and (
            row["identity_id"] == identity_id
            or connection.execute(
                select(
                    exists().where(
                        issued_tokens.c.task_id == task_id, issued_tokens.c.actor_id == identity_id
                    )
                )
            ).scalar()
        )
        if row is None or not acted:
            raise TaskNotFound(f"no task `{task_id}` of `{identity_id}`")
        return [row]
    query = select(tasks).where(tasks.c.identity_id == identity_id)
    delegated = select(issued_tokens.c.task_id).where(issued_tokens.c.actor_id == identity_id)
    rows = list(connection.execute(query).mappings())
    mine = {r["id"] for r in rows}
    others = sorted(set(connection.execute(delegated).scalars()) - mine)
    for chunk in _chunks(others):
        rows += connection.execute(select(tasks).where(tasks.c.id.in_(chunk))).mappings()
    if since is not None:
        rows = [r for r in rows if _utc(r["expires_at"]) >= since]
    if until is not None:
        rows = [r for r in rows if _utc(r["opened_at"]) < until]
    rows.sort(key=lambda r: (_utc(r["opened_at"]), r["id"]))
    return rows


def _decision_row(r: Any) -> DecisionRow:
    task_id, jti = recorded_link(r.context)
    return DecisionRow(
        seq=r.seq,
        decision_id=r.decision_id,
        at=_utc(r.at),
        subject_id=r.subject_id,
        action=r.action,
        resource=EntityRef(r.resource_type, r.resource_id),
        outcome=r.outcome,
        reasons=tuple(str(x) for x in r.reasons or ()),
        errors=tuple(str(x) for x in r.errors or ()),
        task_id=task_id,
        token_jti=jti,
    )


def _decisions(
    connection: Connection,
    identity_id: str,
    found: Sequence[TaskRecord],
    task_id: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> tuple[list[DecisionRow], bool]:
    """Decisions about the identity, and those made with tokens of its tasks."""
    involved = {t.id for t in found}
    # (subject, from, to): the identity over the window; another owner's task over its life.
    spans: list[tuple[str, datetime | None, datetime | None]] = []
    if task_id is None:
        spans.append((identity_id, since, until))
    for task in found:
        if task_id is None and task.identity_id == identity_id:
            continue
        spans.append(
            (
                task.identity_id,
                max(task.opened_at, since) if since else task.opened_at,
                min(task.expires_at, until) if until else task.expires_at,
            )
        )
    kept: dict[int, DecisionRow] = {}
    cut = False
    for subject, start, end in spans:
        query = _window(
            select(*_DECISION_COLUMNS).where(decisions.c.subject_id == subject),
            decisions.c.at,
            start,
            end,
        )
        query = query.order_by(decisions.c.at, decisions.c.seq).limit(limit + 1)
        rows = list(connection.execute(query))
        cut = cut or len(rows) > limit
        for r in rows[:limit]:
            decision = _decision_row(r)
            mine = subject == identity_id and task_id is None
            if decision.task_id in involved or (mine and decision.task_id is None):
                kept[decision.seq] = decision
    ordered = sorted(kept.values(), key=lambda d: (d.at, d.seq))
    return ordered[:limit], cut or len(ordered) > limit


def _event_row(r: Any) -> EventRow:
    return EventRow(r[0], _utc(r[1]), *r[2:])


def _events(
    connection: Connection,
    identity_id: str,
    task_ids: Sequence[str],
    task_id: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> tuple[list[EventRow], bool]:
    """The identity's own events and every event of its tasks, in time order."""
    queries: list[Any] = []
    if task_id is None:
        queries.append(select(*_EVENT_COLUMNS).where(events.c.identity_id == identity_id))
    for chunk in _chunks(task_ids):
        query = select(*_EVENT_COLUMNS).where(events.c.task_id.in_(chunk))
        if task_id is None:  # the identity's own were read above: only others' acts here
            query = query.where(
                events.c.identity_id.is_(None) | (events.c.identity_id != identity_id)
            )
        queries.append(query)
    kept: dict[int, EventRow] = {}
    cut = False
    for query in queries:
        ordered = _window(query, events.c.at, since, until).order_by(events.c.at, events.c.seq)
        rows = list(connection.execute(ordered.limit(limit + 1)))
        cut = cut or len(rows) > limit
        for r in rows[:limit]:
            kept[r.seq] = _event_row(r)
    merged = sorted(kept.values(), key=lambda e: (e.at, e.seq))
    return merged[:limit], cut or len(merged) > limit
