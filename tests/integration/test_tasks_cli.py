"""``tether task``, ``token``, ``trust`` and ``keys`` as a person runs them, and a bundle
rotated under a running server."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from token_support import HELPER, WorkloadKey, task_body, write_estate

pytestmark = pytest.mark.slow

CliRunner = Callable[..., Any]
ServerFactory = Callable[..., Any]


@pytest.fixture
def store(tmp_path: Path, cli: CliRunner) -> tuple[Path, str, WorkloadKey]:
    """An applied test estate in ``tmp_path`` (the commands' working folder)."""
    key = WorkloadKey.generate("wk-1")
    write_estate(tmp_path / "estate", key)
    db = f"sqlite:///{tmp_path}/tether.db"
    applied = cli("apply", str(tmp_path / "estate"), "--db", db, cwd=tmp_path)
    assert applied.returncode == 0, applied.stderr
    (tmp_path / "svid").write_text(key.svid())
    (tmp_path / "helper").write_text(key.svid(HELPER))
    return tmp_path, db, key


def run(cli: CliRunner, folder: Path, *args: str, code: int = 0) -> Any:
    done = cli(*args, "--json", cwd=folder)
    assert done.returncode == code, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout)


def test_tasks_and_tokens_from_the_command_line(
    store: tuple[Path, str, WorkloadKey], cli: CliRunner
) -> None:
    folder, db, _ = store
    opened = run(
        cli, folder, "task", "open", "--db", db, "--identity", "billing-bot", "--purpose", "p",
        "--action", "read_invoice", "--resource", "invoice:*", "--data-class", "confidential",
        "--ttl", "5m",
    )  # fmt: skip
    assert opened["opened_by"] == "cli"
    task_id = run(
        cli, folder, "task", "open", "--db", db, "--proof", "@svid", "--purpose", "invoices",
        "--action", "read_invoice", "--action", "send_email", "--resource", "invoice:*",
        "--resource", "email:*@example.org",
    )["task_id"]  # fmt: skip
    refused = run(
        cli, folder, "task", "open", "--db", db, "--identity", "billing-bot", "--purpose", "p",
        "--action", "refund", "--resource", "invoice:*", code=2,
    )  # fmt: skip
    assert refused["error"] == "intent_exceeds_entitlement"

    issued = run(
        cli, folder, "token", "exchange", "--db", db, "--subject-token", "@svid", "--task", task_id
    )
    assert issued["scope"] == "read_invoice send_email"
    (folder / "token").write_text(issued["access_token"])
    active = run(cli, folder, "token", "introspect", "@token", "--db", db)
    assert (active["active"], active["txn"]) == (True, task_id)

    wider = run(
        cli, folder, "token", "exchange", "--db", db, "--subject-token", "@token",
        "--actor-token", "@helper", "--scope", "read_invoice pay_invoice", code=2,
    )  # fmt: skip
    assert wider["error"] == "scope_exceeds_parent"
    child = run(
        cli, folder, "token", "exchange", "--db", db, "--subject-token", "@token",
        "--actor-token", "@helper", "--scope", "read_invoice",
    )  # fmt: skip
    (folder / "child").write_text(child["access_token"])

    revoked = run(cli, folder, "token", "revoke", "@token", "--db", db)
    assert len(revoked["revoked"]) == 2  # the token and the one delegated from it
    inactive = run(cli, folder, "token", "introspect", "@child", "--db", db, code=1)
    assert inactive == {"active": False, "error_code": "token_revoked"}

    listed = run(cli, folder, "task", "list", "--db", db, "--status", "open")
    assert {t["task_id"] for t in listed["tasks"]} == {task_id, opened["task_id"]}
    ended = run(cli, folder, "task", "end", task_id, "--db", db)
    assert (ended["status"], ended["already_ended"]) == ("ended", False)
    shown = run(cli, folder, "task", "show", task_id, "--db", db)
    assert len(shown["tokens"]) == 2
    assert all(t["revoked_at"] for t in shown["tokens"])


def test_trust_and_keys_from_the_command_line(
    store: tuple[Path, str, WorkloadKey], cli: CliRunner
) -> None:
    folder, db, _ = store
    (folder / "third.json").write_text(json.dumps({"keys": [WorkloadKey.generate("t").jwk()]}))
    added = run(
        cli, folder, "trust", "add", "spiffe://third.org", "--jwks-file", "third.json", "--db", db
    )
    assert added == {"name": "spiffe://third.org", "kind": "spiffe", "origin": "cli"}
    listed = {a["name"]: a for a in run(cli, folder, "trust", "list", "--db", db)["trust"]}
    assert listed["spiffe://third.org"]["origin"] == "cli"
    assert listed["spiffe://example.org"]["origin"] == "estate"
    estate_owned = run(cli, folder, "trust", "remove", "spiffe://example.org", "--db", db, code=2)
    assert estate_owned["error"] == "trust_config_invalid"
    assert run(cli, folder, "trust", "remove", "spiffe://third.org", "--db", db) == {
        "removed": "spiffe://third.org"
    }

    before = run(cli, folder, "keys", "list", "--db", db)["keys"]
    rotated = run(cli, folder, "keys", "rotate", "--db", db)
    assert rotated["active"]["kid"] not in {k["kid"] for k in before}
    statuses = {k["kid"]: k["status"] for k in run(cli, folder, "keys", "list", "--db", db)["keys"]}
    assert statuses[rotated["active"]["kid"]] == "active"
    assert all(statuses[k["kid"]] == "retired" for k in before)


def test_a_rotated_bundle_is_trusted_without_a_restart(
    tmp_path: Path, server_factory: ServerFactory, cli: CliRunner
) -> None:
    old, new = WorkloadKey.generate("wk-1"), WorkloadKey.generate("wk-2")
    estate = write_estate(tmp_path / "estate", old)
    server = server_factory(db_url=f"sqlite:///{tmp_path}/tether.db", estate=estate)

    def open_with(key: WorkloadKey) -> httpx.Response:
        proof = key.svid()
        with httpx.Client(base_url=server.url, timeout=10) as client:
            return client.post(
                "/v1/tasks", json=task_body(), headers={"Authorization": f"Bearer {proof}"}
            )

    assert open_with(old).status_code == 201
    assert open_with(new).status_code == 401
    write_estate(estate, old, new)  # the trust domain publishes its next key
    applied = cli("apply", str(estate), "--db", server.db_url, cwd=Path(server.log_path).parent)
    assert applied.returncode == 0, applied.stderr
    deadline = time.monotonic() + 5
    while open_with(new).status_code != 201:
        assert time.monotonic() < deadline, "the new bundle was not used within 5 s"
        time.sleep(0.1)
