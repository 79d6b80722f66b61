"""Push delivery (RFC 8935) to real local receivers: delivered, retried, refused, resumed."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import Engine, select

from signal_support import ISSUER, SetReceiver
from tether.signals import SESSION_REVOKED, Transmitter, opaque, session_revoked
from tether.store.signal_tables import signal_deliveries
from tether.store.tables import audit_log
from tether.tokens import KeyRing

TransmitterFactory = Callable[..., Transmitter]
ReceiverFactory = Callable[..., SetReceiver]


def delivery(transmitter: Transmitter, jti: str) -> dict[str, Any]:
    record = next(r for r in transmitter.recent() if r.jti == jti)
    (only,) = record.deliveries
    return dict(only)


def test_a_push_receiver_gets_a_verifiable_set_and_answers_202(
    make_transmitter: TransmitterFactory, receivers: ReceiverFactory, keys: KeyRing
) -> None:
    receiver = receivers(token="rcv-secret")
    transmitter = make_transmitter()
    transmitter.add_push_receiver(receiver.url, token="rcv-secret", actor="admin")
    jti = transmitter.emit(SESSION_REVOKED, opaque("task-9"), session_revoked(1), txn="task-9")
    with httpx.Client() as client:
        assert transmitter.deliver_due(client) == 1
    (got,) = receiver.received
    assert got.status == 202
    assert got.verified
    assert got.headers["content-type"] == "application/secevent+jwt"
    assert got.headers["accept"] == "application/json"
    assert got.header["typ"] == "secevent+jwt"
    assert got.claims["jti"] == jti
    assert got.claims["aud"] == receiver.url
    assert got.claims["iss"] == ISSUER
    assert got.claims["sub_id"] == {"format": "opaque", "id": "task-9"}
    assert delivery(transmitter, jti)["status"] == "delivered"
    with httpx.Client() as client:
        assert transmitter.deliver_due(client) == 0  # nothing sent twice


def test_a_wrong_receiver_token_is_a_permanent_failure(
    make_transmitter: TransmitterFactory, receivers: ReceiverFactory
) -> None:
    receiver = receivers(token="expected")
    transmitter = make_transmitter()
    transmitter.add_push_receiver(receiver.url, token="something-else", actor="admin")
    jti = transmitter.emit(SESSION_REVOKED, opaque("t"), {})
    with httpx.Client() as client:
        transmitter.deliver_due(client)
    state = delivery(transmitter, jti)
    assert state["status"] == "failed"
    assert state["last_error"].startswith("http 401 authentication_failed")


def test_503_then_202_is_retried_with_backoff(
    make_transmitter: TransmitterFactory, receivers: ReceiverFactory, clock: Any
) -> None:
    receiver = receivers(script=[503, 503])
    transmitter = make_transmitter(clock=clock, retry_base_s=10, retry_cap_s=15)
    transmitter.add_push_receiver(receiver.url, actor="admin")
    jti = transmitter.emit(SESSION_REVOKED, opaque("t"), {})
    with httpx.Client() as client:
        assert transmitter.deliver_due(client) == 1
        first = delivery(transmitter, jti)
        assert first["status"] == "pending"
        assert first["attempts"] == 1
        assert first["last_error"] == "http 503"
        assert first["next_attempt_at"] == (transmitter.now() + timedelta(seconds=10)).isoformat()
        assert transmitter.deliver_due(client) == 0  # not before its time
        clock.advance(10)
        assert transmitter.deliver_due(client) == 1
        second = delivery(transmitter, jti)
        assert second["next_attempt_at"] == (transmitter.now() + timedelta(seconds=15)).isoformat()
        clock.advance(15)
        assert transmitter.deliver_due(client) == 1
    assert [r.status for r in receiver.received] == [503, 503, 202]
    done = delivery(transmitter, jti)
    assert done["status"] == "delivered"
    assert done["attempts"] == 3


def test_a_400_is_recorded_as_failed_and_never_retried(
    make_transmitter: TransmitterFactory,
    receivers: ReceiverFactory,
    clock: Any,
    store: Engine,
) -> None:
    receiver = receivers(script=[400])
    transmitter = make_transmitter(clock=clock)
    transmitter.add_push_receiver(receiver.url, actor="admin")
    jti = transmitter.emit(SESSION_REVOKED, opaque("t"), {})
    with httpx.Client() as client:
        transmitter.deliver_due(client)
        clock.advance(3600)
        assert transmitter.deliver_due(client) == 0
    assert len(receiver.received) == 1
    state = delivery(transmitter, jti)
    assert state["status"] == "failed"
    assert state["last_error"] == "http 400 invalid_audience: not for us"
    with store.connect() as connection:
        audited = connection.execute(
            select(audit_log.c.target).where(audit_log.c.action == "signals.delivery.failed")
        ).scalars()
        assert list(audited) == [jti]


def test_an_unreachable_receiver_is_retried_until_the_attempts_run_out(
    make_transmitter: TransmitterFactory, clock: Any
) -> None:
    transmitter = make_transmitter(clock=clock, max_attempts=3, http_timeout_s=1)
    transmitter.add_push_receiver("http://127.0.0.1:9/nobody-listens", actor="admin")
    jti = transmitter.emit(SESSION_REVOKED, opaque("t"), {})
    with httpx.Client(timeout=1) as client:
        for _ in range(3):
            assert transmitter.deliver_due(client) == 1
            clock.advance(3600)
        assert transmitter.deliver_due(client) == 0
    state = delivery(transmitter, jti)
    assert state["status"] == "failed"
    assert state["attempts"] == 3
    assert state["last_error"].startswith("gave up: network: ConnectError")


def test_a_restarted_transmitter_resumes_the_retries(
    make_transmitter: TransmitterFactory, receivers: ReceiverFactory, clock: Any
) -> None:
    receiver = receivers(script=[503])
    before = make_transmitter(clock=clock)
    before.add_push_receiver(receiver.url, actor="admin")
    jti = before.emit(SESSION_REVOKED, opaque("t"), {})
    with httpx.Client() as client:
        before.deliver_due(client)
    before.close()
    clock.advance(5)
    after = make_transmitter(clock=clock)  # a new process on the same store
    with httpx.Client() as client:
        assert after.deliver_due(client) == 1
    assert [r.status for r in receiver.received] == [503, 202]
    assert delivery(after, jti)["attempts"] == 2


def test_a_claimed_attempt_is_not_sent_by_another_replica(
    make_transmitter: TransmitterFactory, receivers: ReceiverFactory, store: Engine
) -> None:
    receiver = receivers()
    one, two = make_transmitter(), make_transmitter()
    one.add_push_receiver(receiver.url, actor="admin")
    one.emit(SESSION_REVOKED, opaque("t"), {})
    from tether.signals import outbox

    (due,) = outbox.due_push(store, one.now(), 10)
    lease = one.now() + timedelta(seconds=60)
    assert outbox.claim(store, due, lease_until=lease)
    assert not outbox.claim(store, due, lease_until=lease)  # the second replica loses
    with httpx.Client() as client:
        assert two.deliver_due(client) == 0  # leased: not due
    assert receiver.received == []
    with store.connect() as connection:
        assert connection.execute(select(signal_deliveries.c.attempts)).scalar_one() == 1


def test_the_delivery_thread_sends_what_is_emitted_and_stops_cleanly(
    make_transmitter: TransmitterFactory, receivers: ReceiverFactory
) -> None:
    receiver = receivers(script=[503])
    transmitter = make_transmitter(retry_base_s=0.2, idle_s=0.1)
    transmitter.add_push_receiver(receiver.url, actor="admin")
    transmitter.start()
    jtis = [transmitter.emit(SESSION_REVOKED, opaque(f"t-{i}"), {}) for i in range(3)]
    receiver.wait_for(3)
    assert sorted(r.claims["jti"] for r in receiver.accepted()) == sorted(jtis)
    started = time.monotonic()
    transmitter.close()
    assert time.monotonic() - started < 2
    assert not any(t.name == "tether-signals" and t.is_alive() for t in _threads())


def _threads() -> list[Any]:
    import threading

    return threading.enumerate()
