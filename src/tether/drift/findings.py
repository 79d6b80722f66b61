"""Stored findings: write them (idempotently, by stable id) and read them back with filters.

Findings are written in one transaction with the exception uses that shaped them. The
id is stable (:func:`tether.drift.scoring.finding_id_of`), so re-scanning the same
evidence stores nothing new. Reading pages by ``(at, finding_id)``, newest first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from types import MappingProxyType
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    bindparam,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from tether.drift.model import Finding, Mode, Severity
from tether.store.drift_tables import findings

SEVERITIES = tuple(s.value for s in Severity)


def finding_row(finding: Finding, recorded_at: datetime) -> dict[str, Any]:
    return {
        "finding_id": finding.finding_id,
        "at": finding.at,
        "recorded_at": recorded_at,
        "identity_id": finding.identity_id[:200],
        "task_id": finding.task_id,
        "detector": finding.detector,
        "severity": finding.severity.value,
        "score": finding.score,
        "deviation": finding.deviation,
        "sensitivity": finding.sensitivity,
        "blast_radius": finding.blast_radius,
        "reason": finding.reason,
        "resource": finding.resource,
        "evidence": list(finding.evidence),
        "details": _jsonable(finding.details),
        "frameworks": {k: list(v) for k, v in finding.frameworks.items()},
        "mode": finding.mode.value,
        "suppressed_by": finding.suppressed_by,
        "downgraded_from": finding.downgraded_from.value if finding.downgraded_from else None,
        "response": finding.response,
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict | MappingProxyType) or hasattr(value, "items"):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def insert_findings(connection: Connection, items: Sequence[Finding], recorded_at: datetime) -> int:
    """Insert findings not stored yet (same id = same finding); the number inserted."""
    if not items:
        return 0
    rows = [finding_row(f, recorded_at) for f in items]
    dialect = connection.dialect.name
    insert_fn = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert_fn(findings).on_conflict_do_nothing(index_elements=["finding_id"])
    result = connection.execute(statement, rows)
    return int(result.rowcount or 0)


#: ``findings.response`` of a live finding whose response is not carried out yet.
PENDING = "pending"
#: ... and of one a process took over after the one that found it did not respond.
RECOVERING = "recovering"


def set_responses(connection: Connection, responses: Sequence[tuple[str, str]]) -> None:
    """Record ``(finding id, response)`` pairs: one statement, run for each pair."""
    if responses:
        connection.execute(
            update(findings)
            .where(findings.c.finding_id == bindparam("finding"))
            .values(response=bindparam("chosen")),
            [{"finding": finding, "chosen": response} for finding, response in responses],
        )


def _owed_since_before(before: datetime) -> ColumnElement[bool]:
    row = findings.c
    return or_(
        and_(row.response == PENDING, row.recorded_at < before),
        and_(
            row.response == RECOVERING,
            or_(row.response_taken_at.is_(None), row.response_taken_at < before),
        ),
    )


def owed_responses(connection: Connection, before: datetime, limit: int) -> list[Finding]:
    """Findings whose response is owed since before ``before``, oldest first: stored as
    ``pending`` by a process that did not get to respond, or taken over (``recovering``)
    by one that did not either (it stopped or crashed in between)."""
    rows = connection.execute(
        select(findings)
        .where(_owed_since_before(before))
        .order_by(findings.c.recorded_at)
        .limit(limit)
    ).mappings()
    return [finding_from_row(r) for r in rows]


def take_over_response(
    connection: Connection, finding_id: str, before: datetime, at: datetime
) -> bool:
    """Mark a finding still owed since before ``before`` as ``recovering`` at ``at``
    (``at`` is after ``before``); whether this caller got it. Of several processes looking
    at once one does: the others' conditional updates no longer match."""
    taken = connection.execute(
        update(findings)
        .where(findings.c.finding_id == finding_id, _owed_since_before(before))
        .values(response=RECOVERING, response_taken_at=at)
    )
    return bool(taken.rowcount)


@dataclass(frozen=True, slots=True)
class FindingQuery:
    """Filters of a findings listing; ``severity`` is a minimum."""

    identity_id: str | None = None
    severity: Severity | None = None
    since: datetime | None = None
    detector: str | None = None
    include_suppressed: bool = True
    limit: int = 100
    before: tuple[datetime, str] | None = None  # paging cursor: (at, finding_id)


