"""Retention pruning of the event store, per data class (DESIGN "Audit chain").

A :class:`RetentionPolicy` keeps each data class for its own duration and every other
event (no class, or a class without a duration of its own) for the ``default`` duration;
with no default such events are kept for ever. An event is *expired* when it is older
than its class's retention.

**Only a prefix of the chain is pruned.** Events are chained in ``seq`` order, each row
naming its predecessor's hash; deleting expired rows wherever they are would punch holes
that verification could not tell from deletions without keeping a tombstone per pruned
row. Instead :func:`apply_retention` deletes every event up to the highest ``seq`` S such
that *every* event ``<= S`` is expired, and records a signed ``pruned`` checkpoint
"pruned up to S, whose hash was H" in the same transaction (holding the chain lock).
``tether audit verify`` then starts at S + 1 from H, so the remaining chain verifies end to
end, the pruned range is reported as pruned (signed, dated), and a row missing *after* S
is still a deletion. The price: an event with a longer retention holds back expired
events chained after it until it expires too; the plan reports how many are held back
and by which event, so nothing is kept silently. Pruning never deletes an event before
its retention ends.

Every applied prune is written to the audit log (``retention.apply``) in the same
transaction; a dry run computes the same plan and changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    delete,
    false,
    func,
    insert,
    or_,
    select,
    true,
)

from tether.errors import InvalidRequest
from tether.store.audit import record_audit
from tether.store.telemetry_tables import audit_checkpoints, event_chain_lock, events
from tether.telemetry.checkpoints import PRUNED, sign_checkpoint
from tether.tokens import KeyRing

_DURATION = re.compile(r"^\s*(\d{1,6})\s*([smhdwy])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400, "y": 365 * 86_400}


class RetentionInvalid(InvalidRequest):
    """A retention setting that cannot be read (a duration, a class name)."""

    code = "retention_invalid"


def parse_retention(text: str) -> timedelta:
    """A duration such as ``30d``, ``12h``, ``6w`` or ``7y`` (a year is 365 days).

    Raises:
        RetentionInvalid: ``text`` is not a positive duration.
    """
    found = _DURATION.match(text)
    if found is None or int(found.group(1)) == 0:
        raise RetentionInvalid(
            f"retention `{text}` is not a positive duration like `90d`, `12h`, `6w` or `7y`"
        )
    return timedelta(seconds=int(found.group(1)) * _UNIT_SECONDS[found.group(2)])


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long events are kept: per data class, else ``default`` (None: for ever)."""

    default: timedelta | None = None
    classes: Mapping[str, timedelta] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "default_seconds": None if self.default is None else int(self.default.total_seconds()),
            "classes": {k: int(v.total_seconds()) for k, v in sorted(self.classes.items())},
        }


@dataclass(frozen=True, slots=True)
class HeldBack:
    """The first event that is not expired, which keeps expired events after it."""

    seq: int
    data_class: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class RetentionResult:
    """What a retention run pruned (or, dry, would prune)."""

    dry_run: bool
    now: datetime
    pruned: int
    pruned_through: int | None
    previously_pruned_through: int | None
    expired: int
    held_back: int
    held_back_by: HeldBack | None

    def to_json(self) -> dict[str, Any]:
        by = self.held_back_by
        return {
            "dry_run": self.dry_run,
            "now": self.now.isoformat(),
            "pruned": self.pruned,
            "pruned_through": self.pruned_through,
            "previously_pruned_through": self.previously_pruned_through,
            "expired": self.expired,
            "held_back": self.held_back,
            "held_back_by": None
            if by is None
            else {"seq": by.seq, "data_class": by.data_class, "at": by.at.isoformat()},
        }


