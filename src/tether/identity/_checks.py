"""Checks shared by JWT-SVID and OIDC verification (RFC 7519 §4.1, §7.2; JWT-SVID.md §2 to 4).

Header checks run before any key is looked up; key selection and signature
verification follow; claim checks run on a verified payload only, so a forged
token learns nothing but ``signature_invalid``.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from tether.identity._algorithms import JWT_SVID_ALGORITHMS, key_fits, signature_valid
from tether.identity._compact import CompactJws
from tether.identity._jwks import JwkKeySet, PublicJwk
from tether.identity._trust import TokenRules
from tether.identity.errors import (
    AlgNotAllowed,
    AudienceMismatch,
    AudienceMultiple,
    ClaimInvalid,
    ClaimMissing,
    HeaderParameterNotAllowed,
    IssuedInFuture,
    KeyUseInvalid,
    KidMissing,
    KidUnknown,
    SignatureInvalid,
    TokenExpired,
    TokenMalformed,
    TokenNotYetValid,
    TypNotAllowed,
    shown,
)

ALLOWED_TYPS = frozenset({"JWT", "JOSE"})
_MAX_NUMERIC_DATE = 253402300799  # 9999-12-31T23:59:59Z, the last second datetime can hold
_MAX_JTI_LENGTH = 256


def now_seconds(now: datetime | None) -> float:
    """``now`` (timezone-aware) or the current time, as seconds since the epoch."""
    if now is None:
        return datetime.now(UTC).timestamp()
    if now.tzinfo is None:
        raise ValueError("`now` must be timezone-aware")
    return now.timestamp()


def check_alg(header: Mapping[str, Any], algorithms: Collection[str]) -> str:
    """``alg`` must be one of ``algorithms`` (all asymmetric); checked before any key lookup."""
    alg = header.get("alg")
    if alg is None:
        raise AlgNotAllowed(
            f"the header has no `alg`; one of {', '.join(sorted(algorithms))} is required"
        )
    if not isinstance(alg, str) or alg not in JWT_SVID_ALGORITHMS or alg not in algorithms:
        raise AlgNotAllowed(
            f"`alg` {shown(alg)} is not allowed; use one of {', '.join(sorted(algorithms))}"
        )
    return alg


def check_header(
    header: Mapping[str, Any], *, members: Collection[str], algorithms: Collection[str]
) -> tuple[str, str | None]:
    """Enforce ``alg``, the allowed members and ``typ``; return ``(alg, kid)``."""
    alg = check_alg(header, algorithms)
    extra = sorted(set(header) - set(members))
    if extra:
        raise HeaderParameterNotAllowed(
            f"header parameter {shown(extra[0])} is not allowed; "
            f"only {', '.join(f'`{m}`' for m in sorted(members))} may appear"
        )
    typ = header.get("typ")
    if "typ" in header and (not isinstance(typ, str) or typ not in ALLOWED_TYPS):
        raise TypNotAllowed(f"`typ` {shown(header['typ'])} is not allowed; use `JWT` or `JOSE`")
    kid = header.get("kid")
    if "kid" in header and (not isinstance(kid, str) or not kid):
        raise TokenMalformed(f"`kid` {shown(kid)} must be a non-empty string")
    return alg, kid


def select_keys(
    keys: JwkKeySet, *, kid: str | None, alg: str, rules: TokenRules, owner: str
) -> list[PublicJwk]:
    """The keys that may verify the token: the one named by ``kid``, or (if no kid is
    required and none is given) every key that fits ``alg``."""
    if kid is None:
        if rules.require_kid:
            raise KidMissing(f"the header has no `kid`, which {owner} requires")
        candidates = [key for key in keys if key_fits(alg, key)]
        if not candidates:
            raise KidUnknown(f"{owner} has no key for `alg` {shown(alg)}")
        return candidates
    if kid in keys.refused:
        raise KeyUseInvalid(
            f"key {shown(kid)} of {owner} has `use` {shown(keys.refused[kid])}; "
            "it cannot verify this token"
        )
    key = keys.get(kid)
    if key is None:
        raise KidUnknown(f"`kid` {shown(kid)} is not a key of {owner}")
    if key.alg is not None and key.alg != alg:
        raise AlgNotAllowed(f"key {shown(kid)} is for `alg` {shown(key.alg)}, not {shown(alg)}")
    if not key_fits(alg, key):
        raise AlgNotAllowed(
            f"key {shown(kid)} ({key.kty}{' ' + key.crv if key.crv else ''}) "
            f"cannot verify `alg` {shown(alg)}"
        )
    return [key]


def verify_signature(
    jws: CompactJws, alg: str, candidates: list[PublicJwk], *, owner: str
) -> PublicJwk:
    """The key whose signature checks out, or :class:`SignatureInvalid`."""
    for key in candidates:
        if signature_valid(alg, key, jws.signing_input, jws.signature):
            return key
    tried = ", ".join(shown(key.kid) for key in candidates)
    raise SignatureInvalid(f"the `{alg}` signature does not verify with key {tried} of {owner}")


def string_claim(claims: Mapping[str, Any], name: str) -> str:
    """A required, non-empty string claim."""
    if name not in claims:
        raise ClaimMissing(name)
    value = claims[name]
    if not isinstance(value, str) or not value:
        raise ClaimInvalid(name, f"`{name}` {shown(value)} must be a non-empty string")
    return value


def _numeric_date(claims: Mapping[str, Any], name: str) -> float | None:
    if name not in claims:
        return None
    value = claims[name]
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value <= _MAX_NUMERIC_DATE
    ):
        raise ClaimInvalid(name, f"`{name}` {shown(value)} is not a NumericDate (RFC 7519 §2)")
    return float(value)


def check_times(
    claims: Mapping[str, Any], *, now: float, leeway_s: float, require_iat: bool = False
) -> datetime:
    """Check ``exp`` (required), ``nbf`` and ``iat``; return the expiry."""
    exp = _numeric_date(claims, "exp")
    nbf = _numeric_date(claims, "nbf")
    iat = _numeric_date(claims, "iat")
    if exp is None:
        raise ClaimMissing("exp")
    if iat is None and require_iat:
        raise ClaimMissing("iat")
    if now > exp + leeway_s:
        raise TokenExpired(f"the token expired at {_iso(exp)} (`exp` {shown(claims['exp'])})")
    if nbf is not None and now + leeway_s < nbf:
        raise TokenNotYetValid(f"the token is not valid before {_iso(nbf)} (`nbf`)")
    if iat is not None and now + leeway_s < iat:
        raise IssuedInFuture(f"the token claims to be issued at {_iso(iat)} (`iat`), in the future")
    return datetime.fromtimestamp(exp, UTC)


def _iso(seconds: float) -> str:
    return f"`{datetime.fromtimestamp(seconds, UTC).isoformat()}`"


def check_audience(claims: Mapping[str, Any], *, audience: str, rules: TokenRules) -> str:
    """``aud`` must hold ``audience``; several values only if the rules allow it."""
    if "aud" not in claims:
        raise ClaimMissing("aud")
    aud = claims["aud"]
    values = [aud] if isinstance(aud, str) else aud
    if (
        not isinstance(values, list)
        or not values
        or not all(isinstance(value, str) and value for value in values)
    ):
        raise ClaimInvalid("aud", f"`aud` {shown(aud)} must be a string or a list of strings")
    if audience not in values:
        raise AudienceMismatch(
            f"`aud` {shown(aud)} does not include this service's audience {shown(audience)}"
        )
    if len(values) > 1 and not rules.allow_multiple_audiences:
        raise AudienceMultiple(
            f"`aud` holds {len(values)} audiences; tether accepts a token for it alone "
            "(JWT-SVID.md §7.2: a token for several audiences can be replayed among them)"
        )
    return audience


def token_id(jws: CompactJws) -> str:
    """``jti`` when usable, else a SHA-256 prefix of the token."""
    jti = jws.claims.get("jti")
    if isinstance(jti, str) and 0 < len(jti) <= _MAX_JTI_LENGTH:
        return jti
    return f"sha256:{jws.fingerprint[:32]}"


def frozen_claims(claims: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(claims))
