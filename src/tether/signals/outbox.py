"""The outbox: emitted events and their deliveries, in the store.

Writing an event and one delivery row per interested receiver happens in one
transaction, with its audit row, so a SET is either queued for every receiver or for
none. Push senders *claim* a due delivery with a compare-and-set on ``attempts`` (and
push ``next_attempt_at`` out by a lease), so two replicas never send the same attempt
and a sender that dies mid-attempt is retried once the lease runs out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, insert, select, update

from tether.signals.receivers import PUSH, Receiver
from tether.signals.set_token import SecurityEvent
from tether.store.audit import record_audit
from tether.store.signal_tables import signal_deliveries, signal_events, signal_receivers

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"
CANCELLED = "cancelled"


@dataclass(frozen=True)
class DueDelivery:
    """A push delivery whose time has come, with what sending it needs."""

    id: int
    attempts: int
    receiver_id: str
    endpoint_url: str
    audience: str
    auth_token_enc: str | None
    event: SecurityEvent


def enqueue(
    connection: Connection,
    event: SecurityEvent,
    receivers: Iterable[Receiver],
    *,
    now: datetime,
    actor: str,
) -> int:
    """Store an event and queue it for ``receivers``; how many deliveries were queued."""
    connection.execute(
        insert(signal_events).values(
            jti=event.jti,
            event_type=event.event_type,
            sub_id=dict(event.sub_id),
            txn=event.txn,
            payload=dict(event.payload),
            issued_at=now,  # full precision: the listing's order is the emitting order
        )
    )
    rows = [
        {
            "jti": event.jti,
            "receiver_id": r.id,
            "status": PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "last_error": None,
            "created_at": now,
            "finished_at": None,
        }
        for r in receivers
    ]
    if rows:
        connection.execute(insert(signal_deliveries), rows)
    record_audit(
        connection,
        actor=actor,
        action="signals.emit",
        target=event.jti,
        details={
            "event_type": event.event_type,
            "sub_id": dict(event.sub_id),
            "txn": event.txn,
            "receivers": [r["receiver_id"] for r in rows],
        },
        at=now,
    )
    return len(rows)


def _event(row: Mapping[Any, Any]) -> SecurityEvent:
    issued = row["issued_at"]
    issued = issued if issued.tzinfo else issued.replace(tzinfo=UTC)
    return SecurityEvent(
        jti=row["jti"],
        event_type=row["event_type"],
        sub_id=row["sub_id"],
        payload=row["payload"],
        issued_at=int(issued.timestamp()),
        txn=row["txn"],
    )


def due_push(engine: Engine, now: datetime, limit: int) -> list[DueDelivery]:
    d, r, e = signal_deliveries, signal_receivers, signal_events
    query = (
        select(
            d.c.id,
            d.c.attempts,
            d.c.receiver_id,
            r.c.endpoint_url,
            r.c.audience,
            r.c.auth_token_enc,
            e,
        )
        .select_from(d.join(r, r.c.id == d.c.receiver_id).join(e, e.c.jti == d.c.jti))
        .where(
            d.c.status == PENDING,
            d.c.next_attempt_at <= now,
            r.c.delivery == PUSH,
            r.c.removed_at.is_(None),
        )
        .order_by(d.c.next_attempt_at, d.c.id)
        .limit(limit)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).mappings().all()
    return [
        DueDelivery(
            id=row["id"],
            attempts=row["attempts"],
            receiver_id=row["receiver_id"],
            endpoint_url=row["endpoint_url"],
            audience=row["audience"],
            auth_token_enc=row["auth_token_enc"],
            event=_event(row),
        )
        for row in rows
    ]


def claim(engine: Engine, due: DueDelivery, *, lease_until: datetime) -> bool:
    """Take one attempt of a delivery; ``False`` if another sender took it first."""
    with engine.begin() as connection:
        taken = connection.execute(
            update(signal_deliveries)
            .where(
                signal_deliveries.c.id == due.id,
                signal_deliveries.c.status == PENDING,
                signal_deliveries.c.attempts == due.attempts,
            )
            .values(attempts=due.attempts + 1, next_attempt_at=lease_until)
        ).rowcount
    return bool(taken)


def settle(
    engine: Engine,
    delivery_id: int,
    *,
    status: str,
    now: datetime,
    error: str | None = None,
    retry_at: datetime | None = None,
    audit: Mapping[str, Any] | None = None,
) -> None:
    """Record the outcome of an attempt: finished (``status``) or retried at ``retry_at``."""
    values: dict[str, Any] = {"status": status, "last_error": error}
    if retry_at is not None:
        values["next_attempt_at"] = retry_at
    if status != PENDING:
        values["finished_at"] = now
    with engine.begin() as connection:
        connection.execute(
            update(signal_deliveries).where(signal_deliveries.c.id == delivery_id).values(**values)
        )
        if audit is not None:
            record_audit(
                connection,
                actor="tether",
                action="signals.delivery.failed",
                target=str(audit.get("jti", delivery_id)),
                details=dict(audit),
                at=now,
            )


# --- poll (RFC 8936) -----------------------------------------------------------------------


def acknowledge(
    connection: Connection,
    receiver_id: str,
    acks: Sequence[str],
    errors: Mapping[str, Mapping[str, str]],
    *,
    now: datetime,
) -> None:
    """Mark acknowledged SETs delivered and those the receiver reported failed."""
    d = signal_deliveries
    mine = and_(d.c.receiver_id == receiver_id, d.c.status == PENDING)
    if acks:
        connection.execute(
            update(d)
            .where(mine, d.c.jti.in_(list(acks)))
            .values(status=DELIVERED, finished_at=now, last_error=None)
        )
    for jti, error in errors.items():
        text = f"{error.get('err', '')}: {error.get('description', '')}".strip(": ")
        connection.execute(
            update(d)
            .where(mine, d.c.jti == jti)
            .values(status=FAILED, finished_at=now, last_error=f"receiver: {text}"[:2000])
        )


def fetch_for_poll(
    connection: Connection,
    receiver_id: str,
    *,
    now: datetime,
    limit: int,
    redeliver_at: datetime,
) -> tuple[list[SecurityEvent], bool]:
    """Up to ``limit`` SETs due for a poll stream, oldest first, hidden until
    ``redeliver_at`` unless acknowledged; and whether more are available."""
    d, e = signal_deliveries, signal_events
    due = and_(d.c.receiver_id == receiver_id, d.c.status == PENDING, d.c.next_attempt_at <= now)
    rows = (
        connection.execute(
            select(d.c.id, e)
            .select_from(d.join(e, e.c.jti == d.c.jti))
            .where(due)
            .order_by(d.c.id)
            .limit(limit + 1)
        )
        .mappings()
        .all()
    )
    more = len(rows) > limit
    rows = rows[:limit]
    if rows:
        connection.execute(
            update(d)
            .where(d.c.id.in_([row["id"] for row in rows]))
            .values(attempts=d.c.attempts + 1, next_attempt_at=redeliver_at)
        )
    return [_event(row) for row in rows], more


# --- reading -----------------------------------------------------------------------------


@dataclass(frozen=True)
class EventRecord:
    """An emitted event and how its deliveries stand (never a token)."""

    jti: str
    event_type: str
    sub_id: Mapping[str, Any]
    txn: str | None
    issued_at: datetime
    deliveries: tuple[Mapping[str, Any], ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "jti": self.jti,
            "event_type": self.event_type,
            "sub_id": dict(self.sub_id),
            "txn": self.txn,
            "issued_at": self.issued_at.isoformat(),
            "deliveries": [dict(d) for d in self.deliveries],
        }


def recent_events(engine: Engine, *, limit: int = 50) -> list[EventRecord]:
    e, d, r = signal_events, signal_deliveries, signal_receivers
    with engine.connect() as connection:
        events = (
            connection.execute(select(e).order_by(e.c.issued_at.desc(), e.c.jti).limit(limit))
            .mappings()
            .all()
        )
        jtis = [row["jti"] for row in events]
        by_jti: dict[str, list[dict[str, Any]]] = {jti: [] for jti in jtis}
        if jtis:
            deliveries = connection.execute(
                select(
                    d.c.jti,
                    d.c.receiver_id,
                    r.c.delivery,
                    d.c.status,
                    d.c.attempts,
                    d.c.last_error,
                    d.c.next_attempt_at,
                    d.c.finished_at,
                )
                .select_from(d.join(r, r.c.id == d.c.receiver_id))
                .where(d.c.jti.in_(jtis))
                .order_by(d.c.id)
            ).mappings()
            for row in deliveries:
                by_jti[row["jti"]].append(
                    {
                        "receiver": row["receiver_id"],
                        "delivery": row["delivery"],
                        "status": row["status"],
                        "attempts": row["attempts"],
                        "last_error": row["last_error"],
                        "next_attempt_at": _iso(row["next_attempt_at"])
                        if row["status"] == PENDING
                        else None,
                        "finished_at": _iso(row["finished_at"]),
                    }
                )
    return [
        EventRecord(
            jti=row["jti"],
            event_type=row["event_type"],
            sub_id=row["sub_id"],
            txn=row["txn"],
            issued_at=_utc(row["issued_at"]),
            deliveries=tuple(by_jti[row["jti"]]),
        )
        for row in events
    ]


def status_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(signal_deliveries.c.status, func.count()).group_by(signal_deliveries.c.status)
        ).all()
    return {str(status): int(count) for status, count in rows}


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _iso(value: datetime | None) -> str | None:
    return _utc(value).isoformat() if value else None
