"""``GET /v1/paths``: an identity's observed access path (auditors and admins).

Query parameters: ``identity`` (required), ``task``, ``since`` and ``until`` (ISO 8601,
UTC without an offset), ``limit`` (events and decisions read, 1 to 100000) and
``format``: ``json`` (default), ``mermaid`` (``text/vnd.mermaid``) or ``dot``
(``text/vnd.graphviz``). Errors are RFC 9457 problems: 400 ``invalid_query`` for a bad
or unknown parameter, 404 ``identity_not_found`` / ``task_not_found``.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tether.api.contract import DATE_TIME, STRING, Doc
from tether.api.routing import secured
from tether.callers import Role
from tether.errors import InvalidRequest
from tether.paths import MAX_LIMIT, AccessPath, PathQuery, to_dot, to_mermaid
from tether.services import Tether

READERS = (Role.AUDITOR, Role.ADMIN)
PARAMETERS = frozenset({"identity", "task", "since", "until", "limit", "format"})
_PICTURES = {
    "mermaid": (to_mermaid, "text/vnd.mermaid; charset=utf-8"),
    "dot": (to_dot, "text/vnd.graphviz; charset=utf-8"),
}


def _read(request: Request) -> tuple[PathQuery, str]:
    params = request.query_params
    unknown = sorted(set(params) - PARAMETERS)
    if unknown:
        names = ", ".join(f"`{name}`" for name in unknown)
        raise InvalidRequest(f"unknown query parameter(s) {names}", code="invalid_query")
    repeated = sorted(name for name in PARAMETERS if len(params.getlist(name)) > 1)
    if repeated:
        names = ", ".join(f"`{name}`" for name in repeated)
        raise InvalidRequest(f"give {names} once", code="invalid_query")
    output = params.get("format", "json")
    if output != "json" and output not in _PICTURES:
        raise InvalidRequest(
            f"`format` must be `json`, `mermaid` or `dot`, got `{output}`", code="invalid_query"
        )
    query = PathQuery.parse(
        params.get("identity"),
        task=params.get("task"),
        since=params.get("since"),
        until=params.get("until"),
        limit=params.get("limit"),
    )
    return query, output


def read_path(tether: Tether, query: PathQuery) -> AccessPath:
    """The path ``query`` asks for, as the API, the CLI and the dashboard show it."""
    return tether.records.access_path(
        query.identity,
        task=query.task,
        since=query.since,
        until=query.until,
        limit=query.limit,
    )


def path_routes(tether: Tether) -> list[Route]:
    def build(query: PathQuery) -> AccessPath:
        return read_path(tether, query)

    async def get_path(request: Request) -> Response:
        query, output = _read(request)
        path = await run_in_threadpool(build, query)
        if output == "json":
            return JSONResponse(path.to_json())
        render, media_type = _PICTURES[output]
        return Response(render(path), media_type=media_type)

    doc = Doc(
        "The access path of an identity or task: proof -> task -> tokens -> calls -> "
        "resources, outside steps marked (JSON, Mermaid or DOT)",
        query={
            "identity": STRING,
            "task": STRING,
            "since": DATE_TIME,
            "until": DATE_TIME,
            "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
            "format": {"enum": ["json", *_PICTURES]},
        },
        answer_type=("application/json", *(media for _, media in _PICTURES.values())),
        refusals={
            400: "neither `identity` nor `task`, or a parameter invalid (`invalid_query`)",
            404: "no such identity or task",
        },
    )
    return [secured("/v1/paths", get_path, roles=READERS, doc=doc)]
