"""The MCP gateway: an MCP server (streamable HTTP) in front of an upstream MCP server.

Built on the official ``mcp`` SDK: its low-level :class:`~mcp.server.lowlevel.Server`
serves the agents, a :class:`~mcp.client.session.ClientSession` talks to the upstream.
The SDK's resource-server support does the MCP authorization spec's part: a request
without a valid task token gets ``401`` with ``WWW-Authenticate: Bearer
resource_metadata=...``, and the RFC 9728 protected-resource metadata is served (at
``/.well-known/oauth-protected-resource`` and its ``/mcp``-suffixed form).

Per method:

* ``tools/call``, ``resources/read``, ``prompts/get``: one tether decision each; a
  refusal is a JSON-RPC error (:data:`REFUSED`, :data:`APPROVAL_REQUIRED`) whose
  ``data`` carries ``error_code``, ``outcome``, ``reasons`` and ``decision_id``, and the
  upstream is never called; ``constrain`` obligations are applied to the result, whose
  ``_meta`` names the decision (:data:`DECISION_META`, :data:`OUTCOME_META`);
* ``tools/list``: only the tools the identity may call in its task;
* tether unreachable (a remote decider): a call is refused, a listing is the JSON-RPC
  error :data:`TETHER_UNAVAILABLE`, a bearer check is HTTP 503: never a pass;
* ``resources/list``, ``resources/templates/list``, ``prompts/list``: passed through.

Malformed JSON-RPC, unknown methods and oversized bodies are answered by the SDK's
transport with JSON-RPC errors; each session is independent of the others.
"""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar

import mcp_types as types
from mcp.client.session import ClientSession
from mcp.server.auth.handlers.metadata import ProtectedResourceMetadataHandler
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.shared.auth import ProtectedResourceMetadata
from mcp.shared.exceptions import MCPError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from tether.gateway._calls import PROMPT_GET, RESOURCE_READ, TOOL_CALL, GatewayDecision, ToolCall
from tether.gateway._decider import (
    REMEMBERED_TOKENS,
    Bearer,
    DeciderUnavailable,
    GatewayDecider,
)
from tether.gateway._obligations import UNFULFILLABLE, constrain, unfulfillable
from tether.gateway._shortcut import SdkSessions, ToolCallShortcut
from tether.gateway._upstream import Upstream, UpstreamSpec, open_upstream

#: JSON-RPC error codes of the gateway (implementation-defined server errors).
REFUSED = -32010
APPROVAL_REQUIRED = -32011
UPSTREAM_FAILED = -32012
TETHER_UNAVAILABLE = -32013
#: Where an agent puts the id of an approved ticket when it retries (`params._meta`).
APPROVAL_META = "tether/approval_id"
#: Where a passed call's result names its decision (`_meta`), as a refusal's `data` does.
DECISION_META, OUTCOME_META = "tether/decision_id", "tether/outcome"
DEFAULT_MAX_BODY = 1_000_000
# Errors the SDK's client raises for the connection itself, not answers of the upstream.
_TRANSPORT_ERRORS = frozenset({types.CONNECTION_CLOSED, types.REQUEST_TIMEOUT})
WELL_KNOWN = "/.well-known/oauth-protected-resource"

_T = TypeVar("_T")
Context = ServerRequestContext[Upstream, Request]


class TaskTokenVerifier:
    """The SDK's ``TokenVerifier`` over a :class:`GatewayDecider`. The ``AccessToken`` of
    a bearer is made once per check the decider made (while it hands back the same
    :class:`Bearer`, the same ``AccessToken``), for at most ``most`` bearers."""

    def __init__(self, decider: GatewayDecider, *, most: int = REMEMBERED_TOKENS) -> None:
        self.decider = decider
        self.most = most
        self._made: dict[str, tuple[Bearer, AccessToken]] = {}

    async def verify_token(self, token: str) -> AccessToken | None:
        bearer = await self.decider.authenticate(token)
        made = self._made.get(token)
        if bearer is None:
            if made is not None:
                del self._made[token]
            return None
        if made is not None and made[0] is bearer:
            return made[1]
        access = AccessToken(
            token=token,
            client_id=bearer.identity,
            subject=bearer.identity,
            scopes=list(bearer.scopes),
            expires_at=bearer.expires_at,
            claims={"iss": bearer.issuer, "txn": bearer.task_id},
        )
        if made is None and len(self._made) >= self.most:
            del self._made[next(iter(self._made))]  # the oldest first
        self._made[token] = (bearer, access)
        return access


