"""The drift engine live on a real Tether (both backends): decisions in, findings out,
responses in enforce mode, only findings in monitor mode; and the batch scan."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from tether.config import load_settings
from tether.drift.engine import DriftEngine
from tether.drift.findings import FindingQuery, query_findings
from tether.drift.model import Severity
from tether.estate import apply_estate
from tether.policy import DecisionRequest, EntityRef
from tether.services import Tether
from tether.store.drift_tables import findings
from tether.store.tables import audit_log
from tether.tokens import bind_task_token
from token_support import ISSUER, Clock, WorkloadKey, issue, open_task, write_estate

UNVERIFIED = EntityRef("tether_token", "unverified")


@pytest.fixture(scope="module")
def workload_key() -> WorkloadKey:
    return WorkloadKey.generate("wk-drift")


@pytest.fixture
def make(
    store: Engine, tmp_path: Path, workload_key: WorkloadKey
) -> Iterator[Callable[[str], Tether]]:
    made: list[Tether] = []

    def build(agent_mode: str) -> Tether:
        folder = write_estate(tmp_path / "estate", workload_key)
        text = (folder / "estate.yaml").read_text()
        (folder / "estate.yaml").write_text(
            text.replace("agent: {mode: enforce", f"agent: {{mode: {agent_mode}")
        )
        settings = load_settings(
            {},
            database_url=str(store.url),
            master_key_file=str(tmp_path / "master.key"),
            issuer=ISSUER,
            reload_interval_ms=100,
        )
        tether = Tether(settings, engine=store, clock=Clock())
        apply_estate(tether.engine, folder)
        tether.reload()
        made.append(tether)
        return tether

    yield build
    for tether in made:
        tether.close()


def ask(tether: Tether, token: str, action: str, resource: tuple[str, str]) -> Any:
    request = DecisionRequest(UNVERIFIED, action, EntityRef(*resource))
    bound, use = bind_task_token(tether.tasks, request, token, subject_given=False)
    return tether.evaluate(bound, task=use).decision


def _run_scenario(tether: Tether, key: WorkloadKey) -> tuple[str, str]:
    drift = tether.start_drift()
    task = open_task(tether.tasks, key)
    token = issue(tether.tasks, key, task.id).token
    for i in range(5):  # within intent for a while
        assert ask(tether, token, "read_invoice", ("invoice", f"INV-{i}")).permits
    assert drift.drain()
    assert query_findings(tether.engine, FindingQuery(identity_id="billing-bot")) == []
    for i in range(3):  # then out of intent, on restricted data
        ask(tether, token, "pay_invoice", ("payments", f"acct-{i}"))
    assert drift.drain()
    return task.id, token


def test_enforce_mode_revokes_the_task_and_the_next_decision_sees_it(
    make: Callable[[str], Tether], workload_key: WorkloadKey
) -> None:
    tether = make("enforce")
    task_id, token = _run_scenario(tether, workload_key)
    found = query_findings(tether.engine, FindingQuery(identity_id="billing-bot"))
    assert found, "no finding for out-of-intent calls on restricted data"
    worst = max(found, key=lambda f: f.severity.rank)
    assert worst.severity.rank >= Severity.HIGH.rank
    assert worst.task_id == task_id
    assert any(f.response == "revoke" for f in found)
    assert "pending" not in {f.response for f in found}  # every owed response was made
    # The task's tokens are dead: the next decision with the token is refused.
    after = ask(tether, token, "read_invoice", ("invoice", "INV-1"))
    assert not after.permits
    assert after.error_code in ("task_ended", "token_revoked")
    # Its behaviour is in the next decision's Cedar context.
    behaviour = tether.behaviour["billing-bot"]
    assert behaviour["restricted"] is True
    assert behaviour["drift_score"] >= 40
    context = tether.decider.context(
        DecisionRequest(EntityRef("agent", "billing-bot"), "x", EntityRef("a", "b"))
    )
    assert context["behaviour"] is behaviour
    with tether.engine.connect() as connection:
        actions = set(connection.execute(select(audit_log.c.action)).scalars())
    assert "drift.revoke" in actions


def test_monitor_mode_only_records_findings(
    make: Callable[[str], Tether], workload_key: WorkloadKey
) -> None:
    tether = make("monitor")
    task_id, token = _run_scenario(tether, workload_key)
    found = query_findings(tether.engine, FindingQuery(identity_id="billing-bot"))
    assert found
    assert {f.response for f in found} <= {None, "alert"}
    assert ask(tether, token, "read_invoice", ("invoice", "INV-1")).permits
    assert tether.tasks.task(task_id, fresh=True).status == "open"


def test_scan_re_runs_detection_on_stored_decisions_idempotently(
    make: Callable[[str], Tether], workload_key: WorkloadKey
) -> None:
    tether = make("monitor")
    _run_scenario(tether, workload_key)
    tether.decision_log.flush()
    with tether.engine.begin() as connection:
        connection.execute(findings.delete())
    drift = tether.drift
    assert drift is not None
    since = datetime.now(UTC) - timedelta(hours=1)
    first = drift.scan(since=since, identity_id="billing-bot")
    assert first
    stored = query_findings(tether.engine, FindingQuery(identity_id="billing-bot"))
    assert {f.finding_id for f in stored} == {f.finding_id for f in first}
    drift.scan(since=since, identity_id="billing-bot")
    again = query_findings(tether.engine, FindingQuery(identity_id="billing-bot"))
    assert len(again) == len(stored)


def test_the_same_probe_repeated_makes_one_finding(
    make: Callable[[str], Tether], workload_key: WorkloadKey
) -> None:
    tether = make("monitor")
    task_id, token = _run_scenario(tether, workload_key)
    drift = tether.start_drift()
    before = query_findings(tether.engine, FindingQuery(identity_id="billing-bot"))
    for _ in range(5):  # the very same out-of-intent request again and again
        ask(tether, token, "pay_invoice", ("payments", "acct-0"))
    assert drift.drain()
    after = query_findings(tether.engine, FindingQuery(identity_id="billing-bot"))
    assert drift.repeats >= 5
    new = [f for f in after if f.finding_id not in {b.finding_id for b in before}]
    assert all(f.resource != "payments::acct-0" for f in new), new
    # A new resource is new evidence: it is stored.
    ask(tether, token, "pay_invoice", ("payments", "acct-99"))
    assert drift.drain()
    latest = query_findings(tether.engine, FindingQuery(identity_id="billing-bot"))
    assert len(latest) > len(after)
    assert task_id


def test_a_response_left_pending_by_a_dead_process_is_carried_out_once(
    make: Callable[[str], Tether], workload_key: WorkloadKey
) -> None:
    tether, task, drift, owed = revocations_owed(make("enforce"), workload_key)
    now = datetime.now(UTC)
    with tether.engine.begin() as connection:  # as a process that died before responding
        connection.execute(
            findings.update()
            .where(findings.c.finding_id.in_(owed[1:]))
            .values(response="pending", recorded_at=now - timedelta(seconds=5))
        )
        connection.execute(
            findings.update()
            .where(findings.c.finding_id == owed[0])
            .values(response="pending", recorded_at=now - timedelta(minutes=2))
        )
    assert tether.tasks.task(task.id, fresh=True).status == "open"
    drift.work([])  # a live step looks for owed responses
    assert tether.tasks.task(task.id, fresh=True).status == "ended"
    responses = responses_of(tether.engine, owed)
    with tether.engine.connect() as connection:
        revokes = (
            connection.execute(
                select(audit_log.c.details).where(audit_log.c.action == "drift.revoke")
            )
            .scalars()
            .all()
        )
    assert responses[owed[0]] == "revoke"
    # Pending for seconds only: its own process may be responding right now.
    assert all(responses[f] == "pending" for f in owed[1:])
    assert [d["finding_id"] for d in revokes] == [owed[0]]
    assert drift.responder.recover(now) == []  # taken once, never again


def test_a_response_taken_over_by_a_process_that_died_too_is_owed_again(
    make: Callable[[str], Tether], workload_key: WorkloadKey
) -> None:
    tether, task, drift, owed = revocations_owed(make("enforce"), workload_key)
    now = datetime.now(UTC)
    long_ago, just_now = now - timedelta(minutes=2), now - timedelta(seconds=5)
    with tether.engine.begin() as connection:  # taken over, then the taker died too
        connection.execute(
            findings.update()
            .where(findings.c.finding_id == owed[0])
            .values(response="recovering", recorded_at=long_ago, response_taken_at=long_ago)
        )
        connection.execute(  # taken over seconds ago: its taker may be responding now
            findings.update()
            .where(findings.c.finding_id.in_(owed[1:]))
            .values(response="recovering", recorded_at=long_ago, response_taken_at=just_now)
        )
    assert [finding for finding, _ in drift.responder.recover(now)] == [owed[0]]
    assert tether.tasks.task(task.id, fresh=True).status == "ended"
    rows = responses_of(tether.engine, owed)
    assert rows[owed[0]] == "revoke"
    assert all(rows[f] == "recovering" for f in owed[1:])
    # A minute later the others' taker has not answered either: they are owed again.
    later = now + timedelta(minutes=1)
    assert sorted(f for f, _ in drift.responder.recover(later)) == sorted(owed[1:])
    assert drift.responder.recover(later) == []


def responses_of(engine: Engine, finding_ids: list[str]) -> dict[str, str]:
    with engine.connect() as connection:
        query = select(findings.c.finding_id, findings.c.response)
        rows = connection.execute(query.where(findings.c.finding_id.in_(finding_ids)))
        return {str(row[0]): str(row[1]) for row in rows.all()}


def revocations_owed(
    tether: Tether, workload_key: WorkloadKey
) -> tuple[Tether, Any, DriftEngine, list[str]]:
    """An open task whose out-of-intent calls on restricted data owe revocations: the
    high findings, stored by a scan (which responds to none)."""
    task = open_task(tether.tasks, workload_key)
    token = issue(tether.tasks, workload_key, task.id).token
    for i in range(3):
        ask(tether, token, "pay_invoice", ("payments", f"acct-{i}"))
    tether.decision_log.flush()
    drift = tether.start_drift(background=False)
    found = drift.scan(since=datetime.now(UTC) - timedelta(hours=1))
    owed = [f.finding_id for f in found if f.severity.rank >= Severity.HIGH.rank]
    assert len(owed) >= 2, found
    return tether, task, drift, owed
