"""Schema migrations (Alembic), run programmatically so no alembic.ini is needed.

Every process checks the schema at start; when it is at head (nearly always) the check is
one query and a read of the revision files, without importing Alembic (a tenth of a CPU
second, most of a short CLI command's start-up).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
_ASSIGNMENT = re.compile(r"^(revision|down_revision)(?:: [^=]+)? = (.+)$", re.MULTILINE)


def _config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revisions() -> frozenset[str]:
    """Every head: each feature area grows its own migration branch from ``0001``."""
    from alembic.script import ScriptDirectory

    return frozenset(ScriptDirectory.from_config(_config()).get_heads())


def head_revision() -> str:
    """The heads as one printable string (``0001`` or ``0002+0003``)."""
    return "+".join(sorted(head_revisions()))


def current_revisions(engine: Engine) -> frozenset[str]:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return frozenset(MigrationContext.configure(connection).get_current_heads())


def upgrade(engine: Engine) -> None:
    """Bring the database to the latest schema; a no-op when it already is."""
    if _recorded_revisions(engine) == declared_heads():
        return
    from alembic import command

    if current_revisions(engine) == head_revisions():
        return
    config = _config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "heads")


def declared_heads() -> frozenset[str]:
    """The heads as the revision files declare them (``revision``, ``down_revision``): what
    :func:`head_revisions` answers, read without Alembic (``tests/unit/store`` compares)."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        for name, value in _ASSIGNMENT.findall(path.read_text(encoding="utf-8")):
            literal = ast.literal_eval(value)
            if name == "revision":
                revisions.add(literal)
            elif literal is not None:
                revised.update((literal,) if isinstance(literal, str) else literal)
    return frozenset(revisions - revised)


def _recorded_revisions(engine: Engine) -> frozenset[str] | None:
    """The revisions in Alembic's version table; ``None`` if there is none (a new store)."""
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT version_num FROM alembic_version"))
            return frozenset(str(row[0]) for row in rows)
    except DBAPIError:
        return None
