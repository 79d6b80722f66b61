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
from tether.estate.compiled import EMPTY_ESTATE
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
