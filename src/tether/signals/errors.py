"""Errors of the Shared Signals transmitter, each with a stable ``code``::

TetherError
├── InvalidRequest
│   ├── SignalInvalid          signal_invalid (an event type, subject or payload)
│   ├── ReceiverInvalid        receiver_invalid (a receiver's URL, token or events)
│   └── PollRequestInvalid     poll_request_invalid (an RFC 8936 poll body)
└── NotFound
    ├── ReceiverNotFound       receiver_not_found
    └── StreamNotFound         stream_not_found (no poll stream for the caller)
"""

from __future__ import annotations

from tether.errors import InvalidRequest, NotFound


class SignalInvalid(InvalidRequest):
    code = "signal_invalid"


class ReceiverInvalid(InvalidRequest):
    code = "receiver_invalid"


class PollRequestInvalid(InvalidRequest):
    code = "poll_request_invalid"


class ReceiverNotFound(NotFound):
    code = "receiver_not_found"


class StreamNotFound(NotFound):
    code = "stream_not_found"
