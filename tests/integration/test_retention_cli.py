"""``tether retention apply`` against real stores: dry run, prune, verify, bad usage."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow


def _record(n: int, at: datetime) -> dict[str, Any]:
    return {
        "eventVersion": "1.08",
        "eventTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
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
    """Events 1-3 two years old, 4 from yesterday, 5 two years old (in chain order)."""
    old = datetime.now(UTC) - timedelta(days=730)
    recent = datetime.now(UTC) - timedelta(days=1)
    times = [old, old + timedelta(seconds=1), old + timedelta(seconds=2), recent, old]
    path = tmp_path / "trail.jsonl"
    path.write_text("".join(json.dumps(_record(n, t)) + "\n" for n, t in enumerate(times, 1)))
    return path


def _json(done: Any) -> Any:
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def test_dry_run_then_apply_then_verify(cli: Any, db_url: str, trail: Path, tmp_path: Path) -> None:
    assert cli("ingest", "cloudtrail", str(trail), "--db", db_url, cwd=tmp_path).returncode == 0
    apply = ("retention", "apply", "--default", "400d", "--db", db_url)

    dry = _json(cli(*apply, "--dry-run", "--json", cwd=tmp_path))
    assert (dry["dry_run"], dry["pruned"], dry["pruned_through"]) == (True, 3, 3)
    assert (dry["expired"], dry["held_back"]) == (4, 1)
    assert dry["held_back_by"]["seq"] == 4
    untouched = _json(cli("audit", "verify", "--db", db_url, "--json", cwd=tmp_path))
    assert (untouched["events"], untouched["pruned"]) == (5, None)

    people = cli(*apply, cwd=tmp_path)
    assert people.returncode == 0, people.stderr
    assert "pruned 3 event(s), up to event 3" in people.stdout
    assert "1 expired event(s) kept" in people.stdout

    verified = _json(cli("audit", "verify", "--db", db_url, "--json", cwd=tmp_path))
    assert verified["ok"] is True
    assert (verified["events"], verified["first_seq"]) == (2, 4)
    assert verified["pruned"]["through"] == 3
    shown = cli("audit", "verify", "--db", db_url, cwd=tmp_path)
    assert shown.returncode == 0
    assert "events 1-3 were pruned by retention" in shown.stdout

    again = _json(cli(*apply, "--json", cwd=tmp_path))
    assert (again["pruned"], again["previously_pruned_through"]) == (0, 3)

    # Pruned events took their dedupe keys with them: ingesting the trail again appends
    # them as new events at the head, and the chain still verifies.
    reingest = _json(
        cli("ingest", "cloudtrail", str(trail), "--db", db_url, "--json", cwd=tmp_path)
    )
    assert (reingest["ingested"], reingest["duplicates"]) == (3, 2)
    after = _json(cli("audit", "verify", "--db", db_url, "--json", cwd=tmp_path))
    assert (after["ok"], after["first_seq"], after["last_seq"]) == (True, 4, 8)


@pytest.mark.parametrize(
    "args",
    [
        [],  # no policy at all
        ["--default", "forever"],
        ["--class", "internal"],
        ["--class", "nope=30d"],  # not declared in the estate
    ],
)
def test_bad_usage_exits_2(cli: Any, args: list[str], tmp_path: Path) -> None:
    done = cli(
        "retention", "apply", *args, "--db", f"sqlite:///{tmp_path}/t.db", "--json", cwd=tmp_path
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert json.loads(done.stdout)["error"] == "retention_invalid"
