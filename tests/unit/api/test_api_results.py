"""``POST /v1/results`` in process: PEPs only, bounded, bad reports named (RFC 9457)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tether.api.app import TetherApp
from tether.api.results import MAX_RESULT_BODY
from tether.callers import Role, add_api_key


def post(app: TetherApp, key: str, **kwargs: Any) -> httpx.Response:
    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
            return await client.post("/v1/results", headers=headers, **kwargs)

    return asyncio.run(send())


def test_a_result_over_the_bound_is_413_and_a_foreign_token_400(app: TetherApp) -> None:
    key = add_api_key(app.tether.engine, "gateway").key
    big = b'{"token": "t", "decision_id": "d", "result": "' + b"x" * MAX_RESULT_BODY + b'"}'
    too_large = post(app, key, content=big)
    assert too_large.status_code == 413
    assert too_large.json()["error_code"] == "result_too_large"
    foreign = post(app, key, json={"token": "a.b.c", "decision_id": "d-1", "result": [1]})
    assert foreign.status_code == 400
    assert foreign.json()["error_code"] == "result_token_invalid"
    malformed = post(app, key, content=b"{nope")
    assert malformed.json()["error_code"] == "malformed_json"


def test_only_peps_and_admins_report_results(app: TetherApp) -> None:
    collector = add_api_key(app.tether.engine, "collector", roles=(Role.INGEST,)).key
    body = {"token": "a.b.c", "decision_id": "d-1", "result": "r"}
    assert post(app, collector, json=body).status_code == 403
