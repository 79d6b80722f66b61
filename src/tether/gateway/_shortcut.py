"""``tools/call`` in an open MCP session, answered in front of the SDK's transport.

The official SDK's server side costs ~0.5 ms of CPU per request on this kind of machine
before the gateway's handler runs (its bearer middleware, the session transport's memory
streams, the dispatcher, the runner and its middleware, pydantic models of the whole
message). For the one request an agent sends over and over, :class:`ToolCallShortcut`
reads the JSON-RPC body itself, checks what the SDK would check, and runs the same
governed call (:meth:`~tether.gateway._proxy.Gateway.governed_call`: decision,
forwarding, obligations, result report), with the result shaped for the session's
protocol version by the SDK's own ``mcp_types.methods``.

Anything else, or anything unusual, goes to the SDK as it came (the body replayed):
another method, a batch, a notification, no or an unremembered bearer (the SDK answers
401 with its ``WWW-Authenticate``), no session or one the SDK does not hold for this
bearer's principal (404), a terminated or idle-expired session, a protocol version of
another era, a header the transport would refuse (content type, accept, DNS-rebinding
host and origin), a body without a length or over the limit (413), params that do not
validate. The session table, its owners and its idle accounting are the SDK's
(``StreamableHTTPSessionManager``), read through :class:`SdkSessions`; when the SDK's
insides are not as expected, every request goes to the SDK.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import mcp_types as types
import orjson
from mcp.server.auth.middleware.bearer_auth import (
    AuthenticatedUser,
    AuthorizationContext,
    authorization_context,
)
from mcp.server.auth.provider import AccessToken
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError
from mcp_types.methods import serialize_server_result, validate_client_request
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from pydantic import ValidationError
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tether.gateway._decider import REMEMBERED_TOKENS, DeciderUnavailable

log = logging.getLogger(__name__)

_JSON = b"application/json"
_MEMBERS = frozenset({"jsonrpc", "id", "method", "params"})
_WANTED = {
    b"authorization": "authorization",
    b"mcp-session-id": "session",
    b"mcp-protocol-version": "version",
    b"content-type": "type",
    b"content-length": "length",
    b"accept": "accept",
}


class SdkSessions:
    """The SDK's stateful sessions: which transport serves a session for a principal."""

    def __init__(self, manager: StreamableHTTPSessionManager) -> None:
        self._manager = manager
        # Private to the SDK (mcp 2.x): without them, no shortcut (all to the SDK).
        self.usable = isinstance(getattr(manager, "_server_instances", None), dict) and (
            isinstance(getattr(manager, "_session_owners", None), dict)
        )

    def transport(self, session_id: str, principal: AuthorizationContext) -> Any | None:
        """The session's live transport if ``principal`` (the SDK's
        ``authorization_context`` of the bearer's user) opened it, else ``None``."""
        if not self.usable:
            return None
        transport = self._manager._server_instances.get(session_id)
        if transport is None or getattr(transport, "is_terminated", True):
            return None
        if self._manager._session_owners.get(session_id) != principal:
            return None
        idle = getattr(transport, "idle_scope", None)
        if idle is not None and idle.cancel_called:
            return None
        return transport


@contextmanager
def _in_flight(transport: Any) -> Iterator[None]:
    """A request in flight holds the session, as the SDK's ``handle_request`` counts it:
    its idle countdown stops, and starts again after the last request."""
    idle, timeout = (
        getattr(transport, "idle_scope", None),
        getattr(transport, "_idle_timeout", None),
    )
    if idle is None or timeout is None or not hasattr(transport, "_requests_in_flight"):
        yield
        return
    transport._requests_in_flight += 1
    idle.deadline = math.inf
    try:
        yield
    finally:
        transport._requests_in_flight -= 1
        if not transport._requests_in_flight:
            idle.deadline = anyio.current_time() + timeout


