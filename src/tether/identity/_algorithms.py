"""The JWS algorithms tether accepts for workload proofs (JWT-SVID.md §2.1, RFC 7518 §3.3 to 3.5).

Only asymmetric signatures: RSASSA-PKCS1-v1_5, ECDSA and RSASSA-PSS. ``none``,
the HMAC family and EdDSA are refused before any key is looked up, which is
what defeats the classic ``alg: none`` and "HMAC keyed with the public key"
attacks. Signatures are checked by joserfc's algorithm models (``cryptography``
underneath); nothing here does arithmetic of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from joserfc.errors import JoseError
from joserfc.jws import JWSRegistry

if TYPE_CHECKING:
    from tether.identity._jwks import PublicJwk

# alg -> (kty, crv or None)
KEY_FOR_ALG: dict[str, tuple[str, str | None]] = {
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
}

#: Every ``alg`` JWT-SVID.md §2.1 allows, and the most tether accepts anywhere.
JWT_SVID_ALGORITHMS: frozenset[str] = frozenset(KEY_FOR_ALG)

#: What an OIDC issuer is allowed unless configured otherwise.
DEFAULT_OIDC_ALGORITHMS: frozenset[str] = frozenset({"RS256", "ES256"})

#: Curves tether can use, by JWK ``crv`` name.
EC_CURVES: frozenset[str] = frozenset({"P-256", "P-384", "P-521"})

#: RSA keys shorter than this are not used (NIST SP 800-131A).
MIN_RSA_BITS = 2048


def key_fits(alg: str, jwk: PublicJwk) -> bool:
    """Whether ``jwk`` has the key type (and curve) that ``alg`` needs."""
    kty, crv = KEY_FOR_ALG[alg]
    return jwk.kty == kty and (crv is None or jwk.crv == crv)


def signature_valid(alg: str, jwk: PublicJwk, signing_input: bytes, signature: bytes) -> bool:
    """Check a JWS signature with one public key; any failure is ``False``."""
    if alg not in KEY_FOR_ALG or not key_fits(alg, jwk):
        return False
    model = JWSRegistry.algorithms[alg]
    try:
        model.check_key(jwk.key)
        return bool(model.verify(signing_input, signature, jwk.key))
    except (JoseError, ValueError, TypeError):
        return False
