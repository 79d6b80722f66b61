"""``POST /v1/events`` in process: batches stored by the chain writer, problems as RFC 9457."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from store_support import record

from tether.api.app import TetherApp, create_app
from tether.callers import Role, add_api_key
from tether.config import load_settings
from tether.services import Tether
from tether.telemetry.audit import verify_chain


@pytest.fixture
def app(tmp_path: Path) -> Iterator[TetherApp]:
    settings = load_settings(
        {},
        database_url=f"sqlite:///{tmp_path}/t.db",
        master_key_file=str(tmp_path / "master.key"),
    )
    tether = Tether(settings)
    application = create_app(tether)
    yield application
    application.gate.close()
    tether.close()


def post(app: TetherApp, body: Any, *, key: str | None, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.post("/v1/events", json=body, headers=headers, **kwargs)

    return asyncio.run(send())


def test_a_batch_is_stored_chained_and_deduplicated(app: TetherApp) -> None:
    key = add_api_key(app.tether.engine, "collector", roles=(Role.INGEST,)).key
    body = {"source": "cloudtrail", "events": [record(1), record(2), {"nope": 1}, 7]}
    first = post(app, body, key=key)
    assert first.status_code == 200, first.text
    answer = first.json()
    assert (answer["ingested"], answer["duplicates"]) == (2, 0)
    assert [e["index"] for e in answer["errors"]] == [2, 3]
    again = post(app, body, key=key).json()
    assert (again["ingested"], again["duplicates"]) == (0, 2)
    auto = post(app, {"source": "auto", "events": [record(3)]}, key=key).json()
    assert auto["ingested"] == 1
    assert verify_chain(app.tether.engine, app.tether.keys).ok


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"source": "cloudtrail"},
        {"source": "syslog", "events": []},
        {"source": "jsonl", "events": []},
        {"source": "jsonl", "mapping": {"principal": "who"}, "events": []},
    ],
)
def test_a_bad_batch_is_a_problem(app: TetherApp, body: Any) -> None:
    key = add_api_key(app.tether.engine, "collector", roles=(Role.INGEST,)).key
    response = post(app, body, key=key)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["error_code"]


def test_only_ingest_and_admin_callers_may_post(app: TetherApp) -> None:
    pep = add_api_key(app.tether.engine, "gw").key
    assert post(app, {"source": "auto", "events": []}, key=pep).status_code == 403
    assert post(app, {"source": "auto", "events": []}, key=None).status_code == 401
