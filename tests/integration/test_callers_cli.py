"""``tether pep`` and ``tether admin token`` against a real store: output, JSON, exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tether.callers.api_keys import parse_api_key

pytestmark = pytest.mark.slow


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/tether.db"


def test_pep_add_prints_the_key_once_and_list_never(cli: Any, db: str, tmp_path: Path) -> None:
    added = cli("pep", "add", "gw-1", "--owner", "team-edge", "--db", db, cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    assert "shown once" in added.stdout
    key = next(word for word in added.stdout.split() if word.startswith("tpk_"))
    listed = cli("pep", "list", "--db", db, cwd=tmp_path)
    assert listed.returncode == 0
    assert "gw-1" in listed.stdout
    presented = parse_api_key(key)
    assert presented is not None
    assert presented.secret not in listed.stdout
    as_json = json.loads(cli("pep", "list", "--db", db, "--json", cwd=tmp_path).stdout)
    [row] = as_json["keys"]
    assert (row["name"], row["owner"], row["status"], row["roles"]) == (
        "gw-1",
        "team-edge",
        "active",
        ["pep"],
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["pep", "add", "gw", "--role", "admin"], "a PEP key may hold the roles"),
        (["pep", "add", "bad name"], "caller name `bad name`"),
        (["pep", "revoke", "nobody"], "no caller `nobody`"),
        (["admin", "token", "--user", "alice", "--ttl", "forever"], "--ttl must look like"),
        (["admin", "token", "--user", "alice", "--ttl", "2d"], "1 s to 24 h"),
        (["admin", "token", "--user", "alice", "--role", "pep"], "people hold the roles"),
    ],
)
def test_bad_input_exits_2_with_a_message(
    cli: Any, db: str, tmp_path: Path, args: list[str], message: str
) -> None:
    result = cli(*args, "--db", db, cwd=tmp_path)
    assert result.returncode == 2, result.stdout
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_admin_token_json(cli: Any, db: str, tmp_path: Path) -> None:
    result = cli(
        "admin", "token", "--user", "dana", "--ttl", "30m", "--db", db, "--json", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    issued = json.loads(result.stdout)
    assert set(issued) == {"user", "token", "jti", "roles", "expires_at"}
    assert (issued["user"], issued["roles"]) == ("dana", ["admin"])
    assert issued["token"].count(".") == 2
    again = cli("admin", "token", "--user", "dana", "--role", "auditor", "--db", db, cwd=tmp_path)
    assert again.returncode == 2
    assert "not auditor" in again.stderr
