"""The store side of tasks and task tokens: rows in, rows out, events in the audit log.

Every change (a task opened or ended, a token issued, exchanged or revoked) is written
with its audit event in one transaction, and commits before the caller answers. Tokens
are named by ``jti`` only, never by their text. A revocation bumps
``revocation_version`` in the same transaction, so a server that sees the new version
also sees everything it stands for.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update

from tether.estate import parse_pattern
from tether.store.record_chain import append_audit
from tether.store.tables import data_classes, entitlements, identities
from tether.store.token_tables import issued_tokens, revocation_version, revocations, tasks
from tether.tokens.access_token import TaskTokenClaims
from tether.tokens.tasks import ENDED, Grant, IntendedCall, TaskIntent, TaskRecord

#: How long a revocation is remembered past the expiry of what it revokes (clock skew).
REMEMBER_PAST_EXPIRY = timedelta(seconds=60)


def utc(value: datetime) -> datetime:
    """Stored times are UTC; SQLite returns them without an offset."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def record_event(
    connection: Connection,
    *,
    actor: str,
    action: str,
    target: str,
    details: Mapping[str, Any],
    at: datetime,
) -> None:
    """Append one event to the audit log, inside the caller's transaction."""
    append_audit(
        connection,
        [{"at": at, "actor": actor, "action": action, "target": target, "details": details}],
    )


# --- identities and entitlements ----------------------------------------------------------


@dataclass(frozen=True)
class IdentityRow:
    id: str
    kind: str
    workload_class: str | None
    status: str


def identity(connection: Connection, identity_id: str) -> IdentityRow | None:
    row = connection.execute(
        select(
            identities.c.id, identities.c.kind, identities.c.workload_class, identities.c.status
        ).where(identities.c.id == identity_id)
    ).first()
    return IdentityRow(row.id, row.kind, row.workload_class, row.status) if row else None


def grants_of(connection: Connection, identity_id: str) -> list[Grant]:
    """The identity's standing entitlements (patterns that no longer parse are skipped)."""
    grants: list[Grant] = []
    rows = connection.execute(
        select(entitlements.c.actions, entitlements.c.resources).where(
            entitlements.c.identity_id == identity_id
        )
    )
    for row in rows:
        patterns = [parse_pattern(text) for text in row.resources or ()]
        grants.append(
            Grant(
                frozenset(row.actions or ()), tuple(p for p in patterns if not isinstance(p, str))
            )
        )
    return grants


def data_class_names(connection: Connection) -> set[str]:
    return set(connection.execute(select(data_classes.c.name)).scalars())


# --- tasks ----------------------------------------------------------------------------------


def insert_task(connection: Connection, task: TaskRecord, *, proof_id: str | None) -> None:
    connection.execute(
        insert(tasks).values(
            id=task.id,
            identity_id=task.identity_id,
            identity_kind=task.identity_kind,
            workload_class=task.workload_class,
            purpose=task.purpose,
            intent=task.intent.to_json(),
            status=task.status,
            opened_at=task.opened_at,
            expires_at=task.expires_at,
            opened_by=task.opened_by[:400],
            proof_id=proof_id[:300] if proof_id else None,
        )
    )


def task_from_row(row: Mapping[Any, Any]) -> TaskRecord:
    intent = row["intent"]
    patterns = [parse_pattern(text) for text in intent.get("resources", ())]
    return TaskRecord(
        id=row["id"],
        identity_id=row["identity_id"],
        identity_kind=row["identity_kind"],
        workload_class=row["workload_class"],
        purpose=row["purpose"],
        intent=TaskIntent(
            tuple(intent.get("actions", ())),
            tuple(p for p in patterns if not isinstance(p, str)),
            tuple(intent.get("data_classes", ())),
            tuple(
                IntendedCall(str(c["tool"]), dict(c.get("arguments") or {}))
                for c in intent.get("calls", ())
            ),
        ),
        status=row["status"],
        opened_at=utc(row["opened_at"]),
        expires_at=utc(row["expires_at"]),
        opened_by=row["opened_by"],
        ended_at=utc(row["ended_at"]) if row["ended_at"] else None,
        ended_by=row["ended_by"],
        end_reason=row["end_reason"],
    )


def load_task(connection: Connection, task_id: str) -> TaskRecord | None:
    row = connection.execute(select(tasks).where(tasks.c.id == task_id)).mappings().first()
    return task_from_row(row) if row else None


