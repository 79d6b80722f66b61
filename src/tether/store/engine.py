"""Database engines: SQLite (WAL, the embedded default) and PostgreSQL (psycopg 3).

A SQLite store holds decisions, tokens' records and the audit trail: its folder is made
0700 and its file 0600 (SQLite gives its `-wal` and `-shm` files the database file's
mode); an existing store readable by others is narrowed to its owner.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.pool import NullPool

from tether.errors import StoreUnavailable


def open_engine(url: str) -> Engine:
    """Create an engine for ``url``; SQLite gets WAL and a busy timeout, its folder and
    file are made (owner only)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreUnavailable(f"`{url}` is not a database URL") from None
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            _owner_only(Path(database))
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


def _owner_only(database: Path) -> None:
    """Make the store's folder (0700) and file (0600), or narrow them to their owner."""
    database.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        with contextlib.suppress(OSError):  # not there, or not ours: SQLite will say
            if stat.S_IMODE(path.stat().st_mode) & 0o077:
                path.chmod(0o600)


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
