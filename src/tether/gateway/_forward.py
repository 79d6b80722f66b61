"""``tools/call`` to a streamable HTTP upstream as one JSON-RPC POST (MCP 2025-06-18,
"Transports"), on keep-alive HTTP/1.1 connections of the gateway's own.

The SDK's :class:`~mcp.client.session.ClientSession` opens the upstream session
(``initialize``), lists and reads; a call only needs that session's id and protocol
version, which :class:`ToolForwarder` takes from the session's own answers (an event
hook of the SDK's ``httpx2`` client). Costs measured on the SDK's path and avoided here:
the SDK's client closes an SSE answer as soon as it holds the response, which closes the
connection under it (a new TCP connection per call), and ``httpx2`` spends ~0.8 ms of CPU
per request on this kind of machine. The request is written by hand in one piece (its
head cached per session); the answer is parsed by ``httptools`` (llhttp, in C, as
uvicorn uses it), which is a fraction of ``h11``'s pure-Python cost. The answer (JSON,
or the events of an SSE stream) is read to its end (by its length, its chunks, or the
upstream closing the connection), so that a connection is used again when the
upstream keeps it open.

A request the upstream sends back while it answers (sampling, elicitation) is declined
with a JSON-RPC error, as the SDK's client does without those callbacks.
"""

from __future__ import annotations

import itertools
import re
import select
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import anyio
import httptools
import httpx2
import orjson
from anyio.abc import ByteStream, SocketAttribute
from mcp.shared.exceptions import MCPError

SESSION_HEADER = "mcp-session-id"
VERSION_HEADER = "mcp-protocol-version"
#: Declining a request of the upstream's (the gateway has no client to ask).
DECLINED = {"code": -32601, "message": "the tether gateway does not forward server requests"}
#: The SDK client's read timeout: a tool may work for minutes.
CALL_TIMEOUT_S = 300.0
#: Idle connections kept for the next calls (one per concurrent call is enough), and how
#: long one stays idle at most: below uvicorn's default keep-alive (5 s), so that a kept
#: connection is seldom one the upstream is closing as the next request goes out.
KEPT_CONNECTIONS = 128
KEPT_IDLE_S = 4.0
MAX_ANSWER_BYTES = 10_000_000
_CHUNK = 65_536
#: What a request head may hold (RFC 9112 §3.2, RFC 9110 §5.5): a target of visible
#: ASCII, header values of visible ASCII, spaces and tabs (no CR, LF or NUL).
_TARGET = re.compile(r"[!-~]+")
_VALUE = re.compile(r"[ -~\t]*")

Connect = Callable[[], Awaitable[ByteStream]]


class UpstreamExpired(Exception):
    """The upstream no longer knows the session (HTTP 404): it must be opened again."""


class UpstreamProtocolError(Exception):
    """An answer that is not the JSON-RPC response to the call."""


def tcp_connect(url: str) -> Connect:
    """Opening a TCP (TLS for ``https``) connection to the host of ``url``."""
    parts = urlsplit(url)
    tls = parts.scheme == "https"
    host, port = parts.hostname or "localhost", parts.port or (443 if tls else 80)
    context = ssl.create_default_context() if tls else None

    async def connect() -> ByteStream:
        if context is None:
            return await anyio.connect_tcp(host, port)
        return await anyio.connect_tcp(
            host, port, ssl_context=context, tls_standard_compatible=False
        )

    return connect


class _Answer:
    """The head and body of one response, as ``httptools`` parses it (its callbacks).

    Informational (1xx) responses before the answer are skipped; anything after the
    answer's end means the connection is not used again.
    """

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.kind = ""
        #: A length or chunks say where the body ends (else the upstream's close does).
        self.framed = False
        self.head = False
        self.done = False
        self.keep_alive = False
        self.trailing = False
        self.body: list[bytes] = []

    def on_message_begin(self) -> None:
        if self.done:
            self.trailing = True
        else:  # the answer, or an informational response before it
            self.kind, self.framed = "", False

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.done:
            return
        name = name.lower()
        if name == b"content-type":
            self.kind = value.decode("latin-1").partition(";")[0].strip().lower()
        elif name == b"content-length" or (
            name == b"transfer-encoding" and b"chunked" in value.lower()
        ):
            self.framed = True

    def on_headers_complete(self) -> None:
        if not self.done:
            self.status = self.parser.get_status_code()
            self.head = self.status >= 200

    def on_body(self, body: bytes) -> None:
        if body and not self.done:
            self.body.append(body)

    def on_message_complete(self) -> None:
        if self.head and not self.done:
            self.done = True
            self.keep_alive = self.parser.should_keep_alive()