def list_tasks(
    engine: Engine,
    *,
    identity_id: str | None = None,
    state: str | None = None,
    limit: int = 100,
    now: datetime,
) -> list[TaskRecord]:
    """Tasks, newest first; ``state`` is ``open``, ``ended`` or ``expired``."""
    query = select(tasks).order_by(tasks.c.opened_at.desc(), tasks.c.id).limit(limit)
    if identity_id:
        query = query.where(tasks.c.identity_id == identity_id)
    if state == "ended":
        query = query.where(tasks.c.status == ENDED)
    elif state == "open":
        query = query.where(tasks.c.status != ENDED, tasks.c.expires_at > now)
    elif state == "expired":
        query = query.where(tasks.c.status != ENDED, tasks.c.expires_at <= now)
    with engine.connect() as connection:
        return [task_from_row(r) for r in connection.execute(query).mappings()]


@dataclass(frozen=True)
class EndedTask:
    task: TaskRecord
    revoked: tuple[str, ...]  # jtis revoked now
    already_ended: bool


def end_task(
    engine: Engine, task_id: str, *, actor: str, reason: str, now: datetime
) -> EndedTask | None:
    """End a task and revoke every token issued for it; ``None`` if there is no such task."""
    with engine.begin() as connection:
        query = select(tasks).where(tasks.c.id == task_id)
        if connection.dialect.name == "postgresql":
            query = query.with_for_update()
        row = connection.execute(query).mappings().first()
        if row is None:
            return None
        task = task_from_row(row)
        if task.status == ENDED:
            return EndedTask(task, (), True)
        connection.execute(
            update(tasks)
            .where(tasks.c.id == task_id)
            .values(status=ENDED, ended_at=now, ended_by=actor[:200], end_reason=reason[:200])
        )
        jtis = tuple(
            connection.execute(
                select(issued_tokens.c.jti).where(
                    issued_tokens.c.task_id == task_id, issued_tokens.c.revoked_at.is_(None)
                )
            ).scalars()
        )
        connection.execute(
            update(issued_tokens)
            .where(issued_tokens.c.task_id == task_id, issued_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason="task ended")
        )
        # One entry for the task covers its tokens, those issued and any issued late.
        _add_revocations(
            connection,
            [("task", task_id, task.expires_at + REMEMBER_PAST_EXPIRY)],
            reason=reason,
            actor=actor,
            now=now,
        )
        record_event(
            connection,
            actor=actor,
            action="task.end",
            target=task_id,
            details={"identity": task.identity_id, "reason": reason, "revoked": list(jtis)},
            at=now,
        )
        ended = load_task(connection, task_id)
    assert ended is not None
    return EndedTask(ended, jtis, False)


# --- tokens ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedToken:
    """A token as the store records it (never its text)."""

    jti: str
    task_id: str
    parent_jti: str | None
    chain: tuple[str, ...]  # ancestors, root first
    identity_id: str
    actor_id: str | None
    depth: int
    scope: str
    issued_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    revoked_reason: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "jti": self.jti,
            "task_id": self.task_id,
            "parent_jti": self.parent_jti,
            "identity": self.identity_id,
            "actor": self.actor_id,
            "depth": self.depth,
            "scope": self.scope,
            "issued_at": self.issued_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "revoked_reason": self.revoked_reason,
        }


def _token_from_row(row: Mapping[Any, Any]) -> IssuedToken:
    return IssuedToken(
        jti=row["jti"],
        task_id=row["task_id"],
        parent_jti=row["parent_jti"],
        chain=tuple(row["chain"] or ()),
        identity_id=row["identity_id"],
        actor_id=row["actor_id"],
        depth=int(row["depth"]),
        scope=row["scope"],
        issued_at=utc(row["issued_at"]),
        expires_at=utc(row["expires_at"]),
        revoked_at=utc(row["revoked_at"]) if row["revoked_at"] else None,
        revoked_reason=row["revoked_reason"],
    )


def insert_token(
    connection: Connection,
    claims: TaskTokenClaims,
    *,
    kid: str,
    parent: IssuedToken | None,
) -> None:
    connection.execute(
        insert(issued_tokens).values(
            jti=claims.jti,
            task_id=claims.task_id,
            parent_jti=parent.jti if parent else None,
            chain=[*parent.chain, parent.jti] if parent else [],
            identity_id=claims.subject,
            actor_id=claims.actor,
            depth=claims.depth,
            scope=" ".join(claims.scope),
            audience=claims.audience,
            kid=kid,
            issued_at=datetime.fromtimestamp(claims.issued_at, UTC),
            expires_at=datetime.fromtimestamp(claims.expires_at, UTC),
        )
    )