def query_findings(engine: Engine, query: FindingQuery) -> list[Finding]:
    """Findings matching ``query``, newest first, at most ``query.limit``."""
    statement = select(findings)
    if query.identity_id is not None:
        statement = statement.where(findings.c.identity_id == query.identity_id)
    if query.severity is not None:
        allowed = [s.value for s in Severity if s.rank >= query.severity.rank]
        statement = statement.where(findings.c.severity.in_(allowed))
    if query.since is not None:
        statement = statement.where(findings.c.at >= query.since)
    if query.detector is not None:
        statement = statement.where(findings.c.detector == query.detector)
    if not query.include_suppressed:
        statement = statement.where(findings.c.suppressed_by.is_(None))
    if query.before is not None:
        at, finding_id = query.before
        statement = statement.where(
            or_(findings.c.at < at, and_(findings.c.at == at, findings.c.finding_id < finding_id))
        )
    statement = statement.order_by(findings.c.at.desc(), findings.c.finding_id.desc()).limit(
        query.limit
    )
    with engine.connect() as connection:
        return [finding_from_row(r) for r in connection.execute(statement).mappings()]


def finding_from_row(row: Any) -> Finding:
    at = row["at"]
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return Finding(
        finding_id=row["finding_id"],
        at=at,
        identity_id=row["identity_id"],
        detector=row["detector"],
        severity=Severity(row["severity"]),
        score=float(row["score"]),
        deviation=float(row["deviation"]),
        sensitivity=float(row["sensitivity"]),
        blast_radius=float(row["blast_radius"]),
        reason=row["reason"],
        evidence=tuple(row["evidence"] or ()),
        task_id=row["task_id"],
        resource=row["resource"],
        details=row["details"] or {},
        suppressed_by=row["suppressed_by"],
        downgraded_from=Severity(row["downgraded_from"]) if row["downgraded_from"] else None,
        response=row["response"],
        frameworks={k: tuple(v) for k, v in (row["frameworks"] or {}).items()},
        mode=Mode(row["mode"]),
    )


def finding_json(finding: Finding) -> dict[str, Any]:
    """A finding as the CLI and the HTTP API show it: its stored row, for people."""
    shown = finding_row(finding, finding.at)
    del shown["recorded_at"], shown["identity_id"]
    return {
        "finding_id": finding.finding_id,
        "at": finding.at.isoformat(),
        "identity": finding.identity_id,
        **{k: v for k, v in shown.items() if k not in ("finding_id", "at")},
    }


@dataclass(frozen=True)
class DailyScore:
    """An identity's drift score on one day: its highest finding score, and how many."""

    day: date
    score: float
    findings: int


MAX_SCORED_FINDINGS = 100_000


def daily_scores(
    engine: Engine, identity_id: str, *, since: datetime, until: datetime
) -> list[DailyScore]:
    """The drift score of ``identity_id`` per UTC day from ``since`` to ``until`` (days
    without a finding are left out): the highest score of its findings that day, excepted
    ones not counted (what ``context.tether.behaviour.drift_score`` is over its window)."""
    statement = (
        select(findings.c.at, findings.c.score)
        .where(
            findings.c.identity_id == identity_id,
            findings.c.at >= since,
            findings.c.at <= until,
            findings.c.suppressed_by.is_(None),
        )
        .order_by(findings.c.at.desc())
        .limit(MAX_SCORED_FINDINGS)
    )
    days: dict[date, tuple[float, int]] = {}
    with engine.connect() as connection:
        for at, score in connection.execute(statement):
            day = (at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)).date()
            best, count = days.get(day, (0.0, 0))
            days[day] = (max(best, float(score)), count + 1)
    return [DailyScore(d, s, n) for d, (s, n) in sorted(days.items())]


def unexcepted_counts(engine: Engine) -> dict[str, int]:
    """How many findings no exception covers, per identity (one grouped count)."""
    statement = (
        select(findings.c.identity_id, func.count())
        .where(findings.c.suppressed_by.is_(None))
        .group_by(findings.c.identity_id)
    )
    with engine.connect() as connection:
        return {identity: int(n) for identity, n in connection.execute(statement)}