class _Link:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, stream: ByteStream) -> None:
        self.stream = stream
        self.idle_since = time.monotonic()
        self.answer: _Answer | None = None

    def looks_open(self) -> bool:
        """Idle briefly enough, and nothing arrived meanwhile: no end of stream, no bytes
        (an idle HTTP/1.1 connection has nothing to say; a TLS close_notify counts)."""
        if time.monotonic() - self.idle_since > KEPT_IDLE_S:
            return False
        raw = self.stream.extra(SocketAttribute.raw_socket, None)  # noqa: S610 (anyio)
        if raw is None:  # not a socket (tests): nothing to look at
            return True
        try:  # readable while idle: the upstream closed it, or sent what nobody asked
            readable, _, _ = select.select([raw.fileno()], [], [], 0)
        except (OSError, ValueError):  # closed already
            return False
        return not readable

    async def read(self, answer: _Answer) -> bool:
        """The next bytes of the answer parsed; ``False`` at the end of the stream."""
        try:
            data = await self.stream.receive(_CHUNK)
        except anyio.EndOfStream:
            return False
        try:
            answer.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            if not answer.done:  # the peer spoke no HTTP (or switched protocols)
                raise _Closed(f"the upstream broke the HTTP exchange: {exc}") from None
            answer.trailing = True  # garbage after a whole answer: not used again
        return True

    @property
    def reusable(self) -> bool:
        answer = self.answer
        return answer is not None and answer.done and answer.keep_alive and not answer.trailing