def load_token(connection: Connection, jti: str) -> IssuedToken | None:
    row = (
        connection.execute(select(issued_tokens).where(issued_tokens.c.jti == jti))
        .mappings()
        .first()
    )
    return _token_from_row(row) if row else None


def tokens_of_task(connection: Connection, task_id: str) -> list[IssuedToken]:
    rows = connection.execute(
        select(issued_tokens)
        .where(issued_tokens.c.task_id == task_id)
        .order_by(issued_tokens.c.issued_at, issued_tokens.c.jti)
    ).mappings()
    return [_token_from_row(r) for r in rows]


def live_tokens_of_tasks(
    engine: Engine, task_ids: Collection[str], *, now: datetime, limit: int = 200
) -> list[IssuedToken]:
    """The tokens of ``task_ids`` neither revoked nor expired at ``now``, newest first."""
    if not task_ids:
        return []
    query = (
        select(issued_tokens)
        .where(
            issued_tokens.c.task_id.in_(list(task_ids)),
            issued_tokens.c.revoked_at.is_(None),
            issued_tokens.c.expires_at > now,
        )
        .order_by(issued_tokens.c.issued_at.desc(), issued_tokens.c.jti)
        .limit(limit)
    )
    with engine.connect() as connection:
        return [_token_from_row(r) for r in connection.execute(query).mappings()]


def revoke_token(
    engine: Engine, jti: str, *, actor: str, reason: str, now: datetime
) -> tuple[IssuedToken, ...]:
    """Revoke a token and every token delegated from it; the tokens revoked now."""
    with engine.begin() as connection:
        token = load_token(connection, jti)
        if token is None:
            return ()
        family = [
            t
            for t in tokens_of_task(connection, token.task_id)
            if (t.jti == jti or jti in t.chain) and t.revoked_at is None
        ]
        if not family:
            return ()
        revoked = tuple(t.jti for t in family)
        connection.execute(
            update(issued_tokens)
            .where(issued_tokens.c.jti.in_(revoked))
            .values(revoked_at=now, revoked_reason=reason[:200])
        )
        _add_revocations(
            connection,
            [("token", t.jti, t.expires_at + REMEMBER_PAST_EXPIRY) for t in family],
            reason=reason,
            actor=actor,
            now=now,
        )
        record_event(
            connection,
            actor=actor,
            action="token.revoke",
            target=jti,
            details={"task": token.task_id, "reason": reason, "revoked": list(revoked)},
            at=now,
        )
    return tuple(family)


def longest_outstanding(engine: Engine, now: datetime) -> datetime | None:
    """When the last token that is neither expired nor revoked expires."""
    with engine.connect() as connection:
        value = connection.execute(
            select(func.max(issued_tokens.c.expires_at)).where(
                issued_tokens.c.revoked_at.is_(None), issued_tokens.c.expires_at > now
            )
        ).scalar()
    return utc(value) if value is not None else None


# --- revocations ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Revocation:
    kind: str  # token | task
    target: str
    until: datetime


def _add_revocations(
    connection: Connection,
    entries: Iterable[tuple[str, str, datetime]],
    *,
    reason: str,
    actor: str,
    now: datetime,
) -> None:
    rows = [
        {
            "kind": kind,
            "target": target,
            "at": now,
            "until": until,
            "reason": reason[:200],
            "actor": actor[:200],
        }
        for kind, target, until in entries
    ]
    if rows:
        connection.execute(insert(revocations), rows)
        bump_version(connection)


def bump_version(connection: Connection) -> None:
    """Tell every server its revoked set is stale (commits with the revocations)."""
    result = connection.execute(
        update(revocation_version)
        .where(revocation_version.c.id == 1)
        .values(version=revocation_version.c.version + 1)
    )
    if result.rowcount == 0:
        connection.execute(insert(revocation_version).values(id=1, version=1))


def active_revocations(connection: Connection, now: datetime) -> list[Revocation]:
    """Revocations of what has not expired yet (older ones no longer matter)."""
    rows = connection.execute(
        select(revocations.c.kind, revocations.c.target, revocations.c.until).where(
            revocations.c.until > now
        )
    )
    return [Revocation(r.kind, r.target, utc(r.until)) for r in rows]


VERSION_SQL = "SELECT version FROM revocation_version WHERE id = 1"
