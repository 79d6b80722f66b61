"""Options and the store (or the whole service) shared by every command that touches it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tether.config import Settings, load_settings

if TYPE_CHECKING:  # imported where used: a command loads what it needs (tether.cli.main)
    from sqlalchemy import Engine

    from tether.services import Tether
    from tether.tokens import KeyRing

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
    from tether.store import migrate
    from tether.store.engine import check_reachable, open_engine

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
    from tether.services import Tether

    tether = Tether(settings_for(db))
    try:
        yield tether
    finally:
        tether.close()


@dataclass(frozen=True)
class SignedStore:
    """The store and its signing keys: all that writing the hash chains needs."""

    engine: Engine
    keys: KeyRing


@contextmanager
def open_signed_store(db: str | None) -> Iterator[SignedStore]:
    """The store at ``db`` reachable and migrated, with its keys (as the service opens them,
    :func:`tether.composition.build_core`), without building the rest of the service."""
    from tether.tokens.keys import KeyRing
    from tether.tokens.master_key import load_or_create_master_key

    settings = settings_for(db)
    with migrated_store(db) as engine:
        master_key = load_or_create_master_key(
            Path(settings.master_key_file), settings.master_key or None
        )
        yield SignedStore(engine, KeyRing(engine, master_key))
