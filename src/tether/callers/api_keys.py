"""PEP API keys: ``tpk_<key_id>_<secret>``, 256 random bits, stored as a salted hash.

The key id is public (it names the key in listings, logs and the audit trail); the
secret is 32 random bytes, base64url. tether stores SHA-256(salt || secret) with a
per-key 16-byte salt: a slow password hash buys nothing against a 256-bit random secret,
and a fast one keeps verifying cheap. Comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

PREFIX = "tpk_"
_KEY_ID_BYTES = 8
_SECRET_BYTES = 32
_SALT_BYTES = 16


@dataclass(frozen=True)
class ApiKeySecret:
    """A freshly made key: ``text`` is shown once; only ``salt`` and ``secret_hash`` are kept."""

    key_id: str
    text: str
    salt: str
    secret_hash: str


@dataclass(frozen=True)
class PresentedKey:
    """A key as a caller presented it, split into its public id and its secret."""

    key_id: str
    secret: str


def new_api_key() -> ApiKeySecret:
    key_id = secrets.token_hex(_KEY_ID_BYTES)
    secret = secrets.token_urlsafe(_SECRET_BYTES)
    salt = secrets.token_hex(_SALT_BYTES)
    return ApiKeySecret(key_id, f"{PREFIX}{key_id}_{secret}", salt, hash_secret(salt, secret))


def looks_like_api_key(text: str) -> bool:
    return text.startswith(PREFIX)


def parse_api_key(text: str) -> PresentedKey | None:
    """Split ``tpk_<key_id>_<secret>``; ``None`` when the text is not shaped like a key."""
    if not text.startswith(PREFIX):
        return None
    key_id, sep, secret = text[len(PREFIX) :].partition("_")
    if not sep or len(key_id) != 2 * _KEY_ID_BYTES or not secret or len(secret) > 128:
        return None
    if any(c not in "0123456789abcdef" for c in key_id):
        return None
    return PresentedKey(key_id, secret)


def hash_secret(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode()).hexdigest()


def secret_matches(presented: PresentedKey, salt: str, secret_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(salt, presented.secret), secret_hash)
