"""tether's own read API under ``/v1`` (RFC 9457 problem+json errors)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tether.api.contract import DATE_TIME, STRING, Doc, listing
from tether.api.routing import caller_of, secured
from tether.callers import Role
from tether.errors import InvalidRequest
from tether.numerals import decimal
from tether.services import Tether

READERS = (Role.AUDITOR, Role.ADMIN)
# A PEP reads the decisions it asked for, and only those.
DECISION_READERS = (*READERS, Role.PEP)


def _int_param(request: Request, name: str, default: int, maximum: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    value = decimal(raw, low=1, high=maximum)
    if value is None:
        raise InvalidRequest(f"query parameter `{name}` must be an integer from 1 to {maximum}")
    return value


def resource_routes(tether: Tether) -> list[Route]:
    async def identities(request: Request) -> Response:
        return JSONResponse({"identities": tether.records.identities()})

    async def identity(request: Request) -> Response:
        return JSONResponse(tether.records.identity(request.path_params["identity_id"]))

    async def decisions(request: Request) -> Response:
        limit = _int_param(request, "limit", 100, 10_000)
        filters: dict[str, Any] = {
            key: request.query_params.get(key)
            for key in ("subject", "action", "outcome", "since", "caller")
        }
        caller = caller_of(request)
        if not caller.roles & frozenset(READERS):
            filters["caller"] = caller.identity_id
        rows = tether.records.decisions(limit=limit, **filters)
        return JSONResponse({"decisions": rows})

    return [
        secured(
            "/v1/identities",
            identities,
            roles=READERS,
            doc=Doc("Identity inventory", answer=listing("identities")),
        ),
        secured(
            "/v1/identities/{identity_id:path}",
            identity,
            roles=READERS,
            doc=Doc(
                "One identity with its entitlements (the id may contain `/`)",
                refusals={404: "no such identity"},
            ),
        ),
        secured(
            "/v1/decisions",
            decisions,
            roles=DECISION_READERS,
            doc=Doc(
                "Recent decisions, newest first; a PEP reads only the decisions it asked for",
                query={
                    "subject": STRING,
                    "action": STRING,
                    "outcome": STRING,
                    "since": DATE_TIME,
                    "caller": STRING,
                    "limit": {"type": "integer", "minimum": 1, "maximum": 10_000},
                },
                answer=listing("decisions"),
                refusals={400: "a query parameter out of range"},
            ),
        ),
    ]
