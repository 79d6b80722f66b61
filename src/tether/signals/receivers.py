"""Receivers of tether's Security Event Tokens: who gets which events, and how.

A receiver is a stream (SSF 1.0 §8) configured by an administrator:

* ``push`` (RFC 8935): tether POSTs each SET to ``endpoint_url``, presenting the
  receiver's bearer token if it has one. The token is sealed with the master key at rest
  and never shown again.
* ``poll`` (RFC 8936): the caller ``poller`` (a PEP or an admin) fetches its SETs from
  ``POST /ssf/poll``; one poll stream per caller.

``events`` restricts the event types a receiver gets (CAEP short names such as
``session-revoked`` expand to their URI); empty means every type. Adding and removing
are admin actions, written to the audit log in the transaction that makes them.
Removing cancels what was still queued for the receiver and keeps its history.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, Engine, insert, select, update

from tether.errors import Conflict
from tether.signals.errors import ReceiverInvalid, ReceiverNotFound, SignalInvalid
from tether.signals.events import CAEP, EVENT_TYPES, check_event_type
from tether.store.audit import record_audit
from tether.store.signal_tables import signal_deliveries, signal_receivers
from tether.tokens.master_key import decrypt, encrypt

PUSH = "push"
POLL = "poll"
_MAX_TOKEN = 4096


@dataclass(frozen=True)
class Receiver:
    id: str
    delivery: str
    audience: str
    events: tuple[str, ...]
    created_at: datetime
    created_by: str
    endpoint_url: str | None = None
    poller: str | None = None
    has_token: bool = False
    removed_at: datetime | None = None

    def wants(self, event_type: str) -> bool:
        return not self.events or event_type in self.events

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "delivery": self.delivery,
            "endpoint_url": self.endpoint_url,
            "poller": self.poller,
            "audience": self.audience,
            "events": list(self.events),
            "has_token": self.has_token,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "removed_at": self.removed_at.isoformat() if self.removed_at else None,
        }


def receiver_from_row(row: Mapping[Any, Any]) -> Receiver:
    return Receiver(
        id=row["id"],
        delivery=row["delivery"],
        audience=row["audience"],
        events=tuple(row["events"] or ()),
        created_at=_utc(row["created_at"]),
        created_by=row["created_by"],
        endpoint_url=row["endpoint_url"],
        poller=row["poller"],
        has_token=row["auth_token_enc"] is not None,
        removed_at=_utc(row["removed_at"]) if row["removed_at"] else None,
    )


def event_types(names: Sequence[str] | None) -> tuple[str, ...]:
    """Event types by URI or CAEP short name (``session-revoked``)."""
    found: list[str] = []
    for name in names or ():
        uri = name if ":" in name else CAEP + name
        if ":" not in name and uri not in EVENT_TYPES:
            short = ", ".join(t.removeprefix(CAEP) for t in EVENT_TYPES)
            raise ReceiverInvalid(f"unknown event type `{name}` (one of {short}, or a URI)")
        try:
            check_event_type(uri)
        except SignalInvalid:
            raise ReceiverInvalid(f"event type `{name}` is not a URI") from None
        if uri not in found:
            found.append(uri)
    return tuple(found)


def check_endpoint(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ReceiverInvalid(f"receiver URL `{url}` must be an http(s) URL with a host")
    if parts.username or parts.password:
        raise ReceiverInvalid("put the receiver's credential in `--token`, not in its URL")
    if parts.fragment:
        raise ReceiverInvalid(f"receiver URL `{url}` must not have a fragment")
    return url


def add_push_receiver(
    engine: Engine,
    master_key: bytes,
    url: str,
    *,
    token: str | None = None,
    events: Sequence[str] | None = None,
    audience: str | None = None,
    actor: str,
) -> Receiver:
    """Configure a push receiver (RFC 8935).

    Raises:
        ReceiverInvalid: a bad URL, token or event type.
    """
    check_endpoint(url)
    types = event_types(events)
    if token is not None and (not token or len(token) > _MAX_TOKEN or not token.isprintable()):
        raise ReceiverInvalid(f"the receiver token must be 1 to {_MAX_TOKEN} printable characters")
    receiver_id = new_receiver_id()
    sealed = encrypt(master_key, token.encode(), context=receiver_id.encode()) if token else None
    return _insert(
        engine,
        {
            "id": receiver_id,
            "delivery": PUSH,
            "endpoint_url": url,
            "poller": None,
            "audience": audience or url,
            "events": list(types),
            "auth_token_enc": sealed,
        },
        actor=actor,
    )


def add_poll_receiver(
    engine: Engine,
    poller: str,
    *,
    events: Sequence[str] | None = None,
    audience: str | None = None,
    actor: str,
) -> Receiver:
    """Configure a poll stream (RFC 8936) for the caller identity ``poller``.

    Raises:
        ReceiverInvalid: a bad event type or caller id.
        Conflict: the caller already has a poll stream.
    """
    if not poller or len(poller) > 200:
        raise ReceiverInvalid("the polling caller must be an identity id of 1 to 200 characters")
    types = event_types(events)
    with engine.connect() as connection:
        if poll_receiver_of(connection, poller) is not None:
            raise Conflict(
                f"caller `{poller}` already has a poll stream; remove it first",
                code="receiver_exists",
            )
    return _insert(
        engine,
        {
            "id": new_receiver_id(),
            "delivery": POLL,
            "endpoint_url": None,
            "poller": poller,
            "audience": audience or poller,
            "events": list(types),
            "auth_token_enc": None,
        },
        actor=actor,
    )


def _insert(engine: Engine, values: dict[str, Any], *, actor: str) -> Receiver:
    now = datetime.now(UTC)
    row = {**values, "created_at": now, "created_by": actor[:200], "removed_at": None}
    with engine.begin() as connection:
        connection.execute(insert(signal_receivers).values(**row))
        details = {k: v for k, v in values.items() if k not in ("id", "auth_token_enc")}
        details["has_token"] = values["auth_token_enc"] is not None
        record_audit(
            connection,
            actor=actor,
            action="signals.receiver.add",
            target=values["id"],
            details=details,
            at=now,
        )
    return receiver_from_row(row)


def remove_receiver(engine: Engine, receiver_id: str, *, actor: str) -> tuple[Receiver, int]:
    """Remove a receiver; its queued SETs are cancelled. Returns it and how many were.

    Raises:
        ReceiverNotFound: no active receiver with that id.
    """
    now = datetime.now(UTC)
    with engine.begin() as connection:
        row = (
            connection.execute(
                select(signal_receivers).where(
                    signal_receivers.c.id == receiver_id, signal_receivers.c.removed_at.is_(None)
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise ReceiverNotFound(
                f"no receiver `{receiver_id}` (see `tether signals receiver list`)"
            )
        connection.execute(
            update(signal_receivers)
            .where(signal_receivers.c.id == receiver_id)
            .values(removed_at=now)
        )
        cancelled = connection.execute(
            update(signal_deliveries)
            .where(
                signal_deliveries.c.receiver_id == receiver_id,
                signal_deliveries.c.status == "pending",
            )
            .values(status="cancelled", finished_at=now, last_error="receiver removed")
        ).rowcount
        record_audit(
            connection,
            actor=actor,
            action="signals.receiver.remove",
            target=receiver_id,
            details={"cancelled": cancelled},
            at=now,
        )
    return receiver_from_row({**row, "removed_at": now}), int(cancelled)


def list_receivers(engine: Engine, *, include_removed: bool = False) -> list[Receiver]:
    query = select(signal_receivers).order_by(signal_receivers.c.created_at)
    if not include_removed:
        query = query.where(signal_receivers.c.removed_at.is_(None))
    with engine.connect() as connection:
        return [receiver_from_row(r) for r in connection.execute(query).mappings()]


def active_receivers(connection: Connection) -> list[Receiver]:
    query = select(signal_receivers).where(signal_receivers.c.removed_at.is_(None))
    return [receiver_from_row(r) for r in connection.execute(query).mappings()]


def poll_receiver_of(connection: Connection, poller: str) -> Receiver | None:
    row = (
        connection.execute(
            select(signal_receivers).where(
                signal_receivers.c.poller == poller,
                signal_receivers.c.delivery == POLL,
                signal_receivers.c.removed_at.is_(None),
            )
        )
        .mappings()
        .first()
    )
    return receiver_from_row(row) if row else None


def receiver_token(master_key: bytes, receiver_id: str, sealed: str | None) -> str | None:
    """The bearer token a push receiver expects, unsealed."""
    if sealed is None:
        return None
    return decrypt(master_key, sealed, context=receiver_id.encode()).decode()


def new_receiver_id() -> str:
    return "rcv_" + secrets.token_hex(8)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
