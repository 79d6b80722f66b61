"""Decisions committed by the worker process (``background_work = "process"``).

A real ``Tether`` hands its rows to a real ``python -m tether.worker`` over a pipe, on
both backends: every row arrives, ``flush`` means committed, ``close`` drains and stops
the worker, a dead worker is replaced, and drift records come back to the server.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select

from tether.config import Settings
from tether.policy import DecisionRequest, EntityRef
from tether.services import Tether
from tether.store.tables import decisions
from tether.worker.link import WorkerLink
from tether.worker.main import _BehaviourPublisher, _Replies

ServerFactory = Callable[..., Any]

pytestmark = pytest.mark.slow


def _tether(db_url: str, tmp_path: Path) -> Tether:
    settings = Settings(
        database_url=db_url,
        master_key_file=str(tmp_path / "master.key"),
        background_work="process",
    )
    return Tether(settings)


def _ask(tether: Tether, n: int, context: dict[str, Any] | None = None) -> list[str]:
    return [
        tether.evaluate(
            DecisionRequest(
                EntityRef("agent", f"a{i % 7}"),
                "read",
                EntityRef("doc", f"d{i}"),
                context or {},
                {},
                {},
                {},
            )
        ).decision_id
        for i in range(n)
    ]


def _stored(tether: Tether, ids: list[str]) -> int:
    with tether.engine.connect() as connection:
        query = select(func.count()).select_from(decisions)
        return int(connection.execute(query.where(decisions.c.decision_id.in_(ids))).scalar_one())


def test_every_row_is_committed_by_the_worker_and_close_stops_it(
    db_url: str, tmp_path: Path
) -> None:
    tether = _tether(db_url, tmp_path)
    link = tether.decision_log
    assert isinstance(link, WorkerLink)
    assert tether.drift is None  # detection runs in the worker, not here
    ids = _ask(tether, 300, {"huge": 2**70, "text": "nul\u0000byte"})
    link.flush(timeout=60)
    assert _stored(tether, ids) == 300  # flush returned: all committed
    more = _ask(tether, 200)
    worker = link._process
    tether.close()
    try:
        assert worker.returncode == 0  # stopped because its input ended, after committing
        assert _stored(tether, more) == 200
    finally:
        tether.engine.dispose()


def test_a_dead_worker_is_replaced_and_later_rows_arrive(db_url: str, tmp_path: Path) -> None:
    tether = _tether(db_url, tmp_path)
    link = tether.decision_log
    assert isinstance(link, WorkerLink)
    first = _ask(tether, 50)
    link.flush(timeout=60)
    dead = link._process
    dead.kill()
    dead.wait()
    later = _ask(tether, 50)
    link.flush(timeout=60)
    try:
        assert link._process.pid != dead.pid
        assert _stored(tether, first) == 50
        assert _stored(tether, later) == 50
    finally:
        tether.close()
        tether.engine.dispose()


def test_drift_records_travel_back_to_the_server() -> None:
    out = io.BytesIO()
    board: dict[str, dict[str, Any]] = {}
    publisher = _BehaviourPublisher(board, _Replies(out))
    board["a1"] = {"drift_score": 80, "restricted": True}
    publisher.publish()
    publisher.publish()  # nothing changed: nothing sent
    board["a2"] = {"drift_score": 10, "restricted": False}
    del board["a1"]
    publisher.publish()
    lines = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert lines == [
        ["behaviour", {"a1": {"drift_score": 80, "restricted": True}}],
        ["behaviour", {"a2": {"drift_score": 10, "restricted": False}, "a1": None}],
    ]
    # The server's reader applies them to the map its decisions read.
    behaviour: dict[str, Any] = {"a1": {"stale": True}}
    reader = WorkerLink.__new__(WorkerLink)
    reader._behaviour = behaviour
    reader._flushes = {}
    reader._generation, reader._alive, reader._ready = 1, True, threading.Event()
    reader._read_loop(io.BytesIO(out.getvalue() + b"not json\n"), 1)
    assert behaviour == {"a2": {"drift_score": 10, "restricted": False}}
    assert not reader._alive  # its output ended: the worker is gone


def test_a_worker_that_cannot_start_is_reported_and_its_rows_counted(tmp_path: Path) -> None:
    unreachable = Settings(
        database_url="postgresql+psycopg://nobody@127.0.0.1:1/none",
        master_key_file=str(tmp_path / "master.key"),
    )
    link = WorkerLink(unreachable, {})
    started = time.monotonic()
    assert link.wait_ready(60) is False  # at once when it exits, not after the timeout
    assert time.monotonic() - started < 30
    assert not link.alive
    link.record({"decision_id": "x", "at": datetime.now(UTC)})
    link.close()
    assert link.failed == 1


def _children(pid: int) -> list[str]:
    """Command lines of a process's children (Linux ``/proc``)."""
    kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [Path(f"/proc/{kid}/cmdline").read_bytes().replace(b"\0", b" ").decode() for kid in kids]


def test_serve_runs_the_worker_process_unless_told_otherwise(
    server_factory: ServerFactory, db_url: str, cli: Any, tmp_path: Path
) -> None:
    default = server_factory(db_url=db_url)
    assert any("tether.worker" in child for child in _children(default.process.pid))
    default.stop()
    threads = server_factory(db_url=db_url, extra=["--background-work", "thread"])
    assert not any("tether.worker" in child for child in _children(threads.process.pid))
    with threads.client("pep") as pep:
        body = {"subject": {"type": "agent", "id": "a"}, "action": {"name": "read"}}
        answer = pep.post(
            "/access/v1/evaluation", json={**body, "resource": {"type": "d", "id": "1"}}
        )
    assert answer.status_code == 200, answer.text
    bad = cli("serve", "--db", db_url, "--background-work", "fork", cwd=tmp_path)
    assert bad.returncode == 2
    assert "`background_work`" in bad.stderr + bad.stdout
    assert "thread or process" in bad.stderr + bad.stdout
