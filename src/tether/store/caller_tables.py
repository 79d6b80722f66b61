"""Tables of tether's own callers: PEP API keys (salted hashes only) and caller roles.

A caller is an identity of the inventory (``identities``); these tables add what it
needs to call tether: the roles it holds and, for a PEP that uses a static key, the
salted hash of that key. The key itself is shown once, when it is made, and never stored.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, Index, String, Table

from tether.store.tables import metadata

api_keys = Table(
    "api_keys",
    metadata,
    # The public part of `tpk_<key_id>_<secret>`: names the key in logs and listings.
    Column("key_id", String(40), primary_key=True),
    Column("identity_id", String(200), nullable=False),
    Column("salt", String(64), nullable=False),
    # hex SHA-256 of salt || secret: enough for a 256-bit random secret (no password).
    Column("secret_hash", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)
Index("ix_api_keys_identity", api_keys.c.identity_id)

caller_roles = Table(
    "caller_roles",
    metadata,
    Column("identity_id", String(200), primary_key=True),
    Column("roles", JSON, nullable=False),  # sorted list of `tether.callers.Role` values
    # estate (declared by `tether_roles:`) | cli (made by `tether pep add`, `admin token`)
    Column("origin", String(20), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
