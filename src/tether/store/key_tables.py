"""Tables of tether's own signing keys (private halves encrypted at rest)."""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, String, Table, Text

from tether.store.tables import metadata

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(80), primary_key=True),
    Column("alg", String(10), nullable=False),
    Column("public_jwk", JSON, nullable=False),
    # AES-256-GCM(master key) of the PKCS#8 PEM: base64(nonce || ciphertext).
    Column("private_key_enc", Text, nullable=False),
    Column("status", String(10), nullable=False),  # active | retired
    Column("created_at", DateTime(timezone=True), nullable=False),
    # A retired key keeps verifying (and stays in the JWKS) until this moment.
    Column("verify_until", DateTime(timezone=True)),
)
