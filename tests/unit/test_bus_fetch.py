"""Reading a delivered message's ack subject (tether.bus._fetch.delivery_of).

The worker reads a message's stream sequence from its ack subject itself; it must read
what nats-py's ``Msg.Metadata`` reads, in both forms a server sends. The fetcher's pull
requests run against the real server in tests/integration/test_event_bus.py.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nats.aio.msg import Msg
from nats.errors import NotJSMessageError

from tether.bus._fetch import Delivery, delivery_of
from tether.bus.errors import BusMessageInvalid

_NAMES = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1)
_COUNTS = st.integers(min_value=0, max_value=2**63 - 1)


def _metadata(ack_subject: str) -> Msg.Metadata:
    return Msg.Metadata._from_reply(ack_subject)


@given(_NAMES, _NAMES, _COUNTS, _COUNTS, _COUNTS, _COUNTS, _COUNTS)
def test_the_nine_token_form_reads_as_nats_py_reads_it(
    stream: str, consumer: str, delivered: int, sseq: int, cseq: int, ts: int, pending: int
) -> None:
    subject = f"$JS.ACK.{stream}.{consumer}.{delivered}.{sseq}.{cseq}.{ts}.{pending}"
    metadata = _metadata(subject)
    assert delivery_of(subject) == Delivery(metadata.sequence.stream, metadata.num_delivered)
    assert delivery_of(subject) == Delivery(sseq, delivered)


@given(
    st.sampled_from(["_", "hub"]),
    _NAMES,
    _NAMES,
    _NAMES,
    _COUNTS,
    _COUNTS,
    _COUNTS,
    _COUNTS,
    st.sampled_from(["", ".x7Kq2"]),
)
def test_the_form_with_domain_and_account_hash_reads_as_nats_py_reads_it(
    domain: str,
    account: str,
    stream: str,
    consumer: str,
    delivered: int,
    sseq: int,
    cseq: int,
    pending: int,
    random: str,
) -> None:
    subject = (
        f"$JS.ACK.{domain}.{account}.{stream}.{consumer}.{delivered}.{sseq}.{cseq}"
        f".1796685871671071580.{pending}{random}"
    )
    metadata = _metadata(subject)
    assert delivery_of(subject) == Delivery(metadata.sequence.stream, metadata.num_delivered)
    assert delivery_of(subject) == Delivery(sseq, delivered)


def test_a_subject_the_server_actually_sent_reads_as_nats_py_reads_it() -> None:
    subject = "$JS.ACK.TETHER_EVENTS.TETHER_EVENTS_p3.2.4711.12.1796685871671071580.0"
    assert delivery_of(subject) == Delivery(stream_seq=4711, delivered=2)
    assert _metadata(subject).sequence.stream == 4711


@pytest.mark.parametrize(
    "subject",
    [
        "",
        "_INBOX.abc.def",
        "$JS.ACK.S.C.1.2.3.4",  # a token short
        "$JS.ACK.S.C.1.2.3.4.5.6",  # ten tokens: neither form
        "$JS.NAK.S.C.1.2.3.4.5",
        "$JS.ACK.S.C.one.2.3.4.5",
    ],
)
def test_anything_else_is_refused_with_the_subject_named(subject: str) -> None:
    with pytest.raises(BusMessageInvalid, match="is not a JetStream ack subject"):
        delivery_of(subject)
    with pytest.raises((NotJSMessageError, ValueError)):
        _metadata(subject)
