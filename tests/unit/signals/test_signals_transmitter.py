"""Emitting SETs into the outbox and polling them (RFC 8417, RFC 8936), on both backends."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import ECKey, KeySet
from sqlalchemy import Engine, select

from signal_support import ISSUER
from tether.errors import Conflict
from tether.signals import (
    CREDENTIAL_CHANGE,
    SESSION_REVOKED,
    PollRequest,
    PollRequestInvalid,
    ReceiverInvalid,
    ReceiverNotFound,
    SignalInvalid,
    StreamNotFound,
    Transmitter,
    opaque,
    session_revoked,
)
from tether.store.signal_tables import signal_deliveries, signal_events
from tether.store.tables import audit_log
from tether.tokens import KeyRing

TransmitterFactory = Callable[..., Transmitter]


def header_of(token: str) -> dict[str, Any]:
    part = token.split(".")[0]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def verify(token: str, keys: KeyRing) -> dict[str, Any]:
    """Verify as a receiver would: against the published JWKS only."""
    decoded = jwt.decode(token, KeySet.import_key_set(keys.jwks()), algorithms=["ES256", "RS256"])
    return dict(decoded.claims)


def test_a_polled_set_is_a_signed_secevent_jwt_with_the_ssf_claims(
    make_transmitter: TransmitterFactory, keys: KeyRing
) -> None:
    transmitter = make_transmitter()
    transmitter.add_poll_receiver("pep-1", actor="test")
    jti = transmitter.emit(
        SESSION_REVOKED, opaque("task-7"), session_revoked(1700000000), txn="task-7"
    )
    result = transmitter.poll("pep-1", PollRequest(return_immediately=True))
    assert list(result.sets) == [jti]
    token = result.sets[jti]
    header = header_of(token)
    assert header["typ"] == "secevent+jwt"
    assert header["kid"] == keys.active().kid
    claims = verify(token, keys)
    assert claims["iss"] == ISSUER
    assert claims["jti"] == jti
    assert claims["aud"] == "pep-1"
    assert claims["txn"] == "task-7"
    assert claims["sub_id"] == {"format": "opaque", "id": "task-7"}
    assert claims["events"] == {SESSION_REVOKED: {"event_timestamp": 1700000000}}
    assert isinstance(claims["iat"], int)
    assert "exp" not in claims  # SSF 1.0: no `exp` in a SET


def test_the_same_claims_signed_by_a_key_not_in_the_jwks_do_not_verify(
    make_transmitter: TransmitterFactory, keys: KeyRing
) -> None:
    transmitter = make_transmitter()
    transmitter.add_poll_receiver("pep-1", actor="test")
    transmitter.emit(SESSION_REVOKED, opaque("t"), {})
    token = next(
        iter(transmitter.poll("pep-1", PollRequest(return_immediately=True)).sets.values())
    )
    impostor = ECKey.generate_key("P-256", parameters={"kid": keys.active().kid})
    resigned = jwt.encode(header_of(token), verify(token, keys), impostor)
    with pytest.raises(BadSignatureError):
        verify(resigned, keys)


def test_emit_queues_one_delivery_per_interested_receiver_and_audits(
    make_transmitter: TransmitterFactory, store: Engine
) -> None:
    transmitter = make_transmitter()
    everything = transmitter.add_push_receiver("https://rp.example/events", actor="admin-1")
    keys_only = transmitter.add_push_receiver(
        "https://keys.example/events", events=["credential-change"], actor="admin-1"
    )
    jti = transmitter.emit(SESSION_REVOKED, opaque("t-1"), {})
    with store.connect() as connection:
        queued = connection.execute(
            select(signal_deliveries.c.receiver_id, signal_deliveries.c.status).where(
                signal_deliveries.c.jti == jti
            )
        ).all()
        event = connection.execute(select(signal_events).where(signal_events.c.jti == jti)).one()
        actions = connection.execute(select(audit_log.c.action, audit_log.c.target)).all()
    assert queued == [(everything.id, "pending")]
    assert event.event_type == SESSION_REVOKED
    assert ("signals.receiver.add", keys_only.id) in actions
    assert ("signals.emit", jti) in actions
    second = transmitter.emit(
        CREDENTIAL_CHANGE,
        {"format": "uri", "uri": ISSUER},
        {"credential_type": "jwk", "change_type": "create"},
    )
    records = {r.jti: r for r in transmitter.recent()}
    assert {d["receiver"] for d in records[second].deliveries} == {everything.id, keys_only.id}
    assert all("token" not in d for d in records[second].deliveries)


def test_emit_refuses_a_bad_event_and_stores_nothing(
    make_transmitter: TransmitterFactory, store: Engine
) -> None:
    transmitter = make_transmitter()
    with pytest.raises(SignalInvalid):
        transmitter.emit(SESSION_REVOKED, {"format": "opaque"}, {})
    with pytest.raises(SignalInvalid):
        transmitter.emit("session-revoked", opaque("x"), {})
    with store.connect() as connection:
        assert connection.execute(select(signal_events)).all() == []


def test_poll_acknowledged_sets_never_return_and_unacknowledged_ones_do_later(
    make_transmitter: TransmitterFactory, clock: Any
) -> None:
    transmitter = make_transmitter(clock=clock, poll_redeliver_s=30)
    transmitter.add_poll_receiver("pep-1", actor="test")
    jtis = [transmitter.emit(SESSION_REVOKED, opaque(f"t-{i}"), {}) for i in range(3)]

    first = transmitter.poll("pep-1", PollRequest(max_events=2, return_immediately=True))
    assert list(first.sets) == jtis[:2]
    assert first.more_available is True
    # Acknowledge the first; the second stays unacknowledged.
    second = transmitter.poll(
        "pep-1", PollRequest(max_events=10, return_immediately=True, acks=(jtis[0],))
    )
    assert list(second.sets) == [jtis[2]]
    assert second.more_available is False
    assert transmitter.poll("pep-1", PollRequest(return_immediately=True)).sets == {}

    clock.advance(31)
    again = transmitter.poll("pep-1", PollRequest(return_immediately=True, acks=(jtis[2],)))
    assert list(again.sets) == [jtis[1]]  # not acknowledged: redelivered; jtis[0] never
    clock.advance(31)
    last = transmitter.poll(
        "pep-1",
        PollRequest(
            return_immediately=True,
            set_errors={jtis[1]: {"err": "invalid_key", "description": "unknown kid"}},
        ),
    )
    assert last.sets == {}
    statuses = {d["status"] for r in transmitter.recent() if r.jti in jtis for d in r.deliveries}
    assert statuses == {"delivered", "failed"}
    failed = next(r for r in transmitter.recent() if r.jti == jtis[1]).deliveries[0]
    assert failed["last_error"] == "receiver: invalid_key: unknown kid"


def test_poll_streams_are_per_caller(make_transmitter: TransmitterFactory) -> None:
    transmitter = make_transmitter()
    transmitter.add_poll_receiver("pep-1", actor="test")
    transmitter.add_poll_receiver("pep-2", events=["credential-change"], actor="test")
    jti = transmitter.emit(SESSION_REVOKED, opaque("t"), {})
    assert list(transmitter.poll("pep-1", PollRequest(return_immediately=True)).sets) == [jti]
    assert transmitter.poll("pep-2", PollRequest(return_immediately=True)).sets == {}
    # Another caller cannot acknowledge pep-1's SET away.
    transmitter.poll("pep-2", PollRequest(return_immediately=True, acks=(jti,)))
    assert transmitter.recent()[0].deliveries[0]["status"] == "pending"
    with pytest.raises(StreamNotFound, match="tether signals receiver add --poll pep-3"):
        transmitter.poll("pep-3", PollRequest())
    with pytest.raises(Conflict):
        transmitter.add_poll_receiver("pep-1", actor="test")


def test_max_events_zero_only_acknowledges(make_transmitter: TransmitterFactory) -> None:
    transmitter = make_transmitter()
    transmitter.add_poll_receiver("pep-1", actor="test")
    jti = transmitter.emit(SESSION_REVOKED, opaque("t"), {})
    answer = transmitter.poll("pep-1", PollRequest(max_events=0))
    assert answer.sets == {}
    assert answer.more_available is True
    assert transmitter.poll("pep-1", PollRequest(max_events=0, acks=(jti,))).more_available is False


@pytest.mark.parametrize(
    ("body", "member"),
    [
        ([], "JSON object"),
        ({"maxEvents": -1}, "maxEvents"),
        ({"maxEvents": True}, "maxEvents"),
        ({"returnImmediately": "yes"}, "returnImmediately"),
        ({"ack": "jti-1"}, "ack"),
        ({"ack": [1]}, "ack"),
        ({"setErrs": {"j": "bad"}}, "setErrs.j"),
    ],
)
def test_malformed_poll_requests_name_the_member(body: object, member: str) -> None:
    with pytest.raises(PollRequestInvalid, match=member):
        PollRequest.from_json(body)


def test_poll_request_defaults_follow_rfc_8936() -> None:
    request = PollRequest.from_json({"maxEvents": 5000, "ignoredExtension": 1})
    assert request.return_immediately is False
    assert request.max_events == 1000  # capped
    assert request.acks == ()


def test_receivers_are_validated_removed_and_audited(
    make_transmitter: TransmitterFactory, store: Engine
) -> None:
    transmitter = make_transmitter()
    for url in ("ftp://rp.example/x", "https://user:pw@rp.example/x", "not a url"):
        with pytest.raises(ReceiverInvalid):
            transmitter.add_push_receiver(url, actor="admin")
    with pytest.raises(ReceiverInvalid, match="unknown event type `session-revokd`"):
        transmitter.add_push_receiver("https://rp.example/x", events=["session-revokd"], actor="a")
    receiver = transmitter.add_push_receiver("https://rp.example/x", token="s3cret", actor="a")
    assert receiver.has_token
    assert "s3cret" not in json.dumps(receiver.to_json())
    transmitter.emit(SESSION_REVOKED, opaque("t"), {})
    removed, cancelled = transmitter.remove_receiver(receiver.id, actor="admin")
    assert cancelled == 1
    assert removed.removed_at is not None
    assert transmitter.receivers() == []
    assert [r.id for r in transmitter.receivers(include_removed=True)] == [receiver.id]
    assert transmitter.recent()[0].deliveries[0]["status"] == "cancelled"
    with pytest.raises(ReceiverNotFound):
        transmitter.remove_receiver(receiver.id, actor="admin")
    with store.connect() as connection:
        audited = connection.execute(
            select(audit_log.c.details).where(audit_log.c.action == "signals.receiver.add")
        ).scalar_one()
    assert "s3cret" not in json.dumps(audited)
