"""Low-S ES256 signatures: one signature per signed token, never two.

An ECDSA signature ``(r, s)`` has a twin ``(r, n - s)`` (``n`` the order of P-256) that
verifies just as well, so anyone holding a task token can make a second, different
token string with the same claims (signature malleability). A second string escapes
whatever is keyed by the token's text (caches, fingerprints in logs, a PEP's own
replay or deny lists). tether therefore signs only with the low half, ``s ≤ n/2``
(:func:`canonical`, as Bitcoin's BIP 62 and libsecp256k1 do), and refuses a task token
whose ``s`` is high (:func:`is_high_s`).
"""

from __future__ import annotations

import base64

#: The order of the P-256 group (SEC 2, §2.4.2).
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_HALF = P256_ORDER // 2
_COORDINATE = 32  # bytes of r and of s in a JWS ES256 signature (RFC 7518 §3.4)


def is_high_s(signature: bytes) -> bool:
    """Whether a JWS ES256 signature (``r || s``, 64 bytes) has ``s > n/2``.

    A signature of another length is not judged here (it fails verification anyway).
    """
    if len(signature) != 2 * _COORDINATE:
        return False
    return int.from_bytes(signature[_COORDINATE:], "big") > _HALF


def canonical(token: str) -> str:
    """The compact ES256 JWS ``token`` with its signature's ``s`` in the low half."""
    head, payload, segment = token.split(".")
    signature = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    if not is_high_s(signature):
        return token
    s = P256_ORDER - int.from_bytes(signature[_COORDINATE:], "big")
    low = signature[:_COORDINATE] + s.to_bytes(_COORDINATE, "big")
    return f"{head}.{payload}.{base64.urlsafe_b64encode(low).rstrip(b'=').decode('ascii')}"
