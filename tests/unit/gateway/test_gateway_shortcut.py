"""The ``tools/call`` shortcut's reading of a request: what it takes, what it leaves to the
SDK (the whole path is in tests/integration/test_gateway_mcp.py)."""

from __future__ import annotations

import anyio
import orjson
import pytest
from starlette.types import Message, Receive

from tether.gateway._shortcut import _ordinary, _read, _tool_call

CALL = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "read_invoice"}}
HEADERS = {
    "authorization": "Bearer abc",
    "session": "s-1",
    "version": "2025-06-18",
    "type": "application/json",
    "accept": "application/json, text/event-stream",
}


def test_a_single_tools_call_request_is_taken() -> None:
    assert _tool_call(orjson.dumps(CALL)) == CALL
    assert _tool_call(orjson.dumps({**CALL, "id": "call-7"})) is not None


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        orjson.dumps([CALL]),  # a batch
        orjson.dumps({k: v for k, v in CALL.items() if k != "id"}),  # a notification
        orjson.dumps({**CALL, "id": True}),
        orjson.dumps({**CALL, "id": None}),
        orjson.dumps({**CALL, "jsonrpc": "1.0"}),
        orjson.dumps({**CALL, "method": "tools/list"}),
        orjson.dumps({**CALL, "params": ["read_invoice"]}),
        orjson.dumps({**CALL, "extra": 1}),
    ],
    ids=["not-json", "batch", "notification", "bool-id", "null-id", "v1", "other", "list", "extra"],
)
def test_anything_else_is_left_to_the_sdk(body: bytes) -> None:
    assert _tool_call(body) is None


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("authorization", None),
        ("authorization", "Basic abc"),
        ("authorization", "Bearer "),
        ("session", None),
        ("version", None),
        ("version", "2026-07-28"),  # another era: the SDK's modern path
        ("type", "text/plain"),
        ("accept", "text/event-stream"),
    ],
)
def test_headers_the_sdk_would_answer_otherwise_leave_it_to_the_sdk(
    header: str, value: str | None
) -> None:
    assert _ordinary(HEADERS)
    changed = {k: v for k, v in HEADERS.items() if k != header}
    if value is not None:
        changed[header] = value
    assert not _ordinary(changed)


def _receiving(*messages: Message) -> Receive:
    pending = list(messages)

    async def receive() -> Message:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    return receive


@pytest.mark.parametrize(
    ("chunks", "length", "whole"),
    [
        ([b'{"a":', b" 1}"], 8, True),
        ([b'{"a": 1}'], 7, False),  # longer than its Content-Length
        ([b'{"a"'], 8, False),  # shorter
    ],
)
def test_the_body_is_read_once_and_given_to_the_sdk_again(
    chunks: list[bytes], length: int, whole: bool
) -> None:
    messages: list[Message] = [
        {"type": "http.request", "body": chunk, "more_body": n < len(chunks) - 1}
        for n, chunk in enumerate(chunks)
    ]
    receive = _receiving(*messages)

    async def both() -> tuple[bytes | None, list[Message]]:
        body, replay = await _read(receive, length)
        again = [await replay() for _ in messages]
        return body, again

    body, again = anyio.run(both)
    assert body == (b"".join(chunks) if whole else None)
    assert again == messages
