"""Shared Signals: tether as an SSF 1.0 transmitter of CAEP Security Event Tokens.

Other systems learn what tether did (a task ended, a token revoked, keys rotated, an
identity's risk changed) as Security Event Tokens (RFC 8417) signed with tether's keys,
pushed to configured receivers (RFC 8935) or polled by them (RFC 8936)::

    jti = tether.signals.emit(SESSION_REVOKED, opaque(task_id),
                              session_revoked(time.time()), txn=task_id)

One module per concern: ``events`` (CAEP event types, RFC 9493 subjects), ``set_token``
(the SET profile), ``receivers`` (streams), ``outbox`` (the store), ``push`` (RFC 8935),
``poll`` (RFC 8936), ``metadata`` (``/.well-known/ssf-configuration``), ``hooks``
(events from the token authority) and ``transmitter`` (the object services hold).
"""

from tether.signals.errors import (
    PollRequestInvalid,
    ReceiverInvalid,
    ReceiverNotFound,
    SignalInvalid,
    StreamNotFound,
)
from tether.signals.events import (
    CAEP,
    CREDENTIAL_CHANGE,
    EVENT_TYPES,
    RISK_LEVEL_CHANGE,
    SESSION_REVOKED,
    TOKEN_CLAIMS_CHANGE,
    credential_change,
    opaque,
    risk_level_change,
    session_revoked,
    token_claims_change,
)
from tether.signals.hooks import TokenSignals, attach
from tether.signals.metadata import POLL_METHOD, PUSH_METHOD, transmitter_metadata
from tether.signals.outbox import EventRecord, recent_events
from tether.signals.poll import PollRequest, PollResult
from tether.signals.receivers import (
    Receiver,
    add_poll_receiver,
    add_push_receiver,
    list_receivers,
    remove_receiver,
)
from tether.signals.set_token import SET_MEDIA_TYPE, SET_TYP, SecurityEvent
from tether.signals.transmitter import Transmitter

__all__ = [
    "CAEP",
    "CREDENTIAL_CHANGE",
    "EVENT_TYPES",
    "POLL_METHOD",
    "PUSH_METHOD",
    "RISK_LEVEL_CHANGE",
    "SESSION_REVOKED",
    "SET_MEDIA_TYPE",
    "SET_TYP",
    "TOKEN_CLAIMS_CHANGE",
    "EventRecord",
    "PollRequest",
    "PollRequestInvalid",
    "PollResult",
    "Receiver",
    "ReceiverInvalid",
    "ReceiverNotFound",
    "SecurityEvent",
    "SignalInvalid",
    "StreamNotFound",
    "TokenSignals",
    "Transmitter",
    "add_poll_receiver",
    "add_push_receiver",
    "attach",
    "credential_change",
    "list_receivers",
    "opaque",
    "recent_events",
    "remove_receiver",
    "risk_level_change",
    "session_revoked",
    "token_claims_change",
    "transmitter_metadata",
]
