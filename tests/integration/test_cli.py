"""The ``tether`` command line against a real store: exit codes, JSON shapes, messages."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def applied(estate_writer: Any, cli: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite store with the tiny estate applied (the detailed CLI tests run on it)."""
    db_url = f"sqlite:///{tmp_path_factory.mktemp('store')}/tether.db"
    estate = estate_writer(tmp_path_factory.mktemp("estate"))
    result = cli("apply", str(estate), "--db", db_url, "--json")
    assert result.returncode == 0, result.stderr
    return db_url


def test_round_trip_on_each_backend(
    db_url: str, estate_writer: Any, cli: Any, tmp_path: Path
) -> None:
    estate = estate_writer(tmp_path / "estate")
    result = cli("apply", str(estate), "--db", db_url, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["revision"], summary["changed"]) == (1, True)
    assert {"kind": "identity", "name": "alice", "op": "create"} in summary["changes"]

    allowed = check(cli, db_url, "--json")
    assert allowed.returncode == 0, allowed.stderr
    denied = check(cli, db_url, "--json", action="delete")
    assert denied.returncode == 1, denied.stderr

    listed = cli("decisions", "--db", db_url, "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {r["decision_id"]: r for r in json.loads(listed.stdout)["decisions"]}
    assert rows[json.loads(allowed.stdout)["decision_id"]]["outcome"] == "allow"
    assert rows[json.loads(denied.stdout)["decision_id"]]["outcome"] == "deny"
    assert all(r["at"].endswith("+00:00") for r in rows.values())

    identities = cli("identity", "list", "--db", db_url, "--json")
    assert identities.returncode == 0, identities.stderr
    assert [i["id"] for i in json.loads(identities.stdout)["identities"]] == ["alice"]


def check(cli: Any, db: str, *extra: str, subject: str = "user:alice", action: str = "read") -> Any:
    return cli(
        "check",
        "--subject",
        subject,
        "--action",
        action,
        "--resource",
        "doc:d1",
        "--db",
        db,
        *extra,
    )


def test_apply_again_is_idempotent(
    applied: str, cli: Any, tmp_path: Path, estate_writer: Any
) -> None:
    result = cli("apply", str(estate_writer(tmp_path / "same")), "--db", applied, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["changed"] is False
    assert summary["revision"] == 1


def test_check_allow_exits_0_with_the_json_shape(applied: str, cli: Any) -> None:
    result = check(cli, applied, "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert set(answer) == {"decision", "decision_id", "outcome", "reasons", "obligations", "errors"}
    assert answer["decision"] is True
    assert answer["outcome"] == "allow"
    assert answer["reasons"] == ["allow-read"]
    assert answer["obligations"] == {}
    assert answer["errors"] == []


def test_check_deny_exits_1(applied: str, cli: Any) -> None:
    result = check(cli, applied, "--json", action="delete")
    assert result.returncode == 1, result.stderr
    answer = json.loads(result.stdout)
    assert answer["decision"] is False
    assert answer["outcome"] == "deny"


def test_check_for_people_prints_the_outcome(applied: str, cli: Any) -> None:
    result = check(cli, applied)
    assert result.returncode == 0
    assert "allow" in result.stdout
    assert "allow-read" in result.stdout


@pytest.mark.parametrize("subject", ["alice", "user:", ":alice"])
def test_bad_subject_exits_2_with_a_message(applied: str, cli: Any, subject: str) -> None:
    result = check(cli, applied, subject=subject)
    assert result.returncode == 2
    assert "--subject must look like `type:id`" in result.stderr
    assert f"`{subject}`" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_context_exits_2(applied: str, cli: Any) -> None:
    result = check(cli, applied, "--context", "{not json", "--json")
    assert result.returncode == 2
    assert json.loads(result.stdout)["message"].startswith("--context is not valid JSON")


def test_namespaced_types_are_split_at_the_single_colon(applied: str, cli: Any) -> None:
    result = check(cli, applied, "--json", subject="Acme::User:alice")
    assert result.returncode == 0, result.stderr  # allow-read permits any principal
    decisions = json.loads(cli("decisions", "--db", applied, "--json", "--limit", "1").stdout)
    latest = decisions["decisions"][0]
    assert (latest["subject_type"], latest["subject_id"]) == ("Acme::User", "alice")


def test_decisions_lists_what_check_decided(applied: str, cli: Any) -> None:
    decided = json.loads(check(cli, applied, "--json", action="delete").stdout)
    result = cli("decisions", "--db", applied, "--json", "--action", "delete")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["decisions"]
    row = next(r for r in rows if r["decision_id"] == decided["decision_id"])
    assert row["subject_type"] == "user"
    assert row["subject_id"] == "alice"
    assert row["action"] == "delete"
    assert row["outcome"] == "deny"
    assert row["decision"] is False
    assert row["caller"] == "cli"
    assert row["at"].endswith("+00:00")
    assert all(r["action"] == "delete" for r in rows)


def test_decisions_since_honours_the_utc_offset(applied: str, cli: Any) -> None:
    decided = json.loads(check(cli, applied, "--json", action="audit").stdout)
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    in_an_hour = datetime.now(UTC) + timedelta(hours=1)
    for moment, expected in ((an_hour_ago, True), (in_an_hour, False)):
        since = moment.astimezone(timezone(timedelta(hours=2))).isoformat()
        result = cli("decisions", "--db", applied, "--json", "--since", since)
        assert result.returncode == 0, result.stderr
        ids = {r["decision_id"] for r in json.loads(result.stdout)["decisions"]}
        assert (decided["decision_id"] in ids) is expected, since


def test_markup_like_values_are_printed_not_interpreted(applied: str, cli: Any) -> None:
    result = check(cli, applied, subject="[/x]:a")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "[/x]" in result.stdout


def test_decisions_with_a_bad_since_exits_2(applied: str, cli: Any) -> None:
    result = cli("decisions", "--db", applied, "--since", "yesterday")
    assert result.returncode == 2
    assert "`since` must be an ISO 8601 time" in result.stderr


def test_identity_list_json(applied: str, cli: Any) -> None:
    result = cli("identity", "list", "--db", applied, "--json")
    assert result.returncode == 0, result.stderr
    identities = json.loads(result.stdout)["identities"]
    assert [i["id"] for i in identities] == ["alice"]
    alice = identities[0]
    assert (alice["kind"], alice["owner"], alice["origin"]) == ("user", "team-a", "estate")
    assert alice["created_at"].endswith("+00:00")


def test_apply_of_an_invalid_estate_exits_2_naming_file_and_line(
    applied: str, cli: Any, estate_writer: Any, tmp_path: Path
) -> None:
    broken = estate_writer(
        tmp_path / "broken",
        policies={
            "ok.cedar": '@id("fine") permit(principal, action, resource);\n',
            "bad.cedar": "// first line\n\npermit(principal, action resource);\n",
        },
    )
    result = cli("apply", str(broken), "--db", applied)
    assert result.returncode == 2
    assert "bad.cedar:3" in result.stderr
    as_json = cli("apply", str(broken), "--db", applied, "--json")
    assert as_json.returncode == 2
    problems = json.loads(as_json.stdout)["problems"]
    assert any(p["file"].endswith("bad.cedar") and p["line"] == 3 for p in problems)
    # Nothing was applied.
    listed = json.loads(cli("identity", "list", "--db", applied, "--json").stdout)
    assert [i["id"] for i in listed["identities"]] == ["alice"]


def test_apply_of_a_yaml_typo_exits_2_naming_file_and_line(
    applied: str, cli: Any, estate_writer: Any, tmp_path: Path
) -> None:
    broken = estate_writer(tmp_path / "typo", yaml="idenities: []\n")
    result = cli("apply", str(broken), "--db", applied, "--json")
    assert result.returncode == 2
    problems = json.loads(result.stdout)["problems"]
    assert any(p["file"].endswith("estate.yaml") and p["line"] == 5 for p in problems), problems


def test_apply_of_a_missing_folder_exits_2(applied: str, cli: Any, tmp_path: Path) -> None:
    result = cli("apply", str(tmp_path / "nope"), "--db", applied)
    assert result.returncode == 2
    assert "is not a folder" in result.stderr
