"""``tether ingest`` and ``tether audit`` against real stores: JSON, dedupe, exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from tether.store.engine import open_engine

pytestmark = pytest.mark.slow

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "shared" / "cloud-audit"


def _record(n: int) -> dict[str, Any]:
    return {
        "eventTime": f"2026-03-01T12:00:{n:02d}Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "eventID": f"evt-{n}",
        "awsRegion": "eu-west-1",
        "userIdentity": {
            "type": "IAMUser",
            "arn": "arn:aws:iam::111122223333:user/ci",
            "accountId": "111122223333",
            "userName": "ci",
        },
        "requestParameters": {"bucketName": "reports", "key": f"r/{n}.csv"},
    }


@pytest.fixture
def trail(tmp_path: Path) -> Path:
    """CloudTrail JSON lines: five events and one malformed line (line 3)."""
    lines = [json.dumps(_record(n)) for n in range(1, 6)]
    lines.insert(2, '{"eventName": "GetObject", broken')
    path = tmp_path / "trail.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_ingest_reports_json_dedupes_and_names_bad_lines(
    cli: Any, db_url: str, trail: Path, tmp_path: Path
) -> None:
    first = cli("ingest", "cloudtrail", str(trail), "--db", db_url, "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert (summary["ingested"], summary["duplicates"], summary["errors"]) == (5, 0, 1)
    assert summary["error_lines"][0].startswith(f"{trail}:3:")
    again = json.loads(
        cli("ingest", "cloudtrail", str(trail), "--db", db_url, "--json", cwd=tmp_path).stdout
    )
    assert (again["ingested"], again["duplicates"], again["errors"]) == (0, 5, 1)

    people = cli("ingest", "cloudtrail", str(trail), "--db", db_url, cwd=tmp_path)
    assert people.returncode == 0
    assert "trail.jsonl:3:" in people.stderr
    assert "5 already stored" in people.stdout


def test_every_shared_sample_ingests(cli: Any, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/tether.db"
    files = [str(p) for p in sorted(SAMPLES.glob("*.jsonl"))]
    done = cli("ingest", "fixture", *files, "--db", db, "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["ingested"] > 900
    assert summary["errors"] == 3  # the test cases whose `log` is null
    assert summary["discovered_identities"] > 0


@pytest.mark.parametrize(
    "args",
    [
        ["ingest", "cloudtrail", "missing.jsonl"],
        ["ingest", "jsonl", "FILE"],  # a mapping is required
        ["ingest", "jsonl", "FILE", "--mapping", "{not json"],
        ["ingest", "syslog", "FILE"],
    ],
)
def test_bad_usage_exits_2(cli: Any, args: list[str], trail: Path, tmp_path: Path) -> None:
    args = [str(trail) if a == "FILE" else a for a in args]
    done = cli(*args, "--db", f"sqlite:///{tmp_path}/t.db", cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr


def test_a_file_of_no_events_exits_1(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "junk.jsonl"
    path.write_text("nope\n[1, 2]\n")
    done = cli(
        "ingest", "cloudtrail", str(path), "--db", f"sqlite:///{tmp_path}/t.db", cwd=tmp_path
    )
    assert done.returncode == 1


def test_audit_verify_names_a_tampered_row_and_a_truncation(
    cli: Any, db_url: str, trail: Path, tmp_path: Path
) -> None:
    assert cli("ingest", "cloudtrail", str(trail), "--db", db_url, cwd=tmp_path).returncode == 0
    clean = cli("audit", "verify", "--db", db_url, cwd=tmp_path)
    assert clean.returncode == 0, clean.stderr
    assert "chain verified" in clean.stdout
    exported = tmp_path / "checkpoint.json"
    saved = cli("audit", "checkpoint", "--export", str(exported), "--db", db_url, cwd=tmp_path)
    assert saved.returncode == 0, saved.stderr

    engine = open_engine(db_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE events SET action = 'DeleteObject' WHERE seq = 2"))
        broken = cli("audit", "verify", "--db", db_url, "--json", cwd=tmp_path)
        assert broken.returncode == 1
        assert json.loads(broken.stdout)["broken"]["seq"] == 2
        assert "event 2" in cli("audit", "verify", "--db", db_url, cwd=tmp_path).stderr

        with engine.begin() as connection:
            connection.execute(text("DELETE FROM events WHERE seq >= 2"))
            connection.execute(text("DELETE FROM audit_checkpoints"))
    finally:
        engine.dispose()
    vanished = cli("audit", "verify", "--db", db_url, "--json", cwd=tmp_path)
    assert vanished.returncode == 1  # events left, their checkpoints gone
    assert json.loads(vanished.stdout)["broken"]["kind"] == "checkpoints_missing"
    against = cli(
        "audit", "verify", "--against", str(exported), "--db", db_url, "--json", cwd=tmp_path
    )
    assert against.returncode == 1
    assert json.loads(against.stdout)["broken"]["kind"] == "truncated"
