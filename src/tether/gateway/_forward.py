"""``tools/call`` to a streamable HTTP upstream as one JSON-RPC POST (MCP 2025-06-18,
"Transports"), on keep-alive HTTP/1.1 connections of the gateway's own.

The SDK's :class:`~mcp.client.session.ClientSession` opens the upstream session
(``initialize``), lists and reads; a call only needs that session's id and protocol
version, which :class:`ToolForwarder` takes from the session's own answers (an event
hook of the SDK's ``httpx2`` client). Costs measured on the SDK's path and avoided here:
the SDK's client closes an SSE answer as soon as it holds the response, which closes the
connection under it (a new TCP connection per call), and ``httpx2`` spends ~0.8 ms of CPU
per request on this kind of machine (against ~0.25 ms for ``h11`` over an anyio stream,
request written in one piece). HTTP/1.1 framing is ``h11``'s; the answer (JSON, or the
events of an SSE stream) is read to its end, so its connection is used again.

A request the upstream sends back while it answers (sampling, elicitation) is declined
with a JSON-RPC error, as the SDK's client does without those callbacks.
"""

from __future__ import annotations

import itertools
import select
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import anyio
import h11
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


class _Link:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, stream: ByteStream) -> None:
        self.stream = stream
        self.http = h11.Connection(h11.CLIENT)
        self.idle_since = time.monotonic()

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

    async def next_event(self) -> Any:
        while True:
            try:
                event = self.http.next_event()
            except h11.RemoteProtocolError as exc:  # the peer closed or spoke no HTTP
                raise _Closed(f"the upstream broke the HTTP exchange: {exc}") from None
            if event is not h11.NEED_DATA:
                return event
            try:
                data = await self.stream.receive(_CHUNK)
            except anyio.EndOfStream:
                data = b""
            self.http.receive_data(data)

    @property
    def reusable(self) -> bool:
        return self.http.our_state is h11.DONE and self.http.their_state is h11.DONE


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
        link, response = await self._send(body)
        try:
            kind = ""
            for name, value in response.headers:
                if name == b"content-type":
                    kind = value.decode("latin-1").partition(";")[0].strip().lower()
            yield response.status_code, kind, _chunks(link)
        except BaseException:
            await link.stream.aclose()
            raise
        if link.reusable and len(self._idle) < KEPT_CONNECTIONS:
            link.http.start_next_cycle()
            link.idle_since = time.monotonic()
            self._idle.append(link)
        else:
            await link.stream.aclose()

    async def _send(self, body: bytes) -> tuple[_Link, h11.Response]:
        """The request written in one piece, and the head of its answer.

        A kept connection is used only while it looks open; if writing to it fails, the
        request did not reach the upstream whole and goes once on a new connection. A
        request that was written is never sent again, whatever happens next: the
        upstream may have run the tool (a failed read is the caller's error to report).
        """
        link = await self._kept()
        if link is not None:
            try:
                await _write(link, self._request(body), body)
            except (anyio.BrokenResourceError, OSError):
                await link.stream.aclose()
                link = None
            except BaseException:
                await link.stream.aclose()
                raise
        if link is None:
            link = _Link(await self._connect())
            try:
                await _write(link, self._request(body), body)
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

    def _request(self, body: bytes) -> h11.Request:
        headers = [
            ("host", self._host),
            ("accept", "application/json, text/event-stream"),
            ("content-type", "application/json"),
            ("content-length", str(len(body))),
        ]
        if self.session_id is not None:
            headers.append((SESSION_HEADER, self.session_id))
        if self.protocol_version is not None:
            headers.append((VERSION_HEADER, self.protocol_version))
        return h11.Request(method="POST", target=self._target, headers=headers)

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


async def _write(link: _Link, request: h11.Request, body: bytes) -> None:
    http = link.http
    pieces = (http.send(request), http.send(h11.Data(data=body)), http.send(h11.EndOfMessage()))
    await link.stream.send(b"".join(piece for piece in pieces if piece))


async def _head(link: _Link) -> h11.Response:
    response = await link.next_event()
    while isinstance(response, h11.InformationalResponse):
        response = await link.next_event()
    if not isinstance(response, h11.Response):
        raise _Closed(f"the upstream closed the connection ({type(response).__name__})")
    return response


async def _chunks(link: _Link) -> AsyncIterator[bytes]:
    size = 0
    while True:
        event = await link.next_event()
        if isinstance(event, h11.Data):
            size += len(event.data)
            if size > MAX_ANSWER_BYTES:
                raise UpstreamProtocolError(f"the answer exceeds {MAX_ANSWER_BYTES} bytes")
            yield bytes(event.data)
        elif isinstance(event, h11.EndOfMessage):
            return
        else:
            raise _Closed(f"the upstream closed the connection ({type(event).__name__})")


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
