"""The MCP server the gateway governs: one client session to it, over streamable HTTP
(``--upstream URL``) or stdio (``--upstream-cmd "CMD ARGS"``: the gateway starts it).

The session lives in a task of its own (:class:`Upstream`): when the upstream drops, only
that task ends, the calls waiting on it fail with a clear error, and the next call
connects again; the gateway's own MCP sessions are not affected.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
import mcp_types as types
from anyio.abc import TaskGroup
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from tether.errors import InvalidRequest

log = logging.getLogger(__name__)
CLIENT_INFO = types.Implementation(name="tether-gateway", version="1")


@dataclass(frozen=True)
class UpstreamSpec:
    """Where the upstream is: a streamable HTTP URL, or a command to run over stdio."""

    url: str | None = None
    command: tuple[str, ...] = ()

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


@asynccontextmanager
async def connect(spec: UpstreamSpec) -> AsyncIterator[ClientSession]:
    """An initialized client session with the upstream, closed on exit."""
    if spec.url is not None:
        transport = streamable_http_client(spec.url)
    else:
        params = StdioServerParameters(command=spec.command[0], args=list(spec.command[1:]))
        transport = stdio_client(params)
    async with (
        transport as (read, write),
        ClientSession(read, write, client_info=CLIENT_INFO) as session,
    ):
        await session.initialize()
        yield session


class Upstream:
    """The upstream session, (re)connected on demand; safe to share between requests."""

    def __init__(self, spec: UpstreamSpec, tasks: TaskGroup) -> None:
        self.spec = spec
        self._tasks = tasks
        self._session: ClientSession | None = None
        self._lock = anyio.Lock()
        self._stop = anyio.Event()

    async def session(self) -> ClientSession:
        """The live session, connecting first when there is none.

        Raises:
            ConnectionError: the upstream cannot be reached (the cause is chained).
        """
        session = self._session
        if session is not None:
            return session
        async with self._lock:
            if self._session is None:
                await self._connect()
            if self._session is None:
                raise ConnectionError(f"cannot connect to `{self.spec}`: {self._error}")
            return self._session

    async def _connect(self) -> None:
        ready = anyio.Event()
        self._error: BaseException | None = None

        async def hold() -> None:
            try:
                async with connect(self.spec) as session:
                    self._session = session
                    ready.set()
                    await self._stop.wait()
            except Exception as exc:  # the upstream dropped or never came: only this task ends
                self._error = exc
                log.warning("upstream `%s` is gone: %r", self.spec, exc)
            finally:
                self._session = None
                ready.set()

        self._tasks.start_soon(hold)
        await ready.wait()

    def close(self) -> None:
        self._stop.set()


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
