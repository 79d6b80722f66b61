"""Database engines: SQLite (WAL, the embedded default) and PostgreSQL (psycopg 3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.pool import NullPool

from tether.errors import StoreUnavailable


def open_engine(url: str) -> Engine:
    """Create an engine for ``url``; SQLite gets WAL and a busy timeout, its folder is made."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreUnavailable(f"`{url}` is not a database URL") from None
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, poolclass=NullPool
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql":
        return create_engine(url, pool_size=5, max_overflow=5, pool_pre_ping=True)
    raise StoreUnavailable(
        f"unsupported database `{parsed.get_backend_name()}` (use sqlite:/// or postgresql://)"
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode: a committed transaction survives a process crash; only an OS
    # crash or power loss can roll back the last commits.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def check_reachable(engine: Engine) -> None:
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        raise StoreUnavailable(
            f"cannot reach the database at `{engine.url.render_as_string(hide_password=True)}`: "
            f"{exc.orig}"
        ) from None
