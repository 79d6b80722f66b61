"""A running server sees what ``tether apply`` writes to the store within 1 s."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

ServerFactory = Callable[..., Any]
WRITE_POLICY = '@id("allow-write")\npermit(principal, action == Action::"write", resource);\n'


def ask(client: Any, action: str) -> dict[str, Any]:
    response = client.post(
        "/access/v1/evaluation",
        json={
            "subject": {"type": "user", "id": "alice"},
            "action": {"name": action},
            "resource": {"type": "doc", "id": "d1"},
        },
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_apply_through_the_cli_is_live_within_a_second(
    server_factory: ServerFactory, db_url: str, estate_writer: Any, cli: Any, tmp_path: Path
) -> None:
    estate = estate_writer(tmp_path / "estate")
    server = server_factory(db_url=db_url, estate=estate)
    with server.client() as client:
        assert ask(client, "read")["decision"] is True
        assert ask(client, "write")["decision"] is False

        estate_writer(estate, policies={"write.cedar": WRITE_POLICY})
        applied = cli("apply", str(estate), "--db", db_url, "--json")
        assert applied.returncode == 0, applied.stderr
        applied_at = time.monotonic()

        while not ask(client, "write")["decision"]:
            assert time.monotonic() - applied_at < 1.0, "not live within 1 s of `tether apply`"
            time.sleep(0.02)
        live_after = time.monotonic() - applied_at
        answer = ask(client, "write")
        assert answer["context"]["reasons"] == ["allow-write"]
        assert ask(client, "read")["decision"] is False  # the old policy is gone
    with server.client("auditor") as auditor:  # revisions are for auditors (tether.api.app)
        ready = auditor.get("/readyz").json()
        assert ready["estate_revision"] == ready["latest_revision"] == 2
    print(f"\nreload {db_url.split(':')[0]}: live {live_after * 1000:.0f} ms after apply")


def test_an_invalid_apply_changes_nothing_on_the_running_server(
    server_factory: ServerFactory, db_url: str, estate_writer: Any, cli: Any, tmp_path: Path
) -> None:
    estate = estate_writer(tmp_path / "estate")
    server = server_factory(db_url=db_url, estate=estate)
    broken = estate_writer(
        tmp_path / "broken", policies={"bad.cedar": "permit(principal, action resource);\n"}
    )
    result = cli("apply", str(broken), "--db", db_url)
    assert result.returncode == 2
    time.sleep(0.7)  # longer than the reload interval
    with server.client() as client:
        assert ask(client, "read")["decision"] is True
    with server.client("auditor") as auditor:
        assert auditor.get("/readyz").json()["latest_revision"] == 1
