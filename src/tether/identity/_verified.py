"""The outcome of a verified workload proof (a value, never the token)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from tether.identity._spiffe_id import SpiffeId


@dataclass(frozen=True)
class VerifiedWorkload:
    """Who a verified JWT-SVID or OIDC token says the caller is.

    Attributes:
        kind: ``"spiffe"`` for a JWT-SVID, ``"oidc"`` for an OIDC token.
        spiffe_id: the SVID's SPIFFE ID (``None`` for OIDC).
        issuer: the trust domain's ID (``spiffe://example.org``) or the OIDC ``iss``.
        subject: the ``sub`` claim.
        audience: the audience the token was accepted for.
        expires_at: ``exp`` (UTC).
        kid: the key that verified the signature.
        alg: the signature algorithm.
        claims: every claim of the token (read-only).
        token_id: ``jti``, or ``sha256:`` and a prefix of the token's SHA-256.
    """

    kind: Literal["spiffe", "oidc"]
    spiffe_id: SpiffeId | None
    issuer: str
    subject: str
    audience: str
    expires_at: datetime
    kid: str | None
    alg: str
    claims: Mapping[str, Any] = field(hash=False, repr=False)
    token_id: str
