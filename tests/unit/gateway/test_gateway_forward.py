"""``tools/call`` forwarded to an HTTP upstream as one JSON-RPC POST (no network: a fake
upstream connection answers the bytes the forwarder writes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import orjson
import pytest
from anyio.abc import ByteStream
from mcp.shared.exceptions import MCPError

from tether.gateway._forward import (
    DECLINED,
    ToolForwarder,
    UpstreamExpired,
    UpstreamProtocolError,
)

URL = "http://upstream.test/mcp"
RESULT = {"content": [{"type": "text", "text": "INV-1"}], "isError": False}
Answer = Callable[[dict[str, str], Any], bytes]


class FakeUpstream(ByteStream):
    """One connection: each request written is answered with ``answer(headers, body)``."""

    def __init__(self, answer: Answer, seen: list[tuple[dict[str, str], Any]]) -> None:
        self.answer, self.seen, self.pending = answer, seen, b""

    async def send(self, item: bytes) -> None:
        head, _, body = item.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")[1:]
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        self.seen.append((headers, orjson.loads(body)))
        self.pending += self.answer(headers, orjson.loads(body))

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if not self.pending:
            raise anyio.EndOfStream
        chunk, self.pending = self.pending[:max_bytes], self.pending[max_bytes:]
        return chunk

    async def send_eof(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


def http(status: int, body: bytes, kind: str = "application/json") -> bytes:
    head = f"HTTP/1.1 {status} X\r\ncontent-type: {kind}\r\ncontent-length: {len(body)}\r\n\r\n"
    return head.encode() + body


def forwarding(
    answer: Answer, seen: list[tuple[dict[str, str], Any]] | None = None
) -> ToolForwarder:
    """A forwarder in session `s-1` of a fake upstream."""
    requests = [] if seen is None else seen

    async def connect() -> ByteStream:
        return FakeUpstream(answer, requests)

    forwarder = ToolForwarder(URL, connect)
    forwarder.session_id, forwarder.protocol_version = "s-1", "2025-06-18"
    return forwarder


def call(forwarder: ToolForwarder) -> dict[str, Any]:
    return anyio.run(forwarder.call_tool, {"name": "read_invoice", "arguments": {"id": "INV-1"}})


def events(*messages: Any) -> bytes:
    return b"".join(b"event: message\r\ndata: " + orjson.dumps(m) + b"\r\n\r\n" for m in messages)


def sse(body: bytes) -> bytes:
    return http(200, body, "text/event-stream")


def response(body: Any, result: Any) -> bytes:
    return http(200, orjson.dumps({"jsonrpc": "2.0", "id": body["id"], "result": result}))


def test_a_json_answer_is_the_result_and_the_connection_is_kept() -> None:
    seen: list[tuple[dict[str, str], Any]] = []
    opened: list[int] = []

    def answer(headers: dict[str, str], body: Any) -> bytes:
        return response(body, RESULT)

    forwarder = forwarding(answer, seen)
    connect = forwarder._connect

    async def counting() -> ByteStream:
        opened.append(1)
        return await connect()

    forwarder._connect = counting

    async def twice() -> list[dict[str, Any]]:
        params = {"name": "read_invoice", "arguments": {"id": "INV-1"}}
        return [await forwarder.call_tool(params), await forwarder.call_tool(params)]

    assert anyio.run(twice) == [RESULT, RESULT]
    assert len(opened) == 1
    headers, body = seen[0]
    assert headers["mcp-session-id"] == "s-1"
    assert headers["mcp-protocol-version"] == "2025-06-18"
    assert body["method"] == "tools/call"
    assert body["params"] == {"name": "read_invoice", "arguments": {"id": "INV-1"}}
    assert seen[0][1]["id"] != seen[1][1]["id"]


def test_an_sse_answer_is_read_to_its_end_and_a_server_request_is_declined() -> None:
    seen: list[tuple[dict[str, str], Any]] = []

    def answer(headers: dict[str, str], body: Any) -> bytes:
        if "method" not in body:  # the gateway's answer to the upstream's request
            return http(202, b"")
        progress = {"jsonrpc": "2.0", "method": "notifications/progress", "params": {}}
        sampling = {"jsonrpc": "2.0", "id": 7, "method": "sampling/createMessage"}
        done = {"jsonrpc": "2.0", "id": body["id"], "result": RESULT}
        return sse(events(progress, sampling, done))

    assert call(forwarding(answer, seen)) == RESULT
    assert seen[1][1] == {"jsonrpc": "2.0", "id": 7, "error": DECLINED}


def test_the_upstreams_own_error_is_passed_as_it_is() -> None:
    def answer(headers: dict[str, str], body: Any) -> bytes:
        error = {"code": -32602, "message": "unknown tool", "data": {"tool": "x"}}
        return http(200, orjson.dumps({"jsonrpc": "2.0", "id": body["id"], "error": error}))

    with pytest.raises(MCPError) as caught:
        call(forwarding(answer))
    assert (caught.value.code, caught.value.message) == (-32602, "unknown tool")
    assert caught.value.data == {"tool": "x"}


def test_a_forgotten_session_and_answers_that_are_no_response_are_named() -> None:
    def forgotten(headers: dict[str, str], body: Any) -> bytes:
        return http(404, b'{"error": "session not found"}')

    with pytest.raises(UpstreamExpired, match="forgot session `s-1`"):
        call(forwarding(forgotten))

    for answer, message in [
        (http(200, b"<html>", "text/html"), "content type `text/html`"),
        (http(200, b"{no"), "not JSON"),
        (http(200, b'{"jsonrpc": "2.0", "id": 1}'), "neither a result nor an error"),
        (sse(events({"jsonrpc": "2.0", "method": "notifications/progress"})), "ended without"),
        (b"", "broke the HTTP exchange"),
    ]:
        with pytest.raises(UpstreamProtocolError, match=message):
            call(forwarding(lambda headers, body, answer=answer: answer))


def test_an_event_stream_cut_inside_a_crlf_still_gives_each_event() -> None:
    from tether.gateway._forward import _event_data

    stream = events({"a": 1}, {"b": 2})
    cut = stream.index(b"\r\n\r\n") + 3  # between the last CR and LF of the first event

    async def chunks() -> Any:
        yield stream[:cut]
        yield stream[cut:]

    async def collect() -> list[Any]:
        return [orjson.loads(data) async for data in _event_data(chunks())]

    assert anyio.run(collect) == [{"a": 1}, {"b": 2}]


class _DropsAfterReading(FakeUpstream):
    """A kept connection that reads the request (the tool runs) and then closes."""

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if self.dropping:
            raise anyio.EndOfStream
        return await super().receive(max_bytes)

    dropping = False


def test_a_call_written_to_a_connection_that_then_drops_is_never_sent_twice() -> None:
    seen: list[tuple[dict[str, str], Any]] = []
    links: list[_DropsAfterReading] = []

    def answer(_headers: dict[str, str], body: Any) -> bytes:
        return http(200, orjson.dumps({"jsonrpc": "2.0", "id": body["id"], "result": RESULT}))

    async def connect() -> ByteStream:
        links.append(_DropsAfterReading(answer, seen))
        return links[-1]

    forwarder = ToolForwarder(URL, connect)
    forwarder.session_id = "s-1"

    async def two_calls() -> None:
        await forwarder.call_tool({"name": "pay_invoice", "arguments": {}})
        links[0].dropping = True  # the kept connection: it takes the next call, then drops
        with pytest.raises(UpstreamProtocolError):
            await forwarder.call_tool({"name": "pay_invoice", "arguments": {}})

    anyio.run(two_calls)
    assert len(seen) == 2, "the second call reached the upstream once, and was not resent"
    assert len(links) == 1


class _Trickling(FakeUpstream):
    """A connection whose answers arrive a few bytes at a time (heads, chunk sizes and
    bodies cut everywhere)."""

    async def receive(self, max_bytes: int = 65536) -> bytes:
        return await super().receive(3)


def counted(
    answer: Answer, stream: type[FakeUpstream] = FakeUpstream
) -> tuple[ToolForwarder, list[int]]:
    """A forwarder whose upstream connections are counted."""
    opened: list[int] = []
    forwarder = forwarding(answer)

    async def connect() -> ByteStream:
        opened.append(1)
        return stream(answer, [])

    forwarder._connect = connect
    return forwarder, opened


def two_calls(forwarder: ToolForwarder) -> list[dict[str, Any]]:
    async def twice() -> list[dict[str, Any]]:
        params = {"name": "read_invoice", "arguments": {"id": "INV-1"}}
        return [await forwarder.call_tool(params), await forwarder.call_tool(params)]

    return anyio.run(twice)


def chunked(body: bytes, kind: str = "application/json") -> bytes:
    head = f"HTTP/1.1 200 OK\r\ncontent-type: {kind}\r\ntransfer-encoding: chunked\r\n\r\n"
    pieces = [body[i : i + 7] for i in range(0, len(body), 7)]
    framed = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces)
    return head.encode() + framed + b"0\r\n\r\n"


def test_answers_cut_anywhere_across_reads_are_read_whole_and_the_connection_kept() -> None:
    def answer(headers: dict[str, str], body: Any) -> bytes:
        done = {"jsonrpc": "2.0", "id": body["id"], "result": RESULT}
        if body["params"]["arguments"].get("sse"):
            return chunked(events(done), "text/event-stream")
        return b"HTTP/1.1 100 Continue\r\n\r\n" + chunked(orjson.dumps(done))

    forwarder, opened = counted(answer, _Trickling)
    assert two_calls(forwarder) == [RESULT, RESULT]
    sse = {"name": "read_invoice", "arguments": {"sse": True}}
    assert anyio.run(forwarder.call_tool, sse) == RESULT
    assert len(opened) == 1


def test_an_answer_without_a_length_ends_with_the_connection_which_is_not_kept() -> None:
    def answer(headers: dict[str, str], body: Any) -> bytes:
        done = orjson.dumps({"jsonrpc": "2.0", "id": body["id"], "result": RESULT})
        return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n" + done

    forwarder, opened = counted(answer, _Trickling)
    assert two_calls(forwarder) == [RESULT, RESULT]
    assert len(opened) == 2


def test_a_connection_the_upstream_closes_or_spoils_is_not_kept() -> None:
    for after in [b"", b"HTTP/1.1 200 OK\r\n", b"garbage"]:

        def answer(headers: dict[str, str], body: Any, after: bytes = after) -> bytes:
            done = orjson.dumps({"jsonrpc": "2.0", "id": body["id"], "result": RESULT})
            closing = http(200, done).replace(b"\r\n\r\n", b"\r\nconnection: close\r\n\r\n", 1)
            return (closing if not after else http(200, done)) + after

        forwarder, opened = counted(answer)
        assert two_calls(forwarder) == [RESULT, RESULT]
        assert len(opened) == 2, after


def test_an_answer_cut_short_or_too_long_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    whole = chunked(b'{"jsonrpc": "2.0", "id": "tether-1", "result": {}}')
    for cut, message in [
        (http(200, b'{"jsonrpc": "2.0"}')[:-3], "in the middle of the answer"),
        (whole[: whole.rindex(b"0\r\n")], "in the middle of the answer"),
        (b"HTTP/1.1 200 OK\r\ncontent-ty", "broke the HTTP exchange"),
        (b"HTTP/1.1 101 Switching Protocols\r\nupgrade: h2c\r\n\r\n", "broke the HTTP"),
    ]:
        with pytest.raises(UpstreamProtocolError, match=message):
            call(forwarding(lambda headers, body, cut=cut: cut))

    from tether.gateway import _forward

    monkeypatch.setattr(_forward, "MAX_ANSWER_BYTES", 100)
    big = {"content": [{"type": "text", "text": "x" * 200}]}
    with pytest.raises(UpstreamProtocolError, match="exceeds 100 bytes"):
        call(forwarding(lambda headers, body: response(body, big)))
    with pytest.raises(UpstreamProtocolError, match="exceeds 100 bytes"):
        call(forwarding(lambda headers, body: chunked(orjson.dumps(big))))


def test_a_session_id_that_cannot_be_a_header_is_never_written() -> None:
    seen: list[tuple[dict[str, str], Any]] = []
    forwarder = forwarding(lambda headers, body: response(body, RESULT), seen)
    forwarder.session_id = "s-1\r\nx-injected: 1"
    with pytest.raises(UpstreamProtocolError, match="cannot be sent as header `mcp-session-id`"):
        call(forwarder)
    assert seen == []
