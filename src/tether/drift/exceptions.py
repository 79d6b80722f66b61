"""Drift exceptions: owned, justified, scoped, expiring permissions to deviate.

An exception names an identity, a detector and optionally a resource pattern
(``type:id-glob``, :func:`tether.estate.parse_pattern`). While it is valid (the finding's
time is before ``expires_at``) a matching finding is suppressed, or lowered to
``downgrade_to`` when the exception says so; once expired it stops applying by itself,
nothing needs to remove it. Each use is logged in ``exception_uses``; every change
(add, expire) is in the audit log. Exceptions come from the estate (``origin = estate``,
owned by ``tether apply``) or from the CLI/API (``origin = cli``, left alone by apply).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from tether.drift.errors import ExceptionInvalid, ExceptionNotFound
from tether.drift.model import DETECTOR_NAMES, Finding, Severity
from tether.estate import ResourcePattern, glob_regex, parse_pattern
from tether.store.audit import record_audit
from tether.store.drift_tables import exception_uses
from tether.store.tables import exceptions, identities

CLI_ORIGIN = "cli"
MAX_JUSTIFICATION = 2000


@dataclass(frozen=True, slots=True)
class DriftException:
    """One exception as stored."""

    id: str
    identity_id: str
    detector: str
    resource_pattern: str | None
    owner: str
    justification: str
    expires_at: datetime
    origin: str
    created_at: datetime
    downgrade_to: Severity | None = None

    def valid_at(self, at: datetime) -> bool:
        return at < self.expires_at

    def matches(self, finding: Finding) -> bool:
        """Whether ``finding`` is in this exception's scope (validity aside)."""
        if finding.identity_id != self.identity_id or finding.detector != self.detector:
            return False
        if self.resource_pattern is None:
            return True
        if finding.resource is None:
            return False
        return _resource_matches(self.resource_pattern, finding.resource)

    def to_json(self, now: datetime | None = None) -> dict[str, Any]:
        moment = now or datetime.now(UTC)
        return {
            "id": self.id,
            "identity": self.identity_id,
            "detector": self.detector,
            "resource": self.resource_pattern,
            "owner": self.owner,
            "justification": self.justification,
            "expires_at": self.expires_at.isoformat(),
            "expired": not self.valid_at(moment),
            "origin": self.origin,
            "created_at": self.created_at.isoformat(),
            "downgrade_to": self.downgrade_to.value if self.downgrade_to else None,
        }


def _resource_matches(pattern_text: str, resource: str) -> bool:
    pattern = parse_pattern(pattern_text)
    if isinstance(pattern, ResourcePattern):
        resource_type, _, resource_id = resource.partition(":")
        if pattern.matches(resource_type, resource_id):
            return True
    # Resources that are not `type:id` (ARNs, URLs) match the pattern as a whole-string glob.
    return glob_regex(pattern_text).fullmatch(resource) is not None


@dataclass(frozen=True, slots=True)
class ExceptionUse:
    """An exception that applied to a finding: what it did."""

    exception_id: str
    effect: str  # suppress | downgrade


class ExceptionBook:
    """The exceptions in force, indexed by identity; applies them to findings."""

    def __init__(self, items: Sequence[DriftException]) -> None:
        self.items = tuple(items)
        self._by_identity: dict[str, list[DriftException]] = {}
        for item in self.items:
            self._by_identity.setdefault(item.identity_id, []).append(item)

    def apply(self, finding: Finding) -> tuple[Finding, ExceptionUse | None]:
        """``finding`` suppressed or downgraded by the first valid matching exception.

        A suppressing exception wins over a downgrading one.
        """
        candidates = [
            e
            for e in self._by_identity.get(finding.identity_id, ())
            if e.valid_at(finding.at) and e.matches(finding)
        ]
        if not candidates:
            return finding, None
        candidates.sort(key=lambda e: (e.downgrade_to is not None, e.id))
        chosen = candidates[0]
        if chosen.downgrade_to is None:
            return replace(finding, suppressed_by=chosen.id), ExceptionUse(chosen.id, "suppress")
        if chosen.downgrade_to.rank >= finding.severity.rank:
            return finding, None
        lowered = replace(
            finding,
            severity=chosen.downgrade_to,
            downgraded_from=finding.severity,
            suppressed_by=None,
            details={**finding.details, "downgraded_by": chosen.id},
        )
        return lowered, ExceptionUse(chosen.id, "downgrade")


# --- store ---------------------------------------------------------------------------------


def _from_row(row: Any) -> DriftException:
    return DriftException(
        id=row.id,
        identity_id=row.identity_id,
        detector=row.detector,
        resource_pattern=row.resource_pattern,
        owner=row.owner,
        justification=row.justification,
        expires_at=_aware(row.expires_at),
        origin=row.origin,
        created_at=_aware(row.created_at),
        downgrade_to=Severity(row.downgrade_to) if row.downgrade_to else None,
    )


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def load_exceptions(connection: Connection) -> list[DriftException]:
    return [_from_row(r) for r in connection.execute(select(exceptions))]


