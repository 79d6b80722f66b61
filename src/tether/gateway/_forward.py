"""``tools/call`` to a streamable HTTP upstream as one JSON-RPC POST (MCP 2025-06-18,
"Transports"), on keep-alive connections shared with the SDK's client session.

The SDK's :class:`~mcp.client.session.ClientSession` opens the upstream session
(``initialize``), lists and reads; a call only needs that session's id and protocol
version, which :class:`ToolForwarder` takes from the session's own answers (an event
hook of the shared ``httpx2`` client). Two costs of the SDK's client are avoided: it
closes an SSE answer as soon as it holds the response, which closes the connection under
it (a new TCP connection per call), and it routes every message through its streams and
models. Here the answer (JSON, or the events of an SSE stream) is read to its end, so its
connection goes back to the pool, and only the result is parsed.

A request the upstream sends back while it answers (sampling, elicitation) is declined
with a JSON-RPC error, as the SDK's client does without those callbacks.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import httpx2
import orjson
from mcp.shared.exceptions import MCPError

SESSION_HEADER = "mcp-session-id"
VERSION_HEADER = "mcp-protocol-version"
#: Declining a request of the upstream's (the gateway has no client to ask).
DECLINED = {"code": -32601, "message": "the tether gateway does not forward server requests"}


class UpstreamExpired(Exception):
    """The upstream no longer knows the session (HTTP 404): it must be opened again."""


class UpstreamProtocolError(Exception):
    """An answer that is not the JSON-RPC response to the call."""


class ToolForwarder:
    """Posts ``tools/call`` in the upstream session the SDK's client opened."""

    def __init__(self, http: httpx2.AsyncClient, url: str) -> None:
        self.http = http
        self.url = url
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
            httpx2.HTTPError: the upstream cannot be reached.
        """
        # String ids never meet the SDK's integer ids in the same upstream session.
        request_id = f"tether-{next(self._ids)}"
        body = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}
        async with self.http.stream(
            "POST", self.url, content=orjson.dumps(body), headers=self._headers()
        ) as response:
            if response.status_code == 404 and self.session_id is not None:
                raise UpstreamExpired(f"the upstream forgot session `{self.session_id}`")
            kind = response.headers.get("content-type", "").partition(";")[0].strip().lower()
            if kind == "text/event-stream":
                answer = await self._from_events(response, request_id)
            elif kind == "application/json":
                answer = _json(await response.aread())
            else:
                raise UpstreamProtocolError(
                    f"HTTP {response.status_code} with content type `{kind or 'none'}`"
                )
        return _result(answer)

    def _headers(self) -> dict[str, str]:
        headers = {
            "accept": "application/json, text/event-stream",
            "content-type": "application/json",
        }
        if self.session_id is not None:
            headers[SESSION_HEADER] = self.session_id
        if self.protocol_version is not None:
            headers[VERSION_HEADER] = self.protocol_version
        return headers

    async def _from_events(self, response: httpx2.Response, request_id: str) -> Any:
        answer: Any = None
        async for event in httpx2.EventSource(response):  # to the end: the connection is kept
            if not event.data:
                continue
            message = _json(event.data.encode())
            if not isinstance(message, dict):
                continue
            if message.get("id") == request_id and "method" not in message:
                answer = message
            elif "method" in message and "id" in message:
                decline = {"jsonrpc": "2.0", "id": message["id"], "error": DECLINED}
                await self.http.post(
                    self.url, content=orjson.dumps(decline), headers=self._headers()
                )
        if answer is None:
            raise UpstreamProtocolError("the event stream ended without the response")
        return answer


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
