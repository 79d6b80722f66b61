"""Decision writer throughput: rows committed per second by ``DecisionLog.write`` on SQLite.

Not part of the suite. Batches of ``BATCH`` rows (the writer's largest) are committed to a
fresh temporary store, with no poison, with rows whose context no encoder takes (each
stored as an error row at encoding: no extra commit), with text a store would refuse (a
NUL byte, a lone surrogate, an over-long id: cleaned at encoding) and with rows the store
itself refuses (injected: the batch is split in halves down to those rows, each then
stored as an error row). Prints the best of three runs' rows/s for each mix; every row
is checked stored. The refusing hook is attached in every mix (its cost is in each).

    python -m bench.decision_writer [--rows 100000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select

from tether.store import migrate
from tether.store.decision_log import DecisionLog
from tether.store.decision_rows import COLUMNS
from tether.store.engine import open_engine
from tether.store.tables import decisions

BATCH = 5000
REFUSED = "bench-refused"
CONTEXT_AT = COLUMNS.index("context")


def _refuse_marked(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
    """The store refusing every statement that holds a marked row (as a driver would)."""
    if statement.startswith("INSERT INTO decisions"):
        for row in params if isinstance(params, list) else [params]:
            if REFUSED in row[CONTEXT_AT]:
                raise ValueError("refused by the bench")


def _row(n: int, poison: str | None) -> dict[str, Any]:
    context: dict[str, Any] = {"n": n, "score": 0.5, "tags": ["a", "b"]}
    subject = f"agent-{n % 50}"
    if poison == "unencodable":
        context = {"s": "\ud800"}
    elif poison == "unclean":
        subject = "agent-\ud800\x00" + "x" * 1000
    elif poison == "refused":
        context = {REFUSED: True}
    return {
        "decision_id": uuid.uuid4().hex,
        "at": datetime.now(UTC),
        "subject_type": "agent",
        "subject_id": subject,
        "action": "read",
        "resource_type": "doc",
        "resource_id": f"doc-{n}",
        "outcome": "allow",
        "decision": True,
        "reasons": ["allow-read"],
        "obligations": {},
        "errors": [],
        "context": context,
        "request_id": None,
        "caller": "pep",
        "estate_revision": 1,
        "duration_us": 40,
    }


def measure(rows: int, poison: str | None, every: int) -> float:
    """Rows per second committing ``rows`` rows, one poison row per ``every``."""
    with tempfile.TemporaryDirectory() as folder:
        engine = open_engine(f"sqlite:///{Path(folder) / 'tether.db'}")
        migrate.upgrade(engine)
        event.listen(engine, "before_cursor_execute", _refuse_marked)
        log = DecisionLog(engine, flush_interval_ms=60_000)
        made = [
            _row(i, poison if poison and i % every == every // 2 else None) for i in range(rows)
        ]
        started = time.perf_counter()
        for start in range(0, rows, BATCH):
            log.write(made[start : start + BATCH])
        elapsed = time.perf_counter() - started
        log.close()
        with engine.connect() as connection:
            stored = connection.execute(select(func.count()).select_from(decisions)).scalar()
        engine.dispose()
        assert stored == rows == log.written, (stored, rows, log.written)
        assert log.lost == 0
    return rows / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    rows = parser.parse_args().rows
    mixes = [
        ("no poison", None, 1),
        ("1 unencodable row per 1000", "unencodable", 1000),
        ("1 unclean row per 100", "unclean", 100),
        ("1 refused row per 5000 (one per batch)", "refused", 5000),
        ("1 refused row per 1000", "refused", 1000),
        ("1 refused row per 100", "refused", 100),
    ]
    for name, poison, every in mixes:
        best = max(measure(rows, poison, every) for _ in range(3))  # a shared machine
        print(f"{name:42} {best:>10,.0f} rows/s")


if __name__ == "__main__":
    main()
