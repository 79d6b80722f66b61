"""Options shared by every command that touches the store."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tether.config import Settings, load_settings
from tether.services import Tether

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


def open_tether(db: str | None) -> Tether:
    return Tether(settings_for(db))
