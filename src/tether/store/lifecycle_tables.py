"""Tables of the identity lifecycle: offboardings, third-party OAuth grants, metric snapshots.

``offboardings`` is the persistent record that an identity was offboarded (who, when, why,
and what was revoked); nothing about the identity is deleted. ``oauth_grants`` is the
imported inventory of third-party apps and the OAuth scopes people granted them.
``estate_metric_snapshots`` keeps one row per ``tether metrics`` run, so the share of
excessive privilege and of identities not rotated within policy can be shown over time.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, DateTime, Float, Integer, String, Table, Text

from tether.store.tables import metadata

offboardings = Table(
    "offboardings",
    metadata,
    Column("identity_id", String(200), primary_key=True),
    Column("offboarded_at", DateTime(timezone=True), nullable=False),
    Column("offboarded_by", String(200), nullable=False),
    Column("reason", String(400), nullable=False),
    Column("previous_status", String(20)),
    # {"tasks_ended": [...], "tokens_revoked": [...], "api_keys_disabled": [...]}
    Column("revoked", JSON, nullable=False),
)

oauth_grants = Table(
    "oauth_grants",
    metadata,
    Column("app", String(200), primary_key=True),
    Column("vendor", String(200), nullable=False),
    # The inventory identity that stands for the app in telemetry (default: `app`).
    Column("identity_id", String(200)),
    Column("scopes", JSON, nullable=False),  # sorted list of granted scopes
    # {scope: [actions that exercise it]}: how an event's action maps to a scope.
    Column("scope_actions", JSON, nullable=False),
    Column("granted_by", String(200), nullable=False),
    Column("granted_at", DateTime(timezone=True), nullable=False),
    Column("last_vendor_review", DateTime(timezone=True)),
    Column("source", String(400), nullable=False),  # file:line it was imported from
    Column("imported_at", DateTime(timezone=True), nullable=False),
    Column("imported_by", String(200), nullable=False),
)

estate_metric_snapshots = Table(
    "estate_metric_snapshots",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("window_days", Integer, nullable=False),
    Column("identities", Integer, nullable=False),
    Column("entitled", Integer, nullable=False),
    Column("excessive", Integer, nullable=False),
    Column("excessive_share", Float),  # percent of `entitled`; None when nothing is entitled
    Column("rotation_governed", Integer, nullable=False),
    Column("not_rotated", Integer, nullable=False),
    Column("not_rotated_share", Float),  # percent of `rotation_governed`
    Column("details", JSON, nullable=False),
    Column("note", Text),
)
