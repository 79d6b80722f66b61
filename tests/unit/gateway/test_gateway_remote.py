"""The remote decider reports results over ``POST /v1/results``, in order before the
token's next decision (a scripted tether behind httpx's MockTransport)."""

from __future__ import annotations

import asyncio
import json

import httpx

from tether.gateway import RemoteDecider, ToolCall
from tether.sdk import ApiKey, AsyncClient


def test_a_result_reaches_tether_before_the_tokens_next_decision() -> None:
    seen: list[str] = []
    results: list[dict[str, object]] = []

    async def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path == "/v1/results":
            await asyncio.sleep(0.05)  # a slow report: the next decision still waits for it
            results.append(json.loads(request.content))
            return httpx.Response(202, json={"decision_id": "d-1", "task_id": "t-1"})
        if request.url.path == "/v1/tools":
            return httpx.Response(200, json={"tools": {}})
        return httpx.Response(200, json={"decision": True, "context": {"outcome": "allow"}})

    async def main() -> None:
        transport = httpx.MockTransport(handle)
        async with AsyncClient("http://t", credential=ApiKey("k"), transport=transport) as c:
            decider = RemoteDecider(c)
            decider.report_result("tok", "d-1", {"content": [{"type": "text", "text": "DE1"}]})
            await decider.decide("tok", ToolCall("tools/call", "pay", {}), None)

    asyncio.run(main())
    assert seen == ["/v1/results", "/v1/tools", "/access/v1/evaluation"]
    assert results == [
        {
            "token": "tok",
            "decision_id": "d-1",
            "result": {"content": [{"type": "text", "text": "DE1"}]},
        }
    ]


def test_the_json_rpc_request_id_goes_with_the_decision_as_in_process() -> None:
    sent: list[str | None] = []

    async def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/tools":
            return httpx.Response(200, json={"tools": {}})
        sent.append(request.headers.get("x-request-id"))
        return httpx.Response(200, json={"decision": True, "context": {"outcome": "allow"}})

    async def main() -> None:
        transport = httpx.MockTransport(handle)
        async with AsyncClient("http://t", credential=ApiKey("k"), transport=transport) as c:
            decider = RemoteDecider(c)
            await decider.decide("tok", ToolCall("tools/call", "pay", {}), "7")
            await decider.decide("tok", ToolCall("tools/call", "pay", {}), None)
            await decider.decide("tok", ToolCall("tools/call", "pay", {}), "a\nb")

    asyncio.run(main())
    assert sent == ["7", None, None]  # an id that cannot be a header: tether makes one