class ToolForwarder:
    """Posts ``tools/call`` in the upstream session the SDK's client opened."""

    def __init__(self, url: str, connect: Connect | None = None) -> None:
        self.url = url
        parts = urlsplit(url)
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._host = parts.netloc
        self._connect = connect or tcp_connect(url)
        self._idle: list[_Link] = []
        self.session_id: str | None = None
        self.protocol_version: str | None = None
        self._ids = itertools.count(1)
        self._heads: tuple[str | None, str | None, bytes] | None = None

    async def capture(self, response: httpx2.Response) -> None:
        """An ``httpx2`` response hook: the session id the upstream assigns."""
        session_id = response.headers.get(SESSION_HEADER)
        if session_id:
            self.session_id = session_id

    async def call_tool(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The ``result`` of ``tools/call`` with ``params`` (JSON, as the agent sent them).

        Raises:
            MCPError: the upstream's own JSON-RPC error, as it is.
            UpstreamExpired: the upstream forgot the session.
            UpstreamProtocolError: the answer is not a response to the call.
            OSError, anyio.BrokenResourceError: the upstream cannot be reached.
        """
        # String ids never meet the SDK's integer ids in the same upstream session.
        request_id = f"tether-{next(self._ids)}"
        body = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}
        with anyio.fail_after(CALL_TIMEOUT_S):
            async with self._post(orjson.dumps(body)) as (status, kind, chunks):
                if status == 404 and self.session_id is not None:
                    raise UpstreamExpired(f"the upstream forgot session `{self.session_id}`")
                if kind == "text/event-stream":
                    answer = await self._from_events(chunks, request_id)
                elif kind == "application/json":
                    answer = _json(b"".join([chunk async for chunk in chunks]))
                else:
                    raise UpstreamProtocolError(
                        f"HTTP {status} with content type `{kind or 'none'}`"
                    )
        return _result(answer)

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for link in idle:
            await link.stream.aclose()

    @asynccontextmanager
    async def _post(self, body: bytes) -> AsyncIterator[tuple[int, str, AsyncIterator[bytes]]]:
        """POST ``body``: the status, the content type and the body's chunks. The
        connection is kept when the answer was read to its end."""
        link, answer = await self._send(body)
        try:
            yield answer.status, answer.kind, _chunks(link, answer)
        except BaseException:
            await link.stream.aclose()
            raise
        if link.reusable and len(self._idle) < KEPT_CONNECTIONS:
            link.answer = None
            link.idle_since = time.monotonic()
            self._idle.append(link)
        else:
            await link.stream.aclose()

    async def _send(self, body: bytes) -> tuple[_Link, _Answer]:
        """The request written in one piece, and the head of its answer.

        A kept connection is used only while it looks open; if writing to it fails, the
        request did not reach the upstream whole and goes once on a new connection. A
        request that was written is never sent again, whatever happens next: the
        upstream may have run the tool (a failed read is the caller's error to report).
        """
        request = self._request(body)
        link = await self._kept()
        if link is not None:
            try:
                await link.stream.send(request)
            except (anyio.BrokenResourceError, OSError):
                await link.stream.aclose()
                link = None
            except BaseException:
                await link.stream.aclose()
                raise
        if link is None:
            link = _Link(await self._connect())
            try:
                await link.stream.send(request)
            except BaseException:
                await link.stream.aclose()
                raise
        try:
            return link, await _head(link)
        except BaseException:
            await link.stream.aclose()
            raise

    async def _kept(self) -> _Link | None:
        """The most recently used idle connection that looks open (others are closed)."""
        while self._idle:
            link = self._idle.pop()
            if link.looks_open():
                return link
            await link.stream.aclose()
        return None

    def _request(self, body: bytes) -> bytes:
        """The POST of ``body``, head and body in one piece."""
        heads = self._heads
        if heads is None or heads[0] != self.session_id or heads[1] != self.protocol_version:
            heads = self._heads = (self.session_id, self.protocol_version, self._head())
        return b"".join((heads[2], str(len(body)).encode(), b"\r\n\r\n", body))

    def _head(self) -> bytes:
        """The request head up to the value of its ``content-length``.

        Raises:
            UpstreamProtocolError: a value that cannot be sent in an HTTP/1.1 head.
        """
        headers = [
            ("host", self._host),
            ("accept", "application/json, text/event-stream"),
            ("content-type", "application/json"),
        ]
        if self.session_id is not None:
            headers.append((SESSION_HEADER, self.session_id))
        if self.protocol_version is not None:
            headers.append((VERSION_HEADER, self.protocol_version))
        if not _TARGET.fullmatch(self._target):
            raise UpstreamProtocolError(f"`{self._target}` cannot be an HTTP request target")
        lines = [f"POST {self._target} HTTP/1.1"]
        for name, value in headers:
            if not _VALUE.fullmatch(value):
                raise UpstreamProtocolError(f"`{value!r}` cannot be sent as header `{name}`")
            lines.append(f"{name}: {value}")
        lines.append("content-length: ")
        return "\r\n".join(lines).encode("ascii")

    async def _from_events(self, chunks: AsyncIterator[bytes], request_id: str) -> Any:
        answer: Any = None
        async for data in _event_data(chunks):  # to the end: the connection is kept
            message = _json(data)
            if not isinstance(message, dict):
                continue
            if message.get("id") == request_id and "method" not in message:
                answer = message
            elif "method" in message and "id" in message:
                decline = {"jsonrpc": "2.0", "id": message["id"], "error": DECLINED}
                async with self._post(orjson.dumps(decline)) as (_, _, rest):
                    async for _ in rest:
                        pass
        if answer is None:
            raise UpstreamProtocolError("the event stream ended without the response")
        return answer


class _Closed(UpstreamProtocolError):
    """The upstream closed the connection before it answered."""


async def _head(link: _Link) -> _Answer:
    """The answer whose head is parsed (informational responses skipped)."""
    answer = link.answer = _Answer()
    while not answer.head:
        if not await link.read(answer):
            raise _Closed("the upstream broke the HTTP exchange: it closed the connection")
    return answer


async def _chunks(link: _Link, answer: _Answer) -> AsyncIterator[bytes]:
    size = 0
    while True:
        if answer.body:
            data = answer.body[0] if len(answer.body) == 1 else b"".join(answer.body)
            answer.body.clear()
            size += len(data)
            if size > MAX_ANSWER_BYTES:
                raise UpstreamProtocolError(f"the answer exceeds {MAX_ANSWER_BYTES} bytes")
            yield data
        if answer.done:
            return
        if not await link.read(answer):
            if answer.framed:  # shorter than its length, or its last chunk missing
                raise _Closed("the upstream closed the connection in the middle of the answer")
            answer.done = True  # a body without a length ends with the connection


async def _event_data(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The ``data`` of each server-sent event (WHATWG HTML, "Server-sent events"): lines
    end in CRLF, LF or CR, whichever way the chunks cut them."""
    pending = bytearray()
    async for chunk in chunks:
        pending += chunk
        # A CR at the very end may be the first half of a CRLF: wait for the next chunk.
        cut = len(pending) - 1 if pending.endswith(b"\r") else len(pending)
        text = bytes(pending[:cut]).replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        *events, rest = text.split(b"\n\n")
        del pending[:cut]
        pending[:0] = rest
        for event in events:
            lines = [line[5:] for line in event.split(b"\n") if line.startswith(b"data:")]
            data = b"\n".join(line[1:] if line.startswith(b" ") else line for line in lines)
            if data:
                yield data


def _json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise UpstreamProtocolError(f"the answer is not JSON: {exc}") from None


def _result(answer: Any) -> dict[str, Any]:
    if not isinstance(answer, dict):
        raise UpstreamProtocolError("the answer is not a JSON-RPC response")
    error = answer.get("error")
    if isinstance(error, dict) and isinstance(error.get("code"), int):
        raise MCPError(error["code"], str(error.get("message", "")), error.get("data"))
    result = answer.get("result")
    if not isinstance(result, dict):
        raise UpstreamProtocolError("the answer has neither a result nor an error")
    return result
