"""The pipe between a server and its worker: a row always crosses (as its error row when it
cannot be encoded), and the worker's health replies are what the server's link reports."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from tether.store.decision_rows import ERROR_KEY
from tether.worker.link import WorkerReplies
from tether.worker.main import _HealthReporter, _Replies
from tether.worker.protocol import HEALTH, decode_row, encode_row


def _row(context: Any, **overrides: Any) -> dict[str, Any]:
    return {
        "decision_id": uuid.uuid4().hex,
        "at": datetime.now(UTC),
        "subject_type": "agent",
        "subject_id": "a1",
        "action": "read",
        "resource_type": "doc",
        "resource_id": "d1",
        "outcome": "allow",
        "decision": True,
        "reasons": ["p"],
        "obligations": {},
        "errors": [],
        "context": context,
        **overrides,
    }


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    "context",
    [_nested(5000), {"s": {1}}, {"o": object()}, {"s": "\ud800"}, {"n": float("nan"), "b": 2**70}],
    ids=["deep", "set", "object", "surrogate", "nan-and-huge"],
)
def test_a_row_json_cannot_hold_crosses_as_its_error_row(context: Any) -> None:
    row = _row(context)
    line = encode_row(row)
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1  # one row, one line
    crossed = decode_row(line)
    assert set(crossed["context"]) == {ERROR_KEY}
    assert crossed["context"][ERROR_KEY].startswith("context not storable: ")
    for column in ("decision_id", "at", "subject_id", "action", "outcome", "decision"):
        assert crossed[column] == row[column]


def test_what_json_can_say_crosses_as_it_is() -> None:
    row = _row({"huge": 2**70, "nul": "a\x00b", "depth": _nested(300)})
    crossed = decode_row(encode_row(row))
    assert crossed["context"]["nul"] == "a\x00b"
    assert crossed["context"]["huge"] == pytest.approx(2**70)
    assert crossed["context"]["depth"] == _nested(300)


class _CountingLog:
    """What ``_HealthReporter`` reads of a decision log."""

    def __init__(self) -> None:
        self.healthy, self.written, self.lost, self.problem = True, 0, 0, None


def _link_reading(replies: bytes) -> WorkerReplies:
    """The server's view of a live worker that sent ``replies``."""
    state = WorkerReplies({})
    generation = state.next_generation()
    for line in replies.splitlines():
        state.on_reply(line, generation)
    return state


def test_the_link_reports_the_workers_committed_counts_and_health() -> None:
    out = io.BytesIO()
    replies = _Replies(out)
    decision_log = _CountingLog()
    reporter = _HealthReporter(decision_log, replies)
    replies.send("ready", 123)
    decision_log.written = 40
    reporter.report()
    reporter.report()  # unchanged: nothing sent
    decision_log.healthy, decision_log.lost = False, 3
    decision_log.problem = "the decision store is unreachable: OperationalError: gone"
    reporter.report()
    sent = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert [kind for kind, _ in sent] == ["ready", HEALTH, HEALTH]
    link = _link_reading(out.getvalue())
    assert link.written == 40
    assert link.lost == 3
    assert not link.healthy
    assert link.problem == decision_log.problem
    decision_log.healthy, decision_log.written, decision_log.problem = True, 41, None
    reporter.report()
    recovered = _link_reading(out.getvalue())
    assert recovered.healthy
    assert (recovered.written, recovered.lost) == (41, 3)


def test_a_malformed_health_reply_changes_nothing() -> None:
    link = _link_reading(b'["ready", 1]\n["health", {"written": "many"}]\n["health", 7]\n')
    assert link.healthy
    assert (link.written, link.lost) == (0, 0)
