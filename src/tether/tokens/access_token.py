"""Task tokens as RFC 9068 JWT access tokens: the claims tether issues and how it reads them.

A task token is a JWS in compact form with header ``{"alg", "kid", "typ": "at+jwt"}``,
signed by tether's active key (ES256 by default, RS256 available). Its claims
(RFC 9068 §2.2, RFC 8693 §4, RFC 8417 for ``txn``)::

    iss        tether's issuer URL            sub, client_id   the identity id
    aud        tether's audience              iat, exp         seconds since the epoch
    jti        unique token id                scope            space-separated actions
    txn        the task id                    act              the delegation chain

``act`` nests (RFC 8693 §4.1): ``{"sub": <current actor>, "act": {"sub": <who delegated
to it>, ...}}``; its depth is the token's delegation depth.

:func:`verify_task_token` reads a token back, strictly and in this order, each failure
with its own code: the compact form (``tether.identity.parse_compact``: size, canonical
base64url, no duplicate members), the header (``alg``, ``kid`` and ``typ`` only; ``typ``
``at+jwt``; ``alg`` ES256 or RS256), an ES256 signature's low ``s``
(:mod:`tether.tokens.low_s`: no malleated twin), the signature by the tether key ``kid``
names (:class:`~tether.tokens.KeyRing`), then the claims. Whether the token was revoked or its
task ended is not a property of the token: :mod:`tether.tokens.cache` answers that.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tether.identity import parse_compact
from tether.tokens.errors import (
    TaskTokenExpired,
    TaskTokenNotYetValid,
    TokenAudienceMismatch,
    TokenClaimInvalid,
    TokenIssuerMismatch,
    TokenRejected,
)
from tether.tokens.keys import KeyRing
from tether.tokens.low_s import is_high_s

TOKEN_TYP = "at+jwt"  # noqa: S105 (a media type, not a secret)
SIGNING_ALGORITHMS = frozenset({"ES256", "RS256"})
HEADER_MEMBERS = frozenset({"alg", "kid", "typ"})
#: Clock skew tolerated between tether replicas for tether's own tokens.
LEEWAY_S = 5
MAX_ACT_DEPTH = 32
_MAX_TEXT = 400
# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+\Z")


@dataclass(frozen=True)
class TaskTokenClaims:
    """The claims of a task token, validated.

    Attributes:
        actors: the ``act`` chain, current actor first (empty when not delegated).
    """

    issuer: str
    subject: str
    audience: str
    task_id: str
    jti: str
    scope: tuple[str, ...]
    issued_at: int
    expires_at: int
    actors: tuple[str, ...] = ()

    @property
    def depth(self) -> int:
        """How many delegations separate this token from the task's own."""
        return len(self.actors)

    @property
    def actor(self) -> str | None:
        return self.actors[0] if self.actors else None

    def to_claims(self) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": self.subject,
            "client_id": self.subject,
            "aud": self.audience,
            "iat": self.issued_at,
            "exp": self.expires_at,
            "jti": self.jti,
            "scope": " ".join(self.scope),
            "txn": self.task_id,
        }
        act = nest_actors(self.actors)
        if act is not None:
            claims["act"] = act
        return claims


def nest_actors(actors: tuple[str, ...]) -> dict[str, Any] | None:
    """The RFC 8693 ``act`` claim for a chain of actors, current actor first."""
    act: dict[str, Any] | None = None
    for actor in reversed(actors):
        act = {"sub": actor} if act is None else {"sub": actor, "act": act}
    return act


def scope_problem(action: str) -> str | None:
    """Why an action name cannot be a scope token (RFC 6749 §3.3), or ``None``."""
    if SCOPE_TOKEN.match(action):
        return None
    return f"`{action}` cannot be an OAuth scope token (no spaces, quotes or backslashes)"


def sign_task_token(keys: KeyRing, claims: TaskTokenClaims) -> str:
    """The compact JWS of ``claims``, signed with the active key."""
    return keys.sign(claims.to_claims(), typ=TOKEN_TYP)


