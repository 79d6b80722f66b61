"""Alembic environment: runs against the connection tether hands it."""

from __future__ import annotations

from alembic import context

from tether.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached by a bare `alembic` call
    raise SystemExit("run migrations through `tether init` (it passes the connection)")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
