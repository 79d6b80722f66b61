"""What a gateway in front of MCP servers asks tether besides decisions (``/v1/tools``).

* ``GET /v1/tools``: ``{"estate_revision", "tools": {name: mapping}}``, the estate's
  ``tools:`` section (which argument of a tool is the resource, which are destinations,
  the data class of its result). A remote ``tether gateway mcp --tether URL`` builds its
  AuthZEN requests with it, so it asks exactly what an in-process gateway asks.
* ``POST /v1/tools/callable`` with ``{"token": <task token>, "tools": [names]}``: the
  names the token's identity may call in its task (``tools/list`` shows only those);
  ``{"tools": []}`` for a token that is not (or no longer) valid. Nothing is recorded:
  listing is not a decision, each call still is one.

Both are for PEPs (and admins). :func:`callable_tools` is also the in-process gateway's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tether.api.contract import STRING, Doc, array, obj
from tether.api.routing import secured
from tether.api.tasks import read_json
from tether.callers import Role
from tether.errors import InvalidRequest
from tether.policy import PolicySpec, scope_action_names
from tether.services import Tether

CALLERS = (Role.PEP, Role.ADMIN)
_TOOL_MAPPING = obj(
    resource_argument={"type": ["string", "null"]},
    resource_type={"type": ["string", "null"]},
    destinations={"type": "object", "additionalProperties": STRING},
    data_class={"type": ["string", "null"]},
)
MAX_TOOLS_BODY = 256 * 1024
MAX_TOOL_NAMES = 1000
_TOOL_NAMES = array({"type": "string", "minLength": 1}, maxItems=MAX_TOOL_NAMES)


def tool_mappings(tether: Tether) -> dict[str, Any]:
    snapshot = tether.snapshot
    return {
        "estate_revision": snapshot.revision,
        "tools": {name: mapping.to_json() for name, mapping in snapshot.estate.tools.items()},
    }


def callable_tools(tether: Tether, token: str, names: Sequence[str]) -> frozenset[str]:
    """The tools among ``names`` the holder of task ``token`` may call: in the token's
    scope, and granted to its identity by some ``permit`` (see :func:`permitted_actions`)."""
    inspection = tether.tasks.inspect(token)
    if inspection.verified is None:
        return frozenset()
    claims = inspection.verified.claims
    entitled = permitted_actions(tether.snapshot.estate.policies, claims.subject)
    return frozenset(n for n in names if n in claims.scope and (entitled is None or n in entitled))


def permitted_actions(policies: Sequence[PolicySpec], identity: str) -> frozenset[str] | None:
    """The actions some ``permit`` could grant ``identity`` (``None``: any action).

    A policy counts when its principal scope is unconstrained or names the identity by id;
    a permit scoped to a group (``principal in``) counts too, since membership is the
    entity store's. What the forbids and conditions leave is for each call's decision.
    """
    candidates = [p for p in policies if p.effect == "permit" and _may_apply(p.est, identity)]
    if any(p.est.get("action", {}).get("op") == "All" for p in candidates):
        return None
    return frozenset(scope_action_names(candidates))


def _may_apply(est: Mapping[str, Any], identity: str) -> bool:
    scope = est.get("principal", {})
    if scope.get("op") == "==":
        entity = scope.get("entity", {})
        return isinstance(entity, Mapping) and entity.get("id") == identity
    return True


def _callable_request(body: Any) -> tuple[str, list[str]]:
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object", code="tools_request_invalid")
    token, names = body.get("token"), body.get("tools")
    if not isinstance(token, str) or not token:
        raise InvalidRequest("`token` must be the task token", code="tools_request_invalid")
    if (
        not isinstance(names, list)
        or len(names) > MAX_TOOL_NAMES
        or not all(isinstance(n, str) and 0 < len(n) <= 256 for n in names)
    ):
        raise InvalidRequest(
            f"`tools` must be a list of at most {MAX_TOOL_NAMES} tool names",
            code="tools_request_invalid",
        )
    return token, names


def tool_routes(tether: Tether) -> list[Route]:
    async def mappings(_request: Request) -> Response:
        return JSONResponse(tool_mappings(tether))

    async def callable_(request: Request) -> Response:
        token, names = _callable_request(await read_json(request, MAX_TOOLS_BODY))
        found = await run_in_threadpool(callable_tools, tether, token, names)
        return JSONResponse({"tools": [n for n in names if n in found]})

    return [
        secured(
            "/v1/tools",
            mappings,
            roles=CALLERS,
            doc=Doc(
                "The estate's tool mappings (`tools:`) for MCP gateways",
                answer=obj(
                    ("tools",),
                    estate_revision={"type": ["integer", "null"]},
                    tools={"type": "object", "additionalProperties": _TOOL_MAPPING},
                ),
            ),
        ),
        secured(
            "/v1/tools/callable",
            callable_,
            roles=CALLERS,
            methods=("POST",),
            doc=Doc(
                "The tools among `tools` the task token's holder may call (`tools/list`); an "
                "invalid token may call none. Nothing is recorded",
                body=obj(
                    ("token", "tools"), token={"type": "string", "minLength": 1}, tools=_TOOL_NAMES
                ),
                answer=obj(("tools",), tools=_TOOL_NAMES),
                refusals={400: "not `{token, tools}` (`tools_request_invalid`)"},
            ),
        ),
    ]
