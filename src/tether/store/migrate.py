"""Schema migrations (Alembic), run programmatically so no alembic.ini is needed."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revisions() -> frozenset[str]:
    """Every head: each feature area grows its own migration branch from ``0001``."""
    return frozenset(ScriptDirectory.from_config(_config()).get_heads())


def head_revision() -> str:
    """The heads as one printable string (``0001`` or ``0002+0003``)."""
    return "+".join(sorted(head_revisions()))


def current_revisions(engine: Engine) -> frozenset[str]:
    with engine.connect() as connection:
        return frozenset(MigrationContext.configure(connection).get_current_heads())


def upgrade(engine: Engine) -> None:
    """Bring the database to the latest schema; a no-op when it already is."""
    if current_revisions(engine) == head_revisions():
        return
    config = _config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "heads")
