"""Live detection keeps up with an ingest: stored events are read a page at a time, and
a full page makes the next step read on at once (no poll interval between pages), until
the last event stored is examined."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from tether.drift.engine import DriftEngine
from tether.drift.findings import FindingQuery, query_findings
from tether.drift.positions import examined_up_to, resume_point, save_position
from tether.estate.compiled import EMPTY_ESTATE
from tether.store.seq_cursor import SeqCursor
from tether.telemetry.ingest import iter_file
from tether.telemetry.model import Source
from tether.telemetry.store import EventStore
from tether.tokens import KeyRing, load_or_create_master_key

START = datetime(2026, 3, 1, tzinfo=UTC)


def _record(n: int, user: str, name: str) -> dict[str, Any]:
    return {
        "eventVersion": "1.08",
        "eventTime": (START + timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "s3.amazonaws.com" if name == "GetObject" else "cloudtrail.amazonaws.com",
        "eventName": name,
        "awsRegion": "eu-west-1",
        "sourceIPAddress": "10.0.4.17",
        "userAgent": "aws-cli/2.15.0",
        "userIdentity": {
            "type": "IAMUser",
            "arn": f"arn:aws:iam::123456789012:user/{user}",
            "accountId": "123456789012",
            "userName": user,
        },
        "requestParameters": {"bucketName": "reports", "key": f"part-{n}.csv"},
        "eventID": f"00000000-0000-4000-8000-{n:012d}",
        "recipientAccountId": "123456789012",
    }


def test_a_backlog_of_stored_events_is_read_page_after_page_to_the_last(
    store: Engine, tmp_path: Path
) -> None:
    keys = KeyRing(store, load_or_create_master_key(tmp_path / "master.key"))
    drift = DriftEngine(store, lambda: (None, EMPTY_ESTATE), events_page=50)
    drift.start(background=False)  # from the head of the (empty) chain, as `serve` does
    records = [_record(n, "reader", "GetObject") for n in range(120)]
    records.append(_record(120, "intruder", "StopLogging"))  # the last event: a finding
    trail = tmp_path / "trail.json"
    trail.write_text(json.dumps({"Records": records}), encoding="utf-8")
    assert EventStore(store, keys).ingest(iter_file(trail, Source.CLOUDTRAIL)).ingested == 121

    def intruder_findings() -> list[Any]:
        query = FindingQuery(since=START - timedelta(days=1))
        return [f for f in query_findings(store, query) if "intruder" in f.identity_id]

    steps = []
    while True:  # back to back, as the worker steps while behind: no poll interval waited
        drift.work([])
        steps.append(drift.events_behind)
        if not drift.events_behind:
            break
        assert not intruder_findings()  # not examined before its page is read
    assert steps == [True, True, False]  # pages of 50, 50 and 21 events
    assert intruder_findings()
    drift.work([])  # caught up: the next step reads nothing new
    assert not drift.events_behind


def _ingest(store: Engine, keys: KeyRing, tmp_path: Path, records: list[dict[str, Any]]) -> None:
    trail = tmp_path / f"trail-{records[0]['eventID']}.json"
    trail.write_text(json.dumps({"Records": records}), encoding="utf-8")
    assert EventStore(store, keys).ingest(iter_file(trail, Source.CLOUDTRAIL)).ingested == len(
        records
    )


def _findings_of(store: Engine, user: str) -> list[Any]:
    query = FindingQuery(since=START - timedelta(days=1))
    return [f for f in query_findings(store, query) if user in f.identity_id]


def test_a_restarted_tail_examines_the_events_stored_while_no_server_ran(
    store: Engine, tmp_path: Path
) -> None:
    keys = KeyRing(store, load_or_create_master_key(tmp_path / "master.key"))
    first = DriftEngine(store, lambda: (None, EMPTY_ESTATE))
    first.start(background=False)
    _ingest(store, keys, tmp_path, [_record(n, "reader", "GetObject") for n in range(10)])
    first.work([])  # examines the 10 events and keeps its position
    assert resume_point(store, newest=10) == 10
    # The server is down: an intruder's call is ingested into its store meanwhile.
    _ingest(store, keys, tmp_path, [_record(10, "intruder", "StopLogging")])
    second = DriftEngine(store, lambda: (None, EMPTY_ESTATE))
    second.start(background=False)  # resumes at 10, not at the head (11)
    assert not _findings_of(store, "intruder")
    second.work([])
    assert _findings_of(store, "intruder")
    assert resume_point(store, newest=11) == 11


def test_a_first_start_begins_at_the_head_and_a_position_never_moves_back(
    store: Engine, tmp_path: Path
) -> None:
    keys = KeyRing(store, load_or_create_master_key(tmp_path / "master.key"))
    _ingest(store, keys, tmp_path, [_record(0, "intruder", "StopLogging")])
    drift = DriftEngine(store, lambda: (None, EMPTY_ESTATE))
    drift.start(background=False)  # no position kept yet: from the head, as before
    drift.work([])
    assert not _findings_of(store, "intruder")
    save_position(store, 7)
    save_position(store, 3)  # a slower replica's position does not pull it back
    assert resume_point(store, newest=9) == 7
    assert resume_point(store, newest=5) == 5  # a store restored from an older backup


def test_the_position_kept_is_below_every_late_commit_still_awaited() -> None:
    cursor = SeqCursor(4)
    cursor.advance([5, 6, 9])  # 7 and 8 skipped: another writer may still commit them
    assert examined_up_to(cursor) == 6
    cursor.advance([7, 8])
    assert examined_up_to(cursor) == 9
