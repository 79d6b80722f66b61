"""Locally issued admin tokens: short-lived JWTs for people on a single machine.

``tether admin token --user alice`` signs, with tether's own key ring (ES256 by default),
a JWT with header ``typ: tether-admin+jwt`` and claims ``iss``, ``aud``
(``tether:admin``), ``sub`` (a ``user`` identity), ``iat``, ``exp`` (at most 24 h later),
``jti`` and ``roles`` (people roles: approver, auditor, admin). The ``typ`` and the
audience keep it from ever passing for a task token and the other way round. The roles a
token grants are those it names *and* its user still holds, read again at every use.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeGuard

from tether.callers.errors import AdminTokenInvalid, CallerConfigInvalid
from tether.callers.roles import Role
from tether.tokens import KeyRing

ADMIN_TOKEN_TYPE = "tether-admin+jwt"  # noqa: S105 - a JOSE `typ`, not a secret
ADMIN_AUDIENCE = "tether:admin"
PEOPLE_ROLES = frozenset({Role.APPROVER, Role.AUDITOR, Role.ADMIN})
DEFAULT_TTL_S = 3600
MAX_TTL_S = 24 * 3600
_LEEWAY_S = 30


@dataclass(frozen=True)
class IssuedAdminToken:
    """A token just signed: ``token`` is shown to its user once and never stored."""

    token: str
    jti: str
    user: str
    roles: frozenset[Role]
    expires_at: datetime


@dataclass(frozen=True)
class AdminClaims:
    """The verified claims of an admin token."""

    user: str
    roles: frozenset[Role]
    jti: str
    expires_at: datetime


def issue_admin_token(
    keys: KeyRing,
    *,
    user: str,
    roles: Iterable[Role],
    ttl_s: int = DEFAULT_TTL_S,
    issuer: str,
    now: datetime | None = None,
) -> IssuedAdminToken:
    granted = frozenset(roles)
    if not granted or not granted <= PEOPLE_ROLES:
        raise CallerConfigInvalid(
            "an admin token carries people roles only (approver, auditor, admin), got "
            + (", ".join(f"`{r.value}`" for r in sorted(granted)) or "none")
        )
    if not 1 <= ttl_s <= MAX_TTL_S:
        raise CallerConfigInvalid(f"an admin token lives 1 s to 24 h, not {ttl_s} s")
    moment = now or datetime.now(UTC)
    issued_at = int(moment.timestamp())
    jti = uuid.uuid4().hex
    claims = {
        "iss": issuer,
        "aud": ADMIN_AUDIENCE,
        "sub": user,
        "iat": issued_at,
        "exp": issued_at + ttl_s,
        "jti": jti,
        "roles": sorted(r.value for r in granted),
    }
    token = keys.sign(claims, typ=ADMIN_TOKEN_TYPE)
    expires = datetime.fromtimestamp(issued_at + ttl_s, UTC)
    return IssuedAdminToken(token, jti, user, granted, expires)


def verify_admin_token(keys: KeyRing, token: str, *, now: datetime | None = None) -> AdminClaims:
    """Verify signature, type, audience, lifetime and roles of an admin token.

    Raises:
        TokenRejected: the signature, ``typ`` or ``kid`` is wrong (``tether.tokens`` codes).
        AdminTokenInvalid: a claim is missing, expired or out of bounds.
    """
    moment = now or datetime.now(UTC)
    claims = keys.verify(token, typ=ADMIN_TOKEN_TYPE, now=moment)
    current = moment.timestamp()
    sub, jti, exp, iat = claims.get("sub"), claims.get("jti"), claims.get("exp"), claims.get("iat")
    if claims.get("aud") != ADMIN_AUDIENCE:
        raise AdminTokenInvalid(f"admin token `aud` must be `{ADMIN_AUDIENCE}`")
    if not isinstance(sub, str) or not sub or not isinstance(jti, str) or not jti:
        raise AdminTokenInvalid("admin token needs `sub` and `jti` strings")
    if not _number(exp) or not _number(iat):
        raise AdminTokenInvalid(f"admin token `{jti}` needs numeric `exp` and `iat`")
    exp, iat = float(exp), float(iat)
    if exp <= current:
        raise AdminTokenInvalid(f"admin token `{jti}` has expired", code="admin_token_expired")
    if iat > current + _LEEWAY_S or exp - iat > MAX_TTL_S:
        raise AdminTokenInvalid(f"admin token `{jti}` has an impossible lifetime")
    roles = claims.get("roles")
    if not isinstance(roles, list) or not roles:
        raise AdminTokenInvalid(f"admin token `{jti}` names no roles")
    known = {r.value: r for r in PEOPLE_ROLES}
    if any(r not in known for r in roles):
        raise AdminTokenInvalid(f"admin token `{jti}` names roles that are not people roles")
    return AdminClaims(
        sub, frozenset(known[r] for r in roles), jti, datetime.fromtimestamp(exp, UTC)
    )


def _number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)
