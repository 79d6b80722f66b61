"""``tools/call`` forwarded to an HTTP upstream as one JSON-RPC POST (no network: a mock
upstream behind ``httpx2.MockTransport``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import httpx2
import orjson
import pytest
from mcp.shared.exceptions import MCPError

from tether.gateway._forward import (
    DECLINED,
    ToolForwarder,
    UpstreamExpired,
    UpstreamProtocolError,
)

URL = "http://upstream.test/mcp"
RESULT = {"content": [{"type": "text", "text": "INV-1"}], "isError": False}


def forwarding(answer: Callable[[httpx2.Request, Any], httpx2.Response]) -> ToolForwarder:
    """A forwarder in session `s-1` of a mock upstream: ``answer(request, body)``."""

    def handle(request: httpx2.Request) -> httpx2.Response:
        return answer(request, orjson.loads(request.content))

    forwarder = ToolForwarder(httpx2.AsyncClient(transport=httpx2.MockTransport(handle)), URL)
    forwarder.session_id, forwarder.protocol_version = "s-1", "2025-06-18"
    return forwarder


def call(forwarder: ToolForwarder) -> dict[str, Any]:
    return anyio.run(forwarder.call_tool, {"name": "read_invoice", "arguments": {"id": "INV-1"}})


def events(*messages: Any) -> bytes:
    return b"".join(b"event: message\ndata: " + orjson.dumps(m) + b"\n\n" for m in messages)


def sse(body: bytes) -> httpx2.Response:
    return httpx2.Response(200, content=body, headers={"content-type": "text/event-stream"})


def test_a_json_answer_is_the_result_and_the_session_is_named() -> None:
    seen: list[httpx2.Request] = []

    def answer(request: httpx2.Request, body: Any) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, json={"jsonrpc": "2.0", "id": body["id"], "result": RESULT})

    assert call(forwarding(answer)) == RESULT
    (request,) = seen
    assert request.headers["mcp-session-id"] == "s-1"
    assert request.headers["mcp-protocol-version"] == "2025-06-18"
    body = orjson.loads(request.content)
    assert body["method"] == "tools/call"
    assert body["params"] == {"name": "read_invoice", "arguments": {"id": "INV-1"}}


def test_an_sse_answer_is_read_to_its_end_and_a_server_request_is_declined() -> None:
    posted: list[Any] = []

    def answer(request: httpx2.Request, body: Any) -> httpx2.Response:
        posted.append(body)
        if "method" not in body:  # the gateway's answer to the upstream's request
            return httpx2.Response(202)
        progress = {"jsonrpc": "2.0", "method": "notifications/progress", "params": {}}
        sampling = {"jsonrpc": "2.0", "id": 7, "method": "sampling/createMessage"}
        done = {"jsonrpc": "2.0", "id": body["id"], "result": RESULT}
        return sse(events(progress, sampling, done))

    assert call(forwarding(answer)) == RESULT
    assert posted[1] == {"jsonrpc": "2.0", "id": 7, "error": DECLINED}


def test_the_upstreams_own_error_is_passed_as_it_is() -> None:
    def answer(request: httpx2.Request, body: Any) -> httpx2.Response:
        error = {"code": -32602, "message": "unknown tool", "data": {"tool": "x"}}
        return httpx2.Response(200, json={"jsonrpc": "2.0", "id": body["id"], "error": error})

    with pytest.raises(MCPError) as caught:
        call(forwarding(answer))
    assert (caught.value.code, caught.value.message) == (-32602, "unknown tool")
    assert caught.value.data == {"tool": "x"}


def test_a_forgotten_session_and_answers_that_are_no_response_are_named() -> None:
    def forgotten(request: httpx2.Request, body: Any) -> httpx2.Response:
        return httpx2.Response(404, json={"error": "session not found"})

    with pytest.raises(UpstreamExpired, match="forgot session `s-1`"):
        call(forwarding(forgotten))

    for answer, message in [
        (httpx2.Response(200, text="<html>"), "content type `text/plain`"),
        (
            httpx2.Response(200, content=b"{no", headers={"content-type": "application/json"}),
            "not JSON",
        ),
        (httpx2.Response(200, json={"jsonrpc": "2.0", "id": 1}), "neither a result nor an error"),
        (sse(events({"jsonrpc": "2.0", "method": "notifications/progress"})), "ended without"),
    ]:
        with pytest.raises(UpstreamProtocolError, match=message):
            call(forwarding(lambda request, body, answer=answer: answer))
