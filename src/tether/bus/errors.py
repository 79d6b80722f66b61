"""Errors of the event bus: a bad ``--events`` URL, a NATS server out of reach, a message
that is not tether's."""

from __future__ import annotations

from tether.errors import InvalidRequest, TetherError


class BusConfigInvalid(InvalidRequest):
    """The bus settings cannot work (a bad URL, stream name or partition count)."""

    code = "events_config_invalid"


class BusUnavailable(TetherError):
    """The NATS server cannot be reached, or JetStream is not enabled on it."""

    code = "events_unavailable"


class BusMessageInvalid(TetherError):
    """A message on the stream is not a tether bus message."""

    code = "events_message_invalid"