def verify_task_token(
    token: object, keys: KeyRing, *, issuer: str, audience: str, now: float
) -> TaskTokenClaims:
    """Verify a task token tether issued: form, header, signature, then claims.

    Raises:
        IdentityProofError: not a well-formed compact JWS (``token_malformed``,
            ``token_too_large``, ``json_serialization_not_allowed``).
        TokenRejected: the subclass or ``code`` names the failing check.
    """
    jws = parse_compact(token)
    _check_header(jws.header)
    assert isinstance(token, str | bytes)
    text = token if isinstance(token, str) else token.decode("ascii")
    verified = keys.verify(text, typ=TOKEN_TYP)
    # After the signature (a forgery by another key is `token_signature_invalid`): a valid
    # ES256 signature with a high `s` is the malleated twin of the one tether issued.
    if jws.header["alg"] == "ES256" and is_high_s(jws.signature):
        raise TokenRejected(
            "the ES256 signature has a high `s` (the malleated twin `(r, n-s)` of a "
            "signature): tether signs with low `s` only",
            code="token_signature_malleated",
        )
    # joserfc decodes the payload again; the claims checked are the ones signed, which
    # are the ones parse_compact read (canonical base64url has one decoding).
    return read_claims(verified, issuer=issuer, audience=audience, now=now)


def _check_header(header: Mapping[str, Any]) -> None:
    alg = header.get("alg")
    if alg not in SIGNING_ALGORITHMS:
        raise TokenRejected(
            f"`alg` {_shown(alg)} is not allowed for a task token; tether signs with "
            "ES256 or RS256",
            code="alg_not_allowed",
        )
    extra = sorted(set(header) - HEADER_MEMBERS)
    if extra:
        raise TokenRejected(
            f"header parameter {_shown(extra[0])} is not allowed in a task token",
            code="header_parameter_not_allowed",
        )
    if header.get("typ") != TOKEN_TYP:
        raise TokenRejected(
            f"token `typ` {_shown(header.get('typ'))} is not `{TOKEN_TYP}`: not a task token",
            code="token_type_invalid",
        )


def read_claims(
    claims: Mapping[str, Any], *, issuer: str, audience: str, now: float
) -> TaskTokenClaims:
    """Validate the claims of a verified task token.

    Raises:
        TokenRejected: the subclass names the failing check.
    """
    subject = _text(claims, "sub")
    if _text(claims, "client_id") != subject:
        raise TokenClaimInvalid("`client_id` must equal `sub` in a task token")
    iss = _text(claims, "iss")
    if iss != issuer:
        raise TokenIssuerMismatch(
            f"`iss` {_shown(iss)} is not this tether's issuer {_shown(issuer)} "
            "(a server and the CLI must share TETHER_ISSUER)"
        )
    aud = claims.get("aud")
    values = [aud] if isinstance(aud, str) else aud
    if not isinstance(values, list) or values != [audience]:
        raise TokenAudienceMismatch(
            f"`aud` {_shown(aud)} is not this tether's audience {_shown(audience)} alone"
        )
    issued_at = _seconds(claims, "iat")
    expires_at = _seconds(claims, "exp")
    if now > expires_at + LEEWAY_S:
        raise TaskTokenExpired(f"the task token expired at `{expires_at}` (`exp`)")
    if issued_at > now + LEEWAY_S:
        raise TaskTokenNotYetValid(f"the task token is issued in the future (`iat` {issued_at})")
    scope_text = claims.get("scope")
    if not isinstance(scope_text, str):
        raise TokenClaimInvalid("`scope` must be a string of space-separated actions")
    scope = tuple(scope_text.split(" ")) if scope_text else ()
    if any(not SCOPE_TOKEN.match(s) for s in scope):
        raise TokenClaimInvalid("`scope` is not a list of scope tokens separated by one space")
    return TaskTokenClaims(
        issuer=iss,
        subject=subject,
        audience=audience,
        task_id=_text(claims, "txn"),
        jti=_text(claims, "jti"),
        scope=scope,
        issued_at=issued_at,
        expires_at=expires_at,
        actors=_actors(claims.get("act")),
    )


def _actors(act: object) -> tuple[str, ...]:
    actors: list[str] = []
    while act is not None:
        if not isinstance(act, dict) or not set(act) <= {"sub", "act"}:
            raise TokenClaimInvalid("`act` must be an object with `sub` and an optional `act`")
        sub = act.get("sub")
        if not isinstance(sub, str) or not sub or len(sub) > _MAX_TEXT:
            raise TokenClaimInvalid("every `act` must name its actor in `sub`")
        actors.append(sub)
        if len(actors) > MAX_ACT_DEPTH:
            raise TokenClaimInvalid(f"`act` nests deeper than {MAX_ACT_DEPTH}")
        act = act.get("act")
    return tuple(actors)


def _text(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value or len(value) > _MAX_TEXT:
        raise TokenClaimInvalid(f"`{name}` must be a non-empty string in a task token")
    return value


def _seconds(claims: Mapping[str, Any], name: str) -> int:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**40:
        raise TokenClaimInvalid(f"`{name}` must be a NumericDate (whole seconds)")
    return value


def _shown(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    if len(text) > 80:
        text = text[:79] + "…"
    return f"`{text}`"
