"""Every acknowledged decision is recorded, or none is made (issue 19, findings 1 and 5).

Real servers (``tether serve``, its worker process) on SQLite and PostgreSQL: a hostile
PEP whose rows the store refuses as sent (NUL bytes PostgreSQL text does not take, ids
longer than their column) costs an honest PEP none of its decisions; a database dropped
under a running server turns ``/readyz`` 503 and every evaluation into a deny with
``decisions_unrecorded``; the public ``/readyz`` answer never carries details.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select, update

from tether.callers import add_api_key
from tether.store.engine import open_engine
from tether.store.tables import decisions

ServerFactory = Callable[..., Any]
pytestmark = pytest.mark.slow

HONEST = 600
HOSTILE = 150


def _evaluation(subject: str, resource: str, context: dict[str, Any]) -> dict[str, Any]:
    return {
        "subject": {"type": "user", "id": subject},
        "action": {"name": "read"},
        "resource": {"type": "doc", "id": resource},
        "context": context,
    }


def _hostile_key(server: Any) -> str:
    """A second PEP's key, added while the server runs; returned once the server takes it."""
    engine = open_engine(server.db_url)
    try:
        key = add_api_key(engine, "hostile-pep", actor="tests").key
    finally:
        engine.dispose()
    deadline = time.monotonic() + 10
    probe = _evaluation("alice", "d", {})
    while True:
        answer = httpx.post(
            f"{server.url}/access/v1/evaluation",
            json=probe,
            headers={"Authorization": f"Bearer {key}"},
        )
        if answer.status_code == 200:
            return key
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.1)


def _count(db_url: str, ids: list[str]) -> int:
    engine = open_engine(db_url)
    try:
        with engine.connect() as connection:
            query = select(func.count()).select_from(decisions)
            query = query.where(decisions.c.decision_id.in_(ids))
            return int(connection.execute(query).scalar_one())
    finally:
        engine.dispose()


def test_a_hostile_pep_costs_no_other_caller_a_decision(
    server_factory: ServerFactory, db_url: str, estate_writer: Any, tmp_path: Path, cli: Any
) -> None:
    server = server_factory(db_url=db_url, estate=estate_writer(tmp_path / "estate"))
    hostile_key = _hostile_key(server)
    honest_ids: list[str] = []
    hostile_ids: list[str] = []

    def honest() -> None:
        with server.client("pep") as pep:
            for i in range(HONEST):
                answer = pep.post("/access/v1/evaluation", json=_evaluation("alice", f"d{i}", {}))
                assert answer.status_code == 200, answer.text
                honest_ids.append(answer.json()["context"]["decision_id"])

    def hostile() -> None:
        # Past the edge's bounds, refused by the store as sent (PostgreSQL): a NUL byte in
        # text columns and in the context, a resource id beyond its column.
        poison = _evaluation("evil\u0000" * 50, "r" * 5000, {"note": "nul\u0000", "n": 2**70})
        headers = {"Authorization": f"Bearer {hostile_key}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=10) as attacker:
            for i in range(HOSTILE):
                if i % 10:
                    answer = attacker.post("/access/v1/evaluation", json=poison)
                    assert answer.status_code == 200, answer.text
                    hostile_ids.append(answer.json()["context"]["decision_id"])
                else:
                    batch = {"evaluations": [poison] * 20}
                    answer = attacker.post("/access/v1/evaluations", json=batch)
                    assert answer.status_code == 200, answer.text
                    items = answer.json()["evaluations"]
                    hostile_ids.extend(item["context"]["decision_id"] for item in items)

    threads = [threading.Thread(target=honest), threading.Thread(target=hostile)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(honest_ids) == HONEST
    deadline = time.monotonic() + 15
    while _count(db_url, honest_ids + hostile_ids) < len(honest_ids) + len(hostile_ids):
        assert time.monotonic() < deadline, (
            f"{_count(db_url, honest_ids)} of {HONEST} honest decisions and "
            f"{_count(db_url, hostile_ids)} of {len(hostile_ids)} hostile ones stored"
        )
        time.sleep(0.1)
    assert _count(db_url, honest_ids) == HONEST  # every acknowledged decision is a row
    with server.client("auditor") as auditor:
        ready = auditor.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["decisions_lost"] == 0
    assert ready.json()["decisions_written"] >= HONEST + len(hostile_ids)

    # Every row, error rows included, is a link of the signed decision chain; one
    # acknowledged allow rewritten to deny in the store is found and named.
    verified = cli("audit", "verify", "--db", db_url, "--json", cwd=tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    chain = orjson.loads(verified.stdout)["records"]["decisions"]
    assert chain["ok"] is True
    assert chain["rows"] >= HONEST + len(hostile_ids)
    engine = open_engine(db_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                update(decisions)
                .where(decisions.c.decision_id == honest_ids[HONEST // 2])
                .values(outcome="deny", decision=False)
            )
            seq = connection.execute(
                select(decisions.c.seq).where(decisions.c.decision_id == honest_ids[HONEST // 2])
            ).scalar_one()
    finally:
        engine.dispose()
    server.stop()
    tampered = cli("audit", "verify", "--db", db_url, "--json", cwd=tmp_path)
    assert tampered.returncode == 1, tampered.stdout
    broken = orjson.loads(tampered.stdout)["records"]["decisions"]["broken"]
    assert (broken["kind"], broken["seq"]) == ("modified", seq)


def _wait_not_ready(client: httpx.Client, within_s: float = 15) -> httpx.Response:
    deadline = time.monotonic() + within_s
    while True:
        response = client.get("/readyz")
        if response.status_code == 503:
            return response
        assert time.monotonic() < deadline, f"/readyz still {response.status_code}"
        time.sleep(0.1)


def test_a_dropped_database_makes_the_server_not_ready_and_deny_unrecorded(
    server_factory: ServerFactory, doomed_database: Any, estate_writer: Any, tmp_path: Path
) -> None:
    server = server_factory(db_url=doomed_database.url, estate=estate_writer(tmp_path / "e"))
    asked = _evaluation("alice", "d1", {})
    with server.client("pep") as pep, server.client(None) as anyone:
        allowed = pep.post("/access/v1/evaluation", json=asked)
        assert allowed.json()["decision"] is True
        assert anyone.get("/readyz").json() == {"status": "ready"}
        doomed_database.drop()
        not_ready = _wait_not_ready(anyone)
        # No driver error, host or database name for an unauthenticated caller.
        assert not_ready.json() == {"status": "not_ready"}
        # The decision log notices within its probe interval (1 s) or at its next commit.
        deadline = time.monotonic() + 5
        while True:
            answer = pep.post("/access/v1/evaluation", json=asked)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            if body["decision"] is False:
                break
            assert time.monotonic() < deadline, "still deciding without a store"
            time.sleep(0.05)
        assert body["context"]["error_code"] == "decisions_unrecorded"
        assert body["context"]["reasons"] == ["decisions_unrecorded"]
        batch = pep.post("/access/v1/evaluations", json={"evaluations": [asked] * 3})
        assert [item["decision"] for item in batch.json()["evaluations"]] == [False] * 3
    with server.client("auditor") as auditor:
        detailed = auditor.get("/readyz")
    assert detailed.status_code == 503
    assert detailed.json()["status"] == "not_ready"
    assert "unreachable" in detailed.json()["detail"]  # the reason, for auditors only
