"""The dashboard's sessions (``tether.web.sessions``) and its OIDC sign-ins under way
(``tether.web.oidc``), kept in the store so that they survive a restart and hold across
replicas (an issuer's answer may come back to another replica than the one that sent the
browser there).

A row never holds what the browser holds: ``id_hash`` is the SHA-256 of the session's
opaque id (the cookie's value), and ``sealed`` is the session (its credential, CSRF token,
and for OIDC the person) encrypted with a key derived from that id, so the store alone
can neither find a session by a stolen row nor read its credential. A sign-in flow's row
is kept the same way, under the id in its flow cookie (its state, nonce, PKCE verifier).
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, String, Table, Text

from tether.store.tables import metadata

dashboard_sessions = Table(
    "dashboard_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("person", String(400), nullable=False),
    Column("sealed", Text, nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)
Index("ix_dashboard_sessions_person", dashboard_sessions.c.person, dashboard_sessions.c.opened_at)
Index("ix_dashboard_sessions_expires", dashboard_sessions.c.expires_at)

dashboard_signin_flows = Table(
    "dashboard_signin_flows",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("sealed", Text, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)
Index("ix_dashboard_signin_flows_expires", dashboard_signin_flows.c.expires_at)
