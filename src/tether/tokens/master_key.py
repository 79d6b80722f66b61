"""The master key that encrypts signing keys at rest (AES-256-GCM).

It lives in a file readable by its owner only (0600), created on first use, or comes
from ``TETHER_MASTER_KEY`` (base64, 32 bytes) for deployments that inject secrets.
A file with looser permissions is refused: a readable master key is a leaked key.
"""

from __future__ import annotations

import base64
import os
import secrets
import stat
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tether.tokens.errors import KeyStoreError

KEY_BYTES = 32


def load_or_create_master_key(path: Path, inline: str | None = None) -> bytes:
    """Return the master key from ``inline`` (base64) or ``path`` (created 0600 if absent)."""
    if inline:
        return _decode(inline, "TETHER_MASTER_KEY")
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise KeyStoreError(
                f"master key file `{path}` has permissions {mode:o}; it must be 600 "
                f"(run `chmod 600 {path}`)"
            )
        return _decode(path.read_text().strip(), str(path))
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = secrets.token_bytes(KEY_BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(base64.b64encode(key).decode() + "\n")
    return key


def _decode(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text, validate=True)
    except ValueError:
        raise KeyStoreError(f"master key in `{where}` is not base64") from None
    if len(key) != KEY_BYTES:
        raise KeyStoreError(f"master key in `{where}` must be {KEY_BYTES} bytes, got {len(key)}")
    return key


def encrypt(master: bytes, plaintext: bytes, *, context: bytes) -> str:
    nonce = secrets.token_bytes(12)
    return base64.b64encode(nonce + AESGCM(master).encrypt(nonce, plaintext, context)).decode()


def decrypt(master: bytes, sealed: str, *, context: bytes) -> bytes:
    try:
        raw = base64.b64decode(sealed)
        return AESGCM(master).decrypt(raw[:12], raw[12:], context)
    except Exception:  # InvalidTag, bad base64: the key or the row is wrong
        raise KeyStoreError(
            "a stored signing key cannot be decrypted with this master key "
            "(wrong TETHER_MASTER_KEY / master key file?)"
        ) from None