class Gateway:
    """The gateway's MCP handlers, bound to a decider and an upstream."""

    def __init__(self, decider: GatewayDecider, upstream: UpstreamSpec) -> None:
        self.decider = decider
        self.upstream = upstream
        self.verifier = TaskTokenVerifier(decider)
        #: The upstream while the server runs (for the ``tools/call`` shortcut).
        self.live_upstream: Upstream | None = None

    @asynccontextmanager
    async def lifespan(self, _: Server[Upstream]) -> AsyncIterator[Upstream]:
        async with self.decider.serving(), open_upstream(self.upstream) as upstream:
            self.live_upstream = upstream
            # As `tether serve`: what is loaded now lives as long as the gateway; kept out
            # of the collector's full passes, which otherwise stall every call in flight
            # (the MCP SDK's objects, Cedar, the store: a full pass took ~100 ms, measured).
            gc.collect()
            gc.freeze()
            try:
                yield upstream
            finally:
                self.live_upstream = None

    async def access_token(self, token: str) -> AccessToken | None:
        """The bearer as the SDK's auth backend would accept it, or ``None``."""
        access = await self.verifier.verify_token(token)
        if access is None or (access.expires_at and access.expires_at < int(time.time())):
            return None
        return access

    def server(self) -> Server[Upstream]:
        return Server(
            "tether-gateway",
            version="1",
            instructions="every call is authorized by tether for the task of your bearer token",
            lifespan=self.lifespan,
            on_list_tools=self.list_tools,
            on_call_tool=self.call_tool,
            on_list_resources=self.list_resources,
            on_list_resource_templates=self.list_resource_templates,
            on_read_resource=self.read_resource,
            on_list_prompts=self.list_prompts,
            on_get_prompt=self.get_prompt,
        )

    # --- governed ------------------------------------------------------------------------

    async def list_tools(
        self, ctx: Context, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        listed = await self._upstream(ctx, lambda s: s.list_tools(params=params))
        try:
            allowed = await self.decider.callable_tools(
                _token(ctx), [tool.name for tool in listed.tools]
            )
        except DeciderUnavailable as exc:
            raise MCPError(TETHER_UNAVAILABLE, str(exc)) from exc
        return listed.model_copy(update={"tools": [t for t in listed.tools if t.name in allowed]})

    async def call_tool(
        self, ctx: Context, params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        result = await self.governed_call(
            _token(ctx), _request_id(ctx), params, ctx.lifespan_context
        )
        return types.CallToolResult.model_validate(result)

    async def governed_call(
        self,
        token: str,
        request_id: str | None,
        params: types.CallToolRequestParams,
        upstream: Upstream,
    ) -> dict[str, Any]:
        """``tools/call`` decided for ``token``, forwarded, constrained and reported
        (the SDK's handler and the shortcut's, see :mod:`tether.gateway._shortcut`): the
        ``CallToolResult`` the agent gets, as JSON (validated once, when it came)."""
        call = ToolCall(TOOL_CALL, params.name, params.arguments or {}, _approval_id(params))
        decision = await self._decide(token, request_id, call)
        with self._upstream_failures():
            result = await upstream.call_tool(params)
        shown = constrain(result, decision.obligations)
        if decision.decision_id is not None:  # what the agent saw: where later values came from
            self.decider.report_result(token, decision.decision_id, shown)
            meta = {**(shown.get("_meta") or {}), DECISION_META: decision.decision_id}
            shown = {**shown, "_meta": {**meta, OUTCOME_META: decision.outcome}}
        return shown

    async def read_resource(
        self, ctx: Context, params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        call = ToolCall(RESOURCE_READ, str(params.uri), {}, _approval_id(params))
        await self._decide(_token(ctx), _request_id(ctx), call)
        result = await self._upstream(ctx, lambda s: s.read_resource(params.uri))
        if not isinstance(result, types.ReadResourceResult):
            raise MCPError(UPSTREAM_FAILED, f"the upstream answered `{params.uri}` unexpectedly")
        return result

    async def get_prompt(
        self, ctx: Context, params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        arguments = dict(params.arguments or {})
        call = ToolCall(PROMPT_GET, params.name, arguments, _approval_id(params))
        await self._decide(_token(ctx), _request_id(ctx), call)
        result = await self._upstream(ctx, lambda s: s.get_prompt(params.name, params.arguments))
        if not isinstance(result, types.GetPromptResult):
            raise MCPError(UPSTREAM_FAILED, f"the upstream answered `{params.name}` unexpectedly")
        return result

    # --- passed through ------------------------------------------------------------------

    async def list_resources(
        self, ctx: Context, params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        return await self._upstream(ctx, lambda s: s.list_resources(params=params))

    async def list_resource_templates(
        self, ctx: Context, params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        return await self._upstream(ctx, lambda s: s.list_resource_templates(params=params))

    async def list_prompts(
        self, ctx: Context, params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        return await self._upstream(ctx, lambda s: s.list_prompts(params=params))

    # --- helpers -------------------------------------------------------------------------

    async def _decide(self, token: str, request_id: str | None, call: ToolCall) -> GatewayDecision:
        """The decision on ``call``; raises the JSON-RPC error of a refusal."""
        decision = await self.decider.decide(token, call, request_id)
        if decision.permits:
            missing = unfulfillable(decision.obligations)
            if not missing:
                return decision
            decision = GatewayDecision(
                False,
                "deny",
                (UNFULFILLABLE,),
                error_code=UNFULFILLABLE,
                errors=(f"the gateway cannot fulfil obligation(s) {', '.join(missing)}",),
                decision_id=decision.decision_id,
            )
        raise refusal(call, decision)

    async def _upstream(self, ctx: Context, ask: Callable[[ClientSession], Awaitable[_T]]) -> _T:
        """``ask`` of the upstream session, failures as in :meth:`_upstream_failures`."""
        with self._upstream_failures():
            return await ask(await ctx.lifespan_context.session())

    @contextmanager
    def _upstream_failures(self) -> Iterator[None]:
        """A failure other than the upstream's own JSON-RPC error becomes
        :data:`UPSTREAM_FAILED`, naming the upstream."""
        try:
            yield
        except MCPError as exc:
            if exc.code not in _TRANSPORT_ERRORS:  # the upstream's own answer, as it is
                raise
            raise self._failed(exc) from exc
        except Exception as exc:
            raise self._failed(exc) from exc

    def _failed(self, cause: Exception) -> MCPError:
        return MCPError(
            UPSTREAM_FAILED,
            f"the upstream MCP server `{self.upstream}` did not answer: "
            f"{type(cause).__name__}: {cause}",
        )


def refusal(call: ToolCall, decision: GatewayDecision) -> MCPError:
    """The JSON-RPC error of a refused call, naming why."""
    why = "; ".join(decision.errors) or ", ".join(decision.reasons) or decision.outcome
    data: dict[str, Any] = {
        "error_code": decision.error_code or decision.outcome,
        "outcome": decision.outcome,
        "reasons": list(decision.reasons),
        "decision_id": decision.decision_id,
    }
    if decision.approval is not None:
        data["approval"] = dict(decision.approval)
        approval_id = decision.approval.get("id")
        message = (
            f"`{call.action}` needs a person's approval (ticket `{approval_id}`); retry with "
            f"`_meta.{APPROVAL_META}` once it is approved"
        )
        return MCPError(APPROVAL_REQUIRED, message, data)
    return MCPError(REFUSED, f"tether refused `{call.action}`: {why}", data)


def _token(ctx: Context) -> str:
    # The SDK's bearer middleware let the request in only with a verified token.
    assert ctx.request is not None
    return ctx.request.headers["authorization"][len("Bearer ") :]


def _request_id(ctx: Context) -> str | None:
    return str(ctx.request_id) if ctx.request_id is not None else None


def _approval_id(params: types.RequestParams) -> str | None:
    meta = params.meta
    value = meta.get(APPROVAL_META) if isinstance(meta, dict) else None
    return value if isinstance(value, str) else None


class _UnavailableAs503:
    """HTTP 503 when tether cannot check a bearer (placed around the SDK's auth)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def sending(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except DeciderUnavailable as exc:
            if started or scope["type"] != "http":
                raise
            answer = JSONResponse(
                {"error": "temporarily_unavailable", "error_description": str(exc)},
                status_code=503,
                headers={"retry-after": "1"},
            )
            await answer(scope, receive, send)


def create_gateway_app(
    decider: GatewayDecider,
    upstream: UpstreamSpec,
    *,
    public_url: str,
    issuer: str,
    max_body: int = DEFAULT_MAX_BODY,
    host: str = "127.0.0.1",
) -> Starlette:
    """The gateway's ASGI app: MCP at ``/mcp``, protected-resource metadata beside it.

    Args:
        public_url: how agents reach the gateway (``http://HOST:PORT``): the resource.
        issuer: the authorization server that issues task tokens (tether's issuer).
    """
    resource = public_url.rstrip("/") + "/mcp"
    # Validated from strings: AuthSettings keeps a path-less issuer as written (RFC 8414
    # compares issuers as exact strings), where AnyHttpUrl would add a trailing slash.
    auth = AuthSettings.model_validate(
        {
            "issuer_url": issuer,
            "resource_server_url": resource,
            "validate_token_resource": False,  # task tokens name tether's audience
        }
    )
    gateway = Gateway(decider, upstream)
    server = gateway.server()
    # RFC 9728 §3.1 puts the document under the resource's path; clients also probe the root.
    metadata = ProtectedResourceMetadata.model_validate(
        {"resource": resource, "authorization_servers": [issuer]}
    )
    handler = ProtectedResourceMetadataHandler(metadata)
    root = [Route(WELL_KNOWN, endpoint=handler.handle, methods=["GET"])]
    app = server.streamable_http_app(
        auth=auth,
        token_verifier=TaskTokenVerifier(decider),
        max_request_body_size=max_body,
        # One JSON answer per POST, no SSE framing: the gateway streams nothing mid-call.
        json_response=True,
        host=host,
        custom_starlette_routes=root,
    )
    app.add_middleware(_UnavailableAs503)  # outermost of the app's own: around the auth
    # In front of everything: tools/call in an open session, without the SDK's server.
    app.add_middleware(
        ToolCallShortcut,
        gateway=gateway,
        sessions=SdkSessions(server.session_manager),
        path="/mcp",
        max_body=max_body,
    )
    return app


__all__ = ["Gateway", "create_gateway_app"]
