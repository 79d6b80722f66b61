"""A SQLite store is readable by its owner only: folder 0700, file and WAL files 0600."""

from __future__ import annotations

import stat
from pathlib import Path

from sqlalchemy import text

from tether.store.engine import open_engine


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_store_and_its_wal_files_are_owner_only(tmp_path: Path) -> None:
    database = tmp_path / "state" / "tether.db"
    engine = open_engine(f"sqlite:///{database}")
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE t (x INTEGER)"))
            connection.execute(text("INSERT INTO t VALUES (1)"))
            modes = {
                path.name: _mode(path)
                for path in database.parent.iterdir()
                if path.name.startswith("tether.db")
            }
    finally:
        engine.dispose()
    assert _mode(database.parent) == 0o700
    assert modes["tether.db"] == 0o600
    assert modes.get("tether.db-wal") == 0o600, modes
    assert all(mode == 0o600 for mode in modes.values()), modes


def test_an_existing_store_readable_by_others_is_narrowed(tmp_path: Path) -> None:
    database = tmp_path / "tether.db"
    database.touch(mode=0o644)
    database.chmod(0o644)
    engine = open_engine(f"sqlite:///{database}")
    engine.dispose()
    assert _mode(database) == 0o600