def list_exceptions(
    engine: Engine, *, now: datetime, expiring_within: timedelta | None = None
) -> list[DriftException]:
    """Every exception, those expiring within ``expiring_within`` first (soonest first),
    then the other valid ones, then the expired ones (most recent first)."""
    with engine.connect() as connection:
        items = load_exceptions(connection)
    horizon = now + (expiring_within or timedelta(0))

    def order(e: DriftException) -> tuple[int, float]:
        if not e.valid_at(now):
            return (2, -e.expires_at.timestamp())
        return (0 if e.expires_at <= horizon else 1, e.expires_at.timestamp())

    return sorted(items, key=order)


def add_exception(
    engine: Engine,
    *,
    identity_id: str,
    detector: str,
    owner: str,
    justification: str,
    expires_at: datetime,
    actor: str,
    now: datetime,
    resource_pattern: str | None = None,
    downgrade_to: str | None = None,
) -> DriftException:
    """Validate and store a CLI/API exception (``origin = cli``), with an audit row.

    Raises:
        ExceptionInvalid: a field is missing or wrong (the message says which).
    """
    problems: list[str] = []
    if not identity_id.strip():
        problems.append("`identity` is required")
    if detector not in DETECTOR_NAMES:
        problems.append(f"detector `{detector}` is not one of {', '.join(DETECTOR_NAMES)}")
    if not owner.strip() or len(owner) > 200:
        problems.append("`owner` is required (at most 200 characters)")
    if not justification.strip() or len(justification) > MAX_JUSTIFICATION:
        problems.append(f"`justification` is required (at most {MAX_JUSTIFICATION} characters)")
    expires = _aware(expires_at)
    if expires <= now:
        problems.append(f"`expires` `{expires.isoformat()}` is not in the future")
    if resource_pattern is not None:
        parsed = parse_pattern(resource_pattern)
        if isinstance(parsed, str):
            problems.append(parsed)
    lowered: Severity | None = None
    if downgrade_to is not None:
        try:
            lowered = Severity(downgrade_to)
        except ValueError:
            problems.append(f"`downgrade_to` `{downgrade_to}` is not a severity")
    with engine.begin() as connection:
        known = connection.execute(
            select(identities.c.id).where(identities.c.id == identity_id)
        ).first()
        if identity_id.strip() and known is None:
            problems.append(f"identity `{identity_id}` is not known")
        if problems:
            raise ExceptionInvalid("; ".join(problems))
        item = DriftException(
            id=f"exc_{uuid.uuid4().hex[:20]}",
            identity_id=identity_id,
            detector=detector,
            resource_pattern=resource_pattern,
            owner=owner.strip(),
            justification=justification.strip(),
            expires_at=expires,
            origin=CLI_ORIGIN,
            created_at=now,
            downgrade_to=lowered,
        )
        connection.execute(
            insert(exceptions).values(
                id=item.id,
                identity_id=item.identity_id,
                detector=item.detector,
                resource_pattern=item.resource_pattern,
                owner=item.owner,
                justification=item.justification,
                expires_at=item.expires_at,
                origin=item.origin,
                created_at=item.created_at,
                downgrade_to=lowered.value if lowered else None,
            )
        )
        record_audit(
            connection,
            actor=actor,
            action="exception.add",
            target=item.id,
            details=item.to_json(now),
            at=now,
        )
    return item


def expire_exception(
    engine: Engine, exception_id: str, *, actor: str, now: datetime
) -> DriftException:
    """End an exception now (it stays listed, expired), with an audit row.

    Raises:
        ExceptionNotFound: no such exception.
    """
    with engine.begin() as connection:
        row = connection.execute(select(exceptions).where(exceptions.c.id == exception_id)).first()
        if row is None:
            raise ExceptionNotFound(f"no exception `{exception_id}`")
        item = _from_row(row)
        if item.valid_at(now):
            connection.execute(
                update(exceptions).where(exceptions.c.id == exception_id).values(expires_at=now)
            )
            item = replace(item, expires_at=now)
        record_audit(
            connection,
            actor=actor,
            action="exception.expire",
            target=exception_id,
            details=item.to_json(now),
            at=now,
        )
    return item


def log_uses(
    connection: Connection, uses: Sequence[tuple[Finding, ExceptionUse]], at: datetime
) -> None:
    """Record that exceptions were used on findings (inside the findings' transaction)."""
    if uses:
        connection.execute(
            insert(exception_uses),
            [
                {
                    "at": at,
                    "exception_id": use.exception_id,
                    "finding_id": finding.finding_id,
                    "identity_id": finding.identity_id,
                    "effect": use.effect,
                }
                for finding, use in uses
            ],
        )
