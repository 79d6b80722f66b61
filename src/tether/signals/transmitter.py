"""The Shared Signals transmitter: emit SETs into the outbox, deliver them by push, serve polls.

:meth:`Transmitter.emit` validates the event, writes it with one delivery per
interested receiver (and an audit row) in one transaction, wakes the delivery thread and
returns the event's ``jti``: delivery is asynchronous. The delivery thread
(:meth:`Transmitter.start`, stopped by :meth:`Transmitter.close`) sends due push
deliveries, retrying transient failures with exponential backoff (``retry_base_s`` *
2^(attempt-1), at most ``retry_cap_s``) for at most ``max_attempts`` attempts. All of
that state is in the store, so a restarted server (or another replica) resumes it. It
also picks up SETs emitted by other processes (``tether keys rotate`` from the CLI)
within ``idle_s``.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Engine

from tether.signals import outbox, receivers
from tether.signals.errors import SignalInvalid, StreamNotFound
from tether.signals.events import check_event_type, check_payload, check_subject
from tether.signals.poll import PollRequest, PollResult
from tether.signals.push import push_set
from tether.signals.receivers import (
    Receiver,
    active_receivers,
    poll_receiver_of,
    receiver_token,
)
from tether.signals.set_token import SecurityEvent, sign_set
from tether.tokens import KeyRing, KeyWatch

log = logging.getLogger(__name__)


class Transmitter:
    """tether's SSF transmitter over one store; thread-safe.

    Args:
        engine: the store.
        keys: tether's signing keys (SETs verify against ``/.well-known/jwks.json``).
        issuer: ``iss`` of every SET (tether's public URL, as its tokens use).
        master_key: unseals push receivers' bearer tokens.
        transport: an httpx transport for push (tests); the network by default.
    """

    def __init__(
        self,
        engine: Engine,
        keys: KeyRing,
        *,
        issuer: str,
        master_key: bytes,
        retry_base_s: float = 1.0,
        retry_cap_s: float = 600.0,
        max_attempts: int = 12,
        lease_s: float = 60.0,
        poll_redeliver_s: float = 30.0,
        http_timeout_s: float = 5.0,
        idle_s: float = 1.0,
        batch: int = 20,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.engine = engine
        self.keys = keys
        self.issuer = issuer
        self._master = master_key
        self._key_watch = KeyWatch(engine, keys)
        self.retry_base_s = retry_base_s
        self.retry_cap_s = retry_cap_s
        self.max_attempts = max_attempts
        self.lease_s = lease_s
        self.poll_redeliver_s = poll_redeliver_s
        self._idle_s = idle_s
        self._batch = batch
        self._clock = clock
        self._http_timeout_s = http_timeout_s
        self._transport = transport
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    # --- emitting ------------------------------------------------------------------------

    def emit(
        self,
        event_type: str,
        subject: Mapping[str, Any],
        event: Mapping[str, Any],
        *,
        txn: str | None = None,
    ) -> str:
        """Queue a SET for every receiver that wants ``event_type``; return its ``jti``.

        Args:
            event_type: the event-type URI (``tether.signals.SESSION_REVOKED``...).
            subject: an RFC 9493 subject identifier, e.g. ``{"format": "opaque", "id": ...}``.
            event: the event's members (``event_timestamp`` is added when absent).
            txn: the transaction (task) the event belongs to, when known.

        Raises:
            SignalInvalid: the type, subject or payload is not well formed.
        """
        check_event_type(event_type)
        sub_id = check_subject(subject)
        payload = check_payload(event_type, event)
        now = self.now()
        payload.setdefault("event_timestamp", int(now.timestamp()))
        if txn is not None and (not isinstance(txn, str) or not txn or len(txn) > 400):
            raise SignalInvalid("`txn` must be a non-empty string (the task id)")
        security_event = SecurityEvent(
            jti=secrets.token_hex(16),
            event_type=event_type,
            sub_id=sub_id,
            payload=payload,
            issued_at=int(now.timestamp()),
            txn=txn,
        )
        with self.engine.begin() as connection:
            wanting = [r for r in active_receivers(connection) if r.wants(event_type)]
            outbox.enqueue(connection, security_event, wanting, now=now, actor="tether")
        self._wake.set()
        return security_event.jti

    def sign(self, event: SecurityEvent, audience: str) -> str:
        self._key_watch.refresh()
        return sign_set(self.keys, event, issuer=self.issuer, audience=audience)

    # --- receivers ------------------------------------------------------------------------

    def add_push_receiver(
        self,
        url: str,
        *,
        token: str | None = None,
        events: Sequence[str] | None = None,
        audience: str | None = None,
        actor: str,
    ) -> Receiver:
        """:func:`tether.signals.receivers.add_push_receiver`, sealing with this master key."""
        return receivers.add_push_receiver(
            self.engine,
            self._master,
            url,
            token=token,
            events=events,
            audience=audience,
            actor=actor,
        )

    def add_poll_receiver(
        self,
        poller: str,
        *,
        events: Sequence[str] | None = None,
        audience: str | None = None,
        actor: str,
    ) -> Receiver:
        return receivers.add_poll_receiver(
            self.engine, poller, events=events, audience=audience, actor=actor
        )

    def remove_receiver(self, receiver_id: str, *, actor: str) -> tuple[Receiver, int]:
        return receivers.remove_receiver(self.engine, receiver_id, actor=actor)

    def receivers(self, *, include_removed: bool = False) -> list[Receiver]:
        return receivers.list_receivers(self.engine, include_removed=include_removed)

    def recent(self, *, limit: int = 50) -> list[outbox.EventRecord]:
        """The latest events, newest first, with their deliveries (never a token)."""
        return outbox.recent_events(self.engine, limit=limit)

    # --- poll (RFC 8936) -------------------------------------------------------------------

    def poll(self, poller: str, request: PollRequest) -> PollResult:
        """Apply the acknowledgements of ``request``, then fetch (without waiting).

        Raises:
            StreamNotFound: ``poller`` has no poll stream.
        """
        now = self.now()
        with self.engine.begin() as connection:
            receiver = poll_receiver_of(connection, poller)
            if receiver is None:
                raise StreamNotFound(
                    f"caller `{poller}` has no poll stream; an administrator adds one with "
                    f"`tether signals receiver add --poll {poller}`"
                )
            outbox.acknowledge(connection, receiver.id, request.acks, request.set_errors, now=now)
        return self.fetch(poller, request.max_events)

    def fetch(self, poller: str, max_events: int) -> PollResult:
        """Up to ``max_events`` SETs for ``poller``'s stream, signed now."""
        if max_events == 0:
            return PollResult({}, self._has_pending(poller))
        now = self.now()
        redeliver = now + timedelta(seconds=self.poll_redeliver_s)
        with self.engine.begin() as connection:
            receiver = poll_receiver_of(connection, poller)
            if receiver is None:
                raise StreamNotFound(f"caller `{poller}` has no poll stream")
            events, more = outbox.fetch_for_poll(
                connection, receiver.id, now=now, limit=max_events, redeliver_at=redeliver
            )
        return PollResult({e.jti: self.sign(e, receiver.audience) for e in events}, more)

    def _has_pending(self, poller: str) -> bool:
        with self.engine.begin() as connection:
            receiver = poll_receiver_of(connection, poller)
            if receiver is None:
                return False
            _, more = outbox.fetch_for_poll(
                connection, receiver.id, now=self.now(), limit=0, redeliver_at=self.now()
            )
        return more

    # --- push (RFC 8935) ------------------------------------------------------------------

    def start(self) -> None:
        """Start the delivery thread (idempotent)."""
        with self._lock:
            if self._thread is None:
                self._stop.clear()
                self._thread = threading.Thread(
                    target=self._run, name="tether-signals", daemon=True
                )
                self._thread.start()

    def close(self) -> None:
        """Stop the delivery thread; an attempt in flight finishes (or times out) first."""
        with self._lock:
            thread, self._thread = self._thread, None
        self._stop.set()
        self._wake.set()
        if thread is not None:
            thread.join(timeout=self._http_timeout_s + 5)

    def _run(self) -> None:
        with httpx.Client(
            timeout=self._http_timeout_s, follow_redirects=False, transport=self._transport
        ) as client:
            while not self._stop.is_set():
                try:
                    sent = self.deliver_due(client)
                except Exception:  # the store may be away for a moment; try again later
                    log.exception("delivering security event tokens failed")
                    sent = 0
                if sent == 0:
                    self._wake.wait(self._idle_s)
                    self._wake.clear()

    def deliver_due(self, client: httpx.Client) -> int:
        """Send every push delivery that is due now (one batch); how many were attempted."""
        now = self.now()
        attempted = 0
        for due in outbox.due_push(self.engine, now, self._batch):
            if self._stop.is_set():
                break
            lease = self.now() + timedelta(seconds=self.lease_s)
            if not outbox.claim(self.engine, due, lease_until=lease):
                continue
            attempted += 1
            self._attempt(client, due)
        return attempted

    def _attempt(self, client: httpx.Client, due: outbox.DueDelivery) -> None:
        attempt = due.attempts + 1
        token = receiver_token(self._master, due.receiver_id, due.auth_token_enc)
        result = push_set(client, due.endpoint_url, token, self.sign(due.event, due.audience))
        now = self.now()
        if result.delivered:
            outbox.settle(self.engine, due.id, status=outbox.DELIVERED, now=now)
            return
        audit = {
            "jti": due.event.jti,
            "receiver": due.receiver_id,
            "attempts": attempt,
            "error": result.error,
        }
        if result.permanent or attempt >= self.max_attempts:
            error = result.error if result.permanent else f"gave up: {result.error}"
            log.warning("SET %s to receiver %s failed: %s", due.event.jti, due.receiver_id, error)
            outbox.settle(
                self.engine, due.id, status=outbox.FAILED, now=now, error=error, audit=audit
            )
            return
        delay = min(self.retry_cap_s, self.retry_base_s * 2 ** (attempt - 1))
        outbox.settle(
            self.engine,
            due.id,
            status=outbox.PENDING,
            now=now,
            error=result.error,
            retry_at=now + timedelta(seconds=delay),
        )