class ToolCallShortcut:
    """ASGI middleware answering ``tools/call`` in an existing session (see the module)."""

    def __init__(
        self, app: ASGIApp, *, gateway: Any, sessions: SdkSessions, path: str, max_body: int
    ) -> None:
        self.app = app
        self.gateway = gateway  # a tether.gateway._proxy.Gateway (imported there: no cycle)
        self.sessions = sessions
        self.path = path
        self.max_body = max_body
        # The principal of each bearer's AccessToken, made once per AccessToken.
        self._principals: dict[str, tuple[AccessToken, AuthorizationContext]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] != self.path
            or not self.sessions.usable
        ):
            await self.app(scope, receive, send)
            return
        seen: dict[str, str] = {}
        for name, value in scope["headers"]:
            key = _WANTED.get(name)
            if key is not None:
                if key in seen:  # repeated: the SDK's reading of it rules
                    await self.app(scope, receive, send)
                    return
                seen[key] = value.decode("latin-1")
        length = _length(seen.get("length"))
        if length is None or length > self.max_body or not _ordinary(seen):
            await self.app(scope, receive, send)
            return
        body, receive = await _read(receive, length)
        if body is None or not await self._answered(scope, seen, body, send):
            await self.app(scope, receive, send)

    async def _answered(self, scope: Scope, seen: dict[str, str], body: bytes, send: Send) -> bool:
        """Whether the call was answered here (else the SDK is to answer it)."""
        message = _tool_call(body)
        if message is None:
            return False
        version = seen["version"]
        try:
            validate_client_request("tools/call", version, message["params"])
            params = types.CallToolRequestParams.model_validate(message["params"], by_name=False)
        except (ValidationError, ValueError, KeyError):
            return False
        token = seen["authorization"][len("Bearer ") :]
        upstream = self.gateway.live_upstream
        if upstream is None:
            return False
        try:
            access = await self.gateway.access_token(token)
        except DeciderUnavailable:  # the SDK's path answers it (HTTP 503)
            return False
        if access is None:
            return False
        transport = self.sessions.transport(seen["session"], self._principal(token, access))
        if transport is None:
            return False
        security = getattr(transport, "_security", None)
        if security is None or await security.validate_request(Request(scope), is_post=True):
            return False
        request_id = message["id"]
        with _in_flight(transport):
            answer = await self._call(token, str(request_id), params, upstream, version)
        answer = {"jsonrpc": "2.0", "id": request_id, **answer}
        await _respond(send, orjson.dumps(answer), seen["session"])
        return True

    def _principal(self, token: str, access: AccessToken) -> AuthorizationContext:
        """Whom ``access`` stands for, as the SDK compares it with a session's owner."""
        known = self._principals.get(token)
        if known is not None and known[0] is access:
            return known[1]
        principal = authorization_context(AuthenticatedUser(access))
        if known is None and len(self._principals) >= REMEMBERED_TOKENS:
            del self._principals[next(iter(self._principals))]  # the oldest first
        self._principals[token] = (access, principal)
        return principal

    async def _call(
        self,
        token: str,
        request_id: str,
        params: types.CallToolRequestParams,
        upstream: Any,
        version: str,
    ) -> dict[str, Any]:
        try:
            result = await self.gateway.governed_call(token, request_id, params, upstream)
            return {"result": serialize_server_result("tools/call", version, result)}
        except MCPError as exc:
            return {"error": exc.error.model_dump(by_alias=True, mode="json", exclude_none=True)}
        except Exception as exc:  # a fault of the gateway's: a JSON-RPC error, as the SDK's
            log.exception("tools/call `%s` failed in the gateway", params.name)
            message = f"the gateway failed on `{params.name}`: {type(exc).__name__}"
            return {"error": {"code": types.INTERNAL_ERROR, "message": message}}


def _length(value: str | None) -> int | None:
    if value is None or not value.isdigit():
        return None
    return int(value)


def _ordinary(seen: dict[str, str]) -> bool:
    """The headers of a request in an open session that the SDK would take as they are."""
    authorization = seen.get("authorization", "")
    content_type = seen.get("type", "").partition(";")[0].strip().lower()
    accept = seen.get("accept", "")
    return (
        authorization[:7].lower() == "bearer "
        and len(authorization) > 7
        and "session" in seen
        and seen.get("version") in HANDSHAKE_PROTOCOL_VERSIONS
        and content_type == _JSON.decode()
        and any(
            part.partition(";")[0].strip().lower() == "application/json"
            for part in accept.split(",")
        )
    )


async def _read(receive: Receive, length: int) -> tuple[bytes | None, Receive]:
    """The body when it is ``length`` bytes (else ``None``), and a ``receive`` that gives
    the SDK every message read here again."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":  # the client went away
            break
        size += len(message.get("body", b""))
        if size > length or not message.get("more_body", False):
            break
    last = messages[-1]
    whole = last["type"] == "http.request" and not last.get("more_body", False)
    body = b"".join(m.get("body", b"") for m in messages) if whole and size == length else None

    async def replay() -> Message:
        if messages:
            return messages.pop(0)
        return await receive()

    return body, replay


def _tool_call(body: bytes) -> dict[str, Any] | None:
    """The body as a single ``tools/call`` request, or ``None``."""
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if (
        not isinstance(message, dict)
        or message.keys() - _MEMBERS
        or message.get("jsonrpc") != "2.0"
        or message.get("method") != "tools/call"
        or not isinstance(message.get("params"), dict)
    ):
        return None
    request_id = message.get("id")
    if isinstance(request_id, bool) or not isinstance(request_id, int | str):
        return None
    return message


async def _respond(send: Send, body: bytes, session_id: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", _JSON),
                (b"mcp-session-id", session_id.encode("latin-1")),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
