"""Decisions committed by the worker process (``background_work = "process"``).

A real ``Tether`` hands its rows to a real ``python -m tether.worker`` over a pipe, on
both backends: every row arrives, ``flush`` means committed, ``close`` drains and stops
the worker, a dead worker is replaced, and drift records come back to the server.
"""

from __future__ import annotations

import io
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
from tether.worker.link import WorkerLink, WorkerReplies
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
    worker = link.process
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
    dead = link.process
    dead.kill()
    dead.wait()
    later = _ask(tether, 50)
    link.flush(timeout=60)
    try:
        assert link.process.pid != dead.pid
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
    reader = WorkerReplies(behaviour)
    generation = reader.next_generation()
    reader.on_reply(b'["ready", 1]', generation)
    assert reader.alive
    reader.read(io.BytesIO(out.getvalue() + b"not json\n"), generation)
    assert behaviour == {"a2": {"drift_score": 10, "restricted": False}}
    assert not reader.alive  # its output ended: the worker is gone


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
    assert not link.healthy
    assert link.problem is not None
    assert "not running" in link.problem
    link.record({"decision_id": "x", "at": datetime.now(UTC)})
    link.close()
    assert link.lost == 1
    assert link.written == 0


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


def _poisoned(tether: Tether, n: int) -> list[str]:
    """Rows whose context no encoder takes, recorded as a decision would be (the edge
    refuses such contexts, so they are injected past it)."""
    ids = []
    for i in range(n):
        honest = _ask(tether, 1)[0]
        deep: dict[str, Any] = {}
        for _ in range(5000):
            deep = {"a": deep}
        row = {
            "decision_id": f"poison-{i}-{honest}"[:40],
            "at": datetime.now(UTC),
            "subject_type": "agent",
            "subject_id": "hostile",
            "action": "read",
            "resource_type": "doc",
            "resource_id": "d",
            "outcome": "deny",
            "decision": False,
            "reasons": [],
            "obligations": {},
            "errors": [],
            "context": deep if i % 2 else {"s": "\ud800", "o": object()},
            "duration_us": 1,
        }
        tether.record_decision(row)
        ids.append(row["decision_id"])
    return ids


def test_poison_rows_cost_the_worker_no_honest_row_and_written_means_committed(
    db_url: str, tmp_path: Path
) -> None:
    tether = _tether(db_url, tmp_path)
    link = tether.decision_log
    try:
        honest = _ask(tether, 400)
        poison = _poisoned(tether, 20)  # each beside an honest row of its own
        honest += _ask(tether, 400)
        link.flush(timeout=60)
        assert _stored(tether, honest) == 800
        assert _stored(tether, poison) == 20
        with tether.engine.connect() as connection:
            contexts = connection.execute(
                select(decisions.c.context).where(decisions.c.decision_id.in_(poison))
            ).scalars()
            assert all(set(context) == {"tether_error"} for context in contexts)
        assert link.written == 800 + 20 + 20  # acknowledged by the worker as committed
        assert link.lost == 0
        assert link.healthy
    finally:
        tether.close()
        tether.engine.dispose()


def _wait_unhealthy(tether: Tether, within_s: float = 10) -> None:
    deadline = time.monotonic() + within_s
    while tether.decision_log.healthy:
        assert time.monotonic() < deadline, "the sink did not notice the store is gone"
        time.sleep(0.05)


@pytest.mark.parametrize("background_work", ["process", "thread"])
def test_a_dropped_store_fails_decisions_closed(
    doomed_database: Any, tmp_path: Path, background_work: str
) -> None:
    settings = Settings(
        database_url=doomed_database.url,
        master_key_file=str(tmp_path / "master.key"),
        background_work=background_work,
    )
    tether = Tether(settings)
    tether.start_background()
    try:
        before = tether.evaluate(_request())
        assert before.decision.error_code is None
        doomed_database.drop()
        _wait_unhealthy(tether)
        assert tether.background_problem() is not None
        refused = tether.evaluate(_request()).decision
        assert refused.error_code == "decisions_unrecorded"
        assert refused.reasons == ("decisions_unrecorded",)
        assert not refused.permits
    finally:
        tether.close()


def test_fail_closed_can_be_turned_off(doomed_database: Any, tmp_path: Path) -> None:
    settings = Settings(
        database_url=doomed_database.url,
        master_key_file=str(tmp_path / "master.key"),
        fail_closed_unrecorded=False,
    )
    tether = Tether(settings)
    tether.start_background()
    try:
        doomed_database.drop()
        _wait_unhealthy(tether)
        assert tether.evaluate(_request()).decision.error_code is None  # decided, unrecorded
    finally:
        tether.close()


def _request() -> DecisionRequest:
    return DecisionRequest(EntityRef("agent", "a1"), "read", EntityRef("doc", "d1"), {}, {}, {}, {})


@pytest.mark.parametrize(
    ("reported_for", "origin"),
    [(None, "covered_record"), ("other-task", "unknown")],
)
def test_reported_results_reach_the_workers_drift_in_order(
    db_url: str, tmp_path: Path, reported_for: str | None, origin: str
) -> None:
    # A payment to the account a covered listing returned: judged with that result, which
    # crossed the pipe between the two decisions (provenance `covered_record`). A result
    # reported with another task's token (over HTTP) counts for nothing: `unknown`.
    from agent_runs_support import RUNS, TRUTH  # the hand-made runs of the replay tests
    from tether.drift.catalog import DefaultToolCatalog
    from tether.estate import apply_estate
    from tether.evaluation.replay import estate_document, identity_for, intent_of
    from tether.store.drift_tables import findings
    from tether.tokens import TaskRequest, bind_task_token

    run = RUNS[1]
    estate = tmp_path / "estate"
    estate.mkdir()
    (estate / "estate.yaml").write_text(orjson.dumps(estate_document(TRUTH, [run])).decode())
    tether = _tether(db_url, tmp_path)
    try:
        apply_estate(tether.engine, estate)
        tether.reload()
        tether.start_background()
        agent = identity_for(run.suite)
        intent = intent_of(DefaultToolCatalog(), TRUTH.tasks[(run.suite, run.user_task_id)])
        request = TaskRequest.from_json({"purpose": run.prompt, "intent": intent})
        task = tether.tasks.open_task(request, identity_id=agent, opened_by="test")
        issued = tether.tasks.issue(
            task, scope=task.intent.actions, event="t", actor="t", details={}
        )
        for call in run.calls:
            asked = DecisionRequest(
                EntityRef("agent", agent),
                call.tool,
                EntityRef("app", run.suite),
                {"args": dict(call.arguments)},
            )
            asked, use = bind_task_token(tether.tasks, asked, issued.token, subject_given=True)
            recorded = tether.evaluate(asked, task=use, caller="test")
            bound = (agent, "task-of-someone-else") if reported_for else None
            tether.report_result(recorded.decision_id, call.result, task=bound)
        rows: list[Any] = []
        deadline = time.monotonic() + 10
        while not rows and time.monotonic() < deadline:
            tether.decision_log.flush()
            with tether.engine.connect() as connection:
                rows = list(
                    connection.execute(select(findings).where(findings.c.task_id == task.id))
                )
            time.sleep(0.05)
    finally:
        tether.close()
    (paid,) = [r for r in rows if r.detector == "out_of_intent"]
    assert [p["origin"] for p in paid.details["provenance"]] == [origin]
