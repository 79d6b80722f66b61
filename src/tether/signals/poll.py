"""Poll-based SET delivery (RFC 8936): the request a receiver sends and the answer.

Request ``{"maxEvents", "returnImmediately", "ack": [jti...], "setErrs": {jti: {"err",
"description"}}}``, every member optional. Acknowledgements and errors are applied first;
then up to ``maxEvents`` SETs are returned as ``{"sets": {jti: SET}, "moreAvailable"}``.
A SET returned but not acknowledged is returned again after a redelivery delay;
acknowledged ones never are. ``maxEvents: 0`` only acknowledges. With
``returnImmediately: false`` (the default, §2.4) the answer waits, boundedly, for a SET.
Members this version does not know are ignored, as RFC 8936 §2.4 extensions may add some.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tether.signals.errors import PollRequestInvalid

DEFAULT_MAX_EVENTS = 100
MAX_EVENTS_LIMIT = 1000
MAX_ACKS = 10_000
_MAX_JTI = 64


@dataclass(frozen=True)
class PollRequest:
    max_events: int = DEFAULT_MAX_EVENTS
    return_immediately: bool = False
    acks: tuple[str, ...] = ()
    set_errors: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @classmethod
    def from_json(cls, body: object) -> PollRequest:
        """Raises:
        PollRequestInvalid: naming the member that is wrong."""
        if not isinstance(body, Mapping):
            raise PollRequestInvalid("the poll request must be a JSON object")
        max_events = body.get("maxEvents", DEFAULT_MAX_EVENTS)
        if isinstance(max_events, bool) or not isinstance(max_events, int) or max_events < 0:
            raise PollRequestInvalid("`maxEvents` must be a whole number, 0 or more")
        immediately = body.get("returnImmediately", False)
        if not isinstance(immediately, bool):
            raise PollRequestInvalid("`returnImmediately` must be true or false")
        acks = body.get("ack", [])
        if not isinstance(acks, list) or not all(_is_jti(a) for a in acks):
            raise PollRequestInvalid("`ack` must be a list of SET `jti` strings")
        errors = body.get("setErrs", {})
        if not isinstance(errors, Mapping) or not all(_is_jti(k) for k in errors):
            raise PollRequestInvalid("`setErrs` must map SET `jti`s to `{err, description}`")
        checked: dict[str, dict[str, str]] = {}
        for jti, error in errors.items():
            if not isinstance(error, Mapping) or not isinstance(error.get("err"), str):
                raise PollRequestInvalid(f"`setErrs.{jti}` must be an object with `err`")
            description = error.get("description", "")
            checked[jti] = {
                "err": error["err"][:200],
                "description": description[:1000] if isinstance(description, str) else "",
            }
        if len(acks) + len(checked) > MAX_ACKS:
            raise PollRequestInvalid(f"acknowledge at most {MAX_ACKS} SETs per poll")
        return cls(min(max_events, MAX_EVENTS_LIMIT), immediately, tuple(acks), checked)


@dataclass(frozen=True)
class PollResult:
    sets: Mapping[str, str]
    more_available: bool

    def to_json(self) -> dict[str, Any]:
        return {"sets": dict(self.sets), "moreAvailable": self.more_available}


def _is_jti(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= _MAX_JTI