def apply_retention(
    engine: Engine,
    keys: KeyRing,
    policy: RetentionPolicy,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    actor: str = "cli",
) -> RetentionResult:
    """Prune the expired prefix of the chain (see the module doc); one transaction.

    Raises:
        RetentionInvalid: ``now`` is not timezone-aware.
    """
    moment = now or datetime.now(UTC)
    if moment.tzinfo is None:
        raise RetentionInvalid("`now` must be timezone-aware")
    sqlite = engine.dialect.name == "sqlite"
    keys.active()  # a first key is made now, not while the chain lock is held
    with engine.connect() as connection:
        _lock_chain(connection, sqlite)
        result = _plan(connection, policy, moment, sqlite, dry_run)
        if dry_run or result.pruned_through is None or result.pruned == 0:
            connection.rollback()
            return result
        through = result.pruned_through
        head = connection.execute(select(events.c.hash).where(events.c.seq == through)).scalar_one()
        connection.execute(delete(events).where(events.c.seq <= through))
        connection.execute(
            insert(audit_checkpoints).values(
                at=moment,
                last_event_seq=through,
                last_hash=head,
                kind=PRUNED,
                signature=sign_checkpoint(keys, through, head, PRUNED, moment),
            )
        )
        record_audit(
            connection,
            actor=actor,
            action="retention.apply",
            target="events",
            details={**result.to_json(), "policy": policy.to_json()},
            at=moment,
        )
        connection.commit()
    return result


def _lock_chain(connection: Connection, sqlite: bool) -> None:
    """Take the chain writer's lock (tether.telemetry.store) for this transaction."""
    if sqlite:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        connection.execute(
            select(event_chain_lock.c.id).where(event_chain_lock.c.id == 1).with_for_update()
        )


def _plan(
    connection: Connection, policy: RetentionPolicy, now: datetime, sqlite: bool, dry_run: bool
) -> RetentionResult:
    expired = _expired(policy, now, sqlite)
    first_kept = connection.execute(
        select(events.c.seq, events.c.data_class, events.c.at)
        .where(~expired)
        .order_by(events.c.seq)
        .limit(1)
    ).first()
    last_seq = connection.execute(select(func.max(events.c.seq))).scalar()
    if first_kept is not None:
        through: int | None = int(first_kept.seq) - 1
    else:
        through = None if last_seq is None else int(last_seq)
    pruned = 0
    if through is not None:
        pruned = connection.execute(
            select(func.count()).select_from(events).where(events.c.seq <= through)
        ).scalar_one()
    total_expired = connection.execute(
        select(func.count()).select_from(events).where(expired)
    ).scalar_one()
    previous = connection.execute(
        select(func.max(audit_checkpoints.c.last_event_seq)).where(
            audit_checkpoints.c.kind == PRUNED
        )
    ).scalar()
    held_back_by = None
    if first_kept is not None and total_expired > pruned:
        at = first_kept.at if first_kept.at.tzinfo else first_kept.at.replace(tzinfo=UTC)
        held_back_by = HeldBack(int(first_kept.seq), first_kept.data_class, at)
    return RetentionResult(
        dry_run=dry_run,
        now=now,
        pruned=int(pruned),
        pruned_through=through if pruned else None,
        previously_pruned_through=None if previous is None else int(previous),
        expired=int(total_expired),
        held_back=int(total_expired) - int(pruned),
        held_back_by=held_back_by,
    )


def _expired(policy: RetentionPolicy, now: datetime, sqlite: bool) -> ColumnElement[bool]:
    """Events older than their class's retention; never NULL (so ``~`` is exact)."""

    def cutoff(keep: timedelta) -> datetime:
        moment = now - keep
        # SQLite stores naive UTC text; compare like with like.
        return moment.astimezone(UTC).replace(tzinfo=None) if sqlite else moment

    clauses: list[ColumnElement[bool]] = [
        and_(events.c.data_class.is_not(None), events.c.data_class == name, events.c.at < cutoff(k))
        for name, k in sorted(policy.classes.items())
    ]
    if policy.default is not None:
        others = (
            or_(events.c.data_class.is_(None), events.c.data_class.not_in(sorted(policy.classes)))
            if policy.classes
            else true()
        )
        clauses.append(and_(others, events.c.at < cutoff(policy.default)))
    return or_(*clauses) if clauses else false()
