"""Options and the store (or the whole service) shared by every command that touches it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from sqlalchemy import Engine

from tether.config import Settings, load_settings
from tether.services import Tether
from tether.store import migrate
from tether.store.engine import check_reachable, open_engine

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help=(
            "SQLAlchemy URL or SQLite path "
            "(default: $TETHER_DATABASE_URL, else ./.tether/tether.db)"
        ),
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON for machines")]


def settings_for(db: str | None, **overrides: Any) -> Settings:
    return load_settings(database_url=db, **overrides)


@contextmanager
def migrated_store(db: str | None) -> Iterator[Engine]:
    """The store at ``db``, reachable and migrated to head; its connections closed after."""
    engine = open_engine(settings_for(db).database_url)
    try:
        check_reachable(engine)
        migrate.upgrade(engine)
        yield engine
    finally:
        engine.dispose()


@contextmanager
def open_tether(db: str | None) -> Iterator[Tether]:
    """The whole service on the store at ``db`` (as ``tether serve`` builds it), closed after."""
    tether = Tether(settings_for(db))
    try:
        yield tether
    finally:
        tether.close()
