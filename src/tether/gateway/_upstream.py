"""The MCP server the gateway governs: one client session to it, over streamable HTTP
(``--upstream URL``) or stdio (``--upstream-cmd "CMD ARGS"``: the gateway starts it).

The session lives in a task of its own (:class:`Upstream`): when the upstream drops, only
that task ends, the calls waiting on it fail with a clear error, and the next call
connects again; the gateway's own MCP sessions are not affected. Over HTTP, ``tools/call``
is posted by a :class:`~tether.gateway._forward.ToolForwarder` in the same session, on
the same pool of keep-alive connections.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import httpx2
import mcp_types as types
from anyio.abc import TaskGroup
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from tether.errors import InvalidRequest
from tether.gateway._forward import ToolForwarder, UpstreamExpired

log = logging.getLogger(__name__)
CLIENT_INFO = types.Implementation(name="tether-gateway", version="1")
#: The SDK client's own timeouts (a call may take minutes).
TIMEOUT = httpx2.Timeout(30.0, read=300.0)


@dataclass(frozen=True)
class UpstreamSpec:
    """Where the upstream is: a streamable HTTP URL, or a command to run over stdio."""

    url: str | None = None
    command: tuple[str, ...] = ()
    #: Environment variables a command gets beside the SDK's safe default set.
    env: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, url: str | None, command: str | None) -> UpstreamSpec:
        """From the command line; exactly one of the two must be given.

        Raises:
            InvalidRequest: neither or both, or a URL that is not http(s).
        """
        if (url is None) == (command is None):
            raise InvalidRequest('give exactly one of --upstream URL and --upstream-cmd "CMD"')
        if url is not None:
            if not url.startswith(("http://", "https://")):
                raise InvalidRequest(f"--upstream must be an http(s) URL, got `{url}`")
            return cls(url=url)
        assert command is not None
        try:
            words = tuple(shlex.split(command))
        except ValueError as exc:
            raise InvalidRequest(f"--upstream-cmd cannot be split into words: {exc}") from None
        if not words:
            raise InvalidRequest("--upstream-cmd is empty")
        return cls(command=words)

    def __str__(self) -> str:
        return self.url or shlex.join(self.command)


@dataclass(frozen=True)
class Connection:
    """One live session with the upstream: the SDK's, and its forwarder over HTTP."""

    session: ClientSession
    forwarder: ToolForwarder | None

    async def call_tool(self, params: types.CallToolRequestParams) -> dict[str, Any]:
        """``tools/call`` of the upstream (forwarded as JSON-RPC over HTTP): the
        ``CallToolResult``, validated once, as JSON (aliases, no ``None`` members)."""
        if self.forwarder is None:
            result = await self.session.call_tool(params.name, params.arguments, meta=params.meta)
            if not isinstance(result, types.CallToolResult):  # input-required rounds: not yet
                raise TypeError(f"the upstream answered `{params.name}` with a {type(result)}")
        else:
            forwarded: Mapping[str, Any] = params.model_dump(
                by_alias=True, exclude_none=True, mode="json"
            )
            result = types.CallToolResult.model_validate(await self.forwarder.call_tool(forwarded))
        return result.model_dump(by_alias=True, exclude_none=True, mode="json")


@asynccontextmanager
async def connect(spec: UpstreamSpec) -> AsyncIterator[Connection]:
    """An initialized session with the upstream, closed on exit."""
    async with AsyncExitStack() as stack:
        forwarder: ToolForwarder | None = None
        if spec.url is not None:
            http = await stack.enter_async_context(httpx2.AsyncClient(timeout=TIMEOUT))
            forwarder = ToolForwarder(spec.url)
            stack.push_async_callback(forwarder.aclose)
            http.event_hooks["response"].append(forwarder.capture)
            transport = streamable_http_client(spec.url, http_client=http)
        else:
            params = StdioServerParameters(
                command=spec.command[0], args=list(spec.command[1:]), env=dict(spec.env) or None
            )
            transport = stdio_client(params)
        read, write = await stack.enter_async_context(transport)
        session = await stack.enter_async_context(
            ClientSession(read, write, client_info=CLIENT_INFO)
        )
        initialized = await session.initialize()
        if forwarder is not None:
            forwarder.protocol_version = initialized.protocol_version
        yield Connection(session, forwarder)


class Upstream:
    """The upstream session, (re)connected on demand; safe to share between requests."""

    def __init__(self, spec: UpstreamSpec, tasks: TaskGroup) -> None:
        self.spec = spec
        self._tasks = tasks
        self._connection: Connection | None = None
        self._ended = anyio.Event()  # set to end the current connection
        self._closed = False
        self._lock = anyio.Lock()

    async def session(self) -> ClientSession:
        """The live SDK session, connecting first when there is none.

        Raises:
            ConnectionError: the upstream cannot be reached (the cause is chained).
        """
        return (await self.connection()).session

    async def call_tool(self, params: types.CallToolRequestParams) -> dict[str, Any]:
        """``tools/call`` of the upstream (its result as JSON). A connection that failed
        under the call is dropped, so that the next call opens a new session.

        Raises:
            ConnectionError: the upstream cannot be reached.
        """
        connection = await self.connection()
        try:
            return await connection.call_tool(params)
        except TimeoutError:  # a slow tool: the session is fine, other calls use it
            raise
        except (UpstreamExpired, OSError, anyio.BrokenResourceError):
            self._drop(connection)
            raise

    async def connection(self) -> Connection:
        """The live connection, connecting first when there is none.

        Raises:
            ConnectionError: the upstream cannot be reached (the cause is chained).
        """
        connection = self._connection
        if connection is not None:
            return connection
        async with self._lock:
            if self._connection is None:
                await self._connect()
            if self._connection is None:
                raise ConnectionError(f"cannot connect to `{self.spec}`: {self._error}")
            return self._connection

    async def _connect(self) -> None:
        ready, ended = anyio.Event(), anyio.Event()
        self._error: BaseException | None = None

        async def hold() -> None:
            try:
                async with connect(self.spec) as connection:
                    self._connection, self._ended = connection, ended
                    ready.set()
                    if not self._closed:
                        await ended.wait()
            except Exception as exc:  # the upstream dropped or never came: only this task ends
                self._error = exc
                log.warning("upstream `%s` is gone: %r", self.spec, exc)
            finally:
                if self._ended is ended:  # not a newer connection's
                    self._connection = None
                ready.set()

        self._tasks.start_soon(hold)
        await ready.wait()

    def _drop(self, connection: Connection) -> None:
        if self._connection is connection:
            self._connection = None
            self._ended.set()

    def close(self) -> None:
        self._closed = True
        self._connection = None
        self._ended.set()


@asynccontextmanager
async def open_upstream(spec: UpstreamSpec) -> AsyncIterator[Upstream]:
    """An :class:`Upstream` for the life of the gateway (tries to connect at once)."""
    async with anyio.create_task_group() as tasks:
        upstream = Upstream(spec, tasks)
        try:
            await upstream.session()
        except ConnectionError as exc:
            log.warning("%s; the first call will try again", exc)
        try:
            yield upstream
        finally:
            upstream.close()
