"""Security Event Tokens (RFC 8417) as the Shared Signals Framework 1.0 profiles them.

A SET is a JWS in compact form, header ``{"alg", "kid", "typ": "secevent+jwt"}``, signed
by tether's active key (the one ``/.well-known/jwks.json`` publishes). Its claims::

    iss     tether's issuer URL          iat     seconds since the epoch
    jti     the event's id               aud     the receiver (its configured audience)
    txn     the task id, when known      sub_id  RFC 9493 subject identifier
    events  {event-type URI: payload}    (exactly one event: RFC 8417 §2.2)

No ``exp`` (SSF 1.0 §4.1.8: an ``exp`` invites confusion with access tokens). One event
has one ``jti``; each receiver gets its own copy, signed with its own ``aud``, so a
receiver deduplicating on ``(iss, jti)`` sees every event once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tether.tokens import KeyRing

SET_TYP = "secevent+jwt"
SET_MEDIA_TYPE = "application/secevent+jwt"


@dataclass(frozen=True)
class SecurityEvent:
    """One emitted event, before it is addressed to a receiver."""

    jti: str
    event_type: str
    sub_id: Mapping[str, Any]
    payload: Mapping[str, Any]
    issued_at: int
    txn: str | None = None

    def claims(self, *, issuer: str, audience: str) -> dict[str, Any]:
        """The SET's claims for one receiver."""
        claims: dict[str, Any] = {
            "iss": issuer,
            "iat": self.issued_at,
            "jti": self.jti,
            "aud": audience,
            "sub_id": dict(self.sub_id),
            "events": {self.event_type: dict(self.payload)},
        }
        if self.txn is not None:
            claims["txn"] = self.txn
        return claims


def sign_set(keys: KeyRing, event: SecurityEvent, *, issuer: str, audience: str) -> str:
    """The compact JWS of the SET for one receiver, signed with the active key."""
    return keys.sign(event.claims(issuer=issuer, audience=audience), typ=SET_TYP)
