"""A task-token decision answered on the event loop when checking the token needs no
store I/O (issue 16, part 3): the token verified before, and the revocation state known
current without a read, which only a live PostgreSQL change feed tells. A revocation
made on another replica still refuses the token within 1 s; on SQLite every task-token
decision still goes to a thread (``WouldBlock``), as before.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tether.api.authzen import evaluate_one
from tether.config import load_settings
from tether.decider import WouldBlock
from tether.estate import apply_estate
from tether.services import Tether
from tether.tokens import revoke
from token_support import ISSUER, WorkloadKey, issue, open_task, write_estate

KEY = WorkloadKey.generate("wk-1")


def _tether(folder: Path, database_url: str) -> Tether:
    settings = load_settings(
        {},
        database_url=database_url,
        master_key_file=str(folder / "master.key"),
        issuer=ISSUER,
        reload_interval_ms=10_000,  # only the change notices may make the revocation pass
    )
    return Tether(settings)


@pytest.fixture
def replicas(tmp_path: Path, postgres_url: str) -> Iterator[tuple[Tether, Tether]]:
    a = _tether(tmp_path, postgres_url)
    apply_estate(a.engine, write_estate(tmp_path / "estate", KEY))
    a.reload()
    b = _tether(tmp_path, postgres_url)
    b.reload()
    assert b.changes is not None
    b.changes.start()
    try:
        yield a, b
    finally:
        b.close()
        a.close()


def _body(token: str) -> dict[str, Any]:
    return {
        "subject": {"properties": {"token": token}},
        "action": {"name": "read_invoice"},
        "resource": {"type": "invoice", "id": "INV-1"},
    }


def _answer(tether: Tether, token: str, *, may_block: bool) -> dict[str, Any]:
    answer: dict[str, Any] = orjson.loads(
        evaluate_one(tether, _body(token), "req-1", "pep-1", may_block=may_block)
    )
    return answer


def _inline_after_a_read(tether: Tether, token: str) -> dict[str, Any]:
    """An answer on the loop right after a blocking one read the revocation version (a
    read stands for 0.25 s: a loaded machine may need more than one try)."""
    for _ in range(20):
        assert _answer(tether, token, may_block=True)["decision"] is True
        try:
            return _answer(tether, token, may_block=False)
        except WouldBlock:
            continue
    raise AssertionError("never answered on the loop")


def test_a_verified_token_is_decided_without_the_store_and_a_revocation_still_refuses(
    replicas: tuple[Tether, Tether], figure: Any
) -> None:
    a, b = replicas
    task = open_task(a.tasks, KEY)
    token = str(issue(a.tasks, KEY, task.id).token)
    with pytest.raises(WouldBlock):  # never verified on B: its record is read
        _answer(b, token, may_block=False)
    inline = _inline_after_a_read(b, token)
    assert inline["decision"] is True, inline
    assert inline["context"]["outcome"] == "allow"

    feed = b.changes
    assert feed is not None
    epoch = feed.epoch("revocation_version")
    assert revoke(a.tasks, token, actor="admin")  # on the other replica
    revoked_at = time.monotonic()
    while feed.epoch("revocation_version") == epoch:  # its notice reaches B
        assert time.monotonic() - revoked_at < 1.0, "the revocation's notice within 1 s"
        time.sleep(0.001)
    took = time.monotonic() - revoked_at
    # Once it has arrived, B's loop never answers from what it held before.
    for _ in range(50):
        with contextlib.suppress(WouldBlock):
            assert _answer(b, token, may_block=False)["decision"] is False
    refused = _answer(b, token, may_block=True)
    assert refused["decision"] is False
    assert refused["context"]["error_code"] == "token_revoked"
    # and from then on on the loop too, once the new version was read
    assert _answer(b, token, may_block=False)["context"]["error_code"] == "token_revoked"
    figure(f"inline task tokens: a revocation's notice reached B {took * 1000:.1f} ms after revoke")


def test_on_sqlite_a_task_token_decision_always_goes_to_a_thread(tmp_path: Path) -> None:
    tether = _tether(tmp_path, f"sqlite:///{tmp_path}/tether.db")
    try:
        apply_estate(tether.engine, write_estate(tmp_path / "estate", KEY))
        tether.reload()
        task = open_task(tether.tasks, KEY)
        token = str(issue(tether.tasks, KEY, task.id).token)
        for _ in range(3):
            assert _answer(tether, token, may_block=True)["decision"] is True
            with pytest.raises(WouldBlock):  # `PRAGMA data_version` is a store read
                _answer(tether, token, may_block=False)
    finally:
        tether.close()
