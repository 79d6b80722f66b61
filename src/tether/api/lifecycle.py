"""Lifecycle, offboarding, third-party grants and estate metrics under ``/v1`` (RFC 9457 errors).

* ``POST /v1/identities/{id}/offboard`` (admin), body ``{"reason": ...}`` optional:
  revokes every token of the identity, ends its tasks, disables it and its API keys;
  the answer lists what was revoked (:mod:`tether.review.offboard`).
* ``GET /v1/lifecycle`` (``stale_days``): every identity's lifecycle and flags.
* ``GET /v1/grants`` (``window_days``, ``review_every_days``): third-party OAuth grants,
  scopes granted beside scopes used, the minimal-scope recommendation.
* ``GET /v1/metrics`` (``window_days``, ``last``): the estate figures now beside the
  industry's, and the trend of stored snapshots (``tether metrics`` stores them; a GET
  changes nothing).

The reads are for auditors and admins.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tether.api.contract import INTEGER, STRING, Doc, listing, obj
from tether.api.routing import caller_of, secured
from tether.api.tasks import read_json
from tether.callers import Role
from tether.errors import InvalidRequest
from tether.numerals import decimal
from tether.review.grants import DEFAULT_REVIEW_EVERY_DAYS
from tether.review.grants import DEFAULT_WINDOW_DAYS as GRANT_WINDOW_DAYS
from tether.review.lifecycle import DEFAULT_STALE_DAYS
from tether.review.metrics import DEFAULT_WINDOW_DAYS
from tether.review.offboard import offboard_identity
from tether.services import Tether

READERS = (Role.AUDITOR, Role.ADMIN)
MAX_BODY = 16 * 1024


_DAYS = {"type": "integer", "minimum": 1, "maximum": 3650}


def _days(request: Request, name: str, default: int, maximum: int = 3650) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    value = decimal(raw, low=1, high=maximum)
    if value is None:
        raise InvalidRequest(
            f"query parameter `{name}` must be an integer from 1 to {maximum}",
            code="invalid_query",
        )
    return value


def lifecycle_routes(tether: Tether) -> list[Route]:
    async def offboard(request: Request) -> Response:
        identity_id = request.path_params["identity_id"]
        caller = caller_of(request)
        body = await read_json(request, MAX_BODY, required=False)
        reason = body.get("reason", "offboarded") if isinstance(body, dict) else None
        if not isinstance(reason, str):
            raise InvalidRequest("`reason` must be a short string", code="offboard_request_invalid")
        done = await run_in_threadpool(
            offboard_identity,
            tether.tasks,
            identity_id,
            actor=caller.identity_id,
            reason=reason,
        )
        await run_in_threadpool(tether.refresh_offboarded)
        return JSONResponse(done.to_json())

    async def lifecycle(request: Request) -> Response:
        stale_days = _days(request, "stale_days", DEFAULT_STALE_DAYS)
        items = await run_in_threadpool(
            lambda: tether.records.lifecycles(now=tether.tasks.now(), stale_days=stale_days)
        )
        now = tether.tasks.now()
        return JSONResponse(
            {"stale_days": stale_days, "identities": [i.to_json(now) for i in items]}
        )

    async def grants(request: Request) -> Response:
        window = _days(request, "window_days", GRANT_WINDOW_DAYS)
        every = _days(request, "review_every_days", DEFAULT_REVIEW_EVERY_DAYS)
        reviews = await run_in_threadpool(
            lambda: tether.records.grants(window_days=window, review_every_days=every)
        )
        return JSONResponse({"window_days": window, "grants": [r.to_json() for r in reviews]})

    async def metrics(request: Request) -> Response:
        window = _days(request, "window_days", DEFAULT_WINDOW_DAYS)
        last = _days(request, "last", 10, 1000)
        current = await run_in_threadpool(lambda: tether.records.metrics(window_days=window))
        trend = await run_in_threadpool(lambda: tether.records.metric_trend(last=last))
        return JSONResponse({**current.to_json(), "trend": [s.to_json() for s in trend]})

    return [
        secured(
            "/v1/identities/{identity_id}/offboard",
            offboard,
            roles=(Role.ADMIN,),
            methods=("POST",),
            doc=Doc(
                "Offboard an identity: its tasks end, its tokens and keys are revoked, every "
                "later decision about it is denied",
                body=obj(reason=STRING),
                body_required=False,
                refusals={404: "no such identity"},
            ),
        ),
        secured(
            "/v1/lifecycle",
            lifecycle,
            roles=READERS,
            doc=Doc(
                "Lifecycle of every identity: owner, age, last use, rotation, staleness",
                query={"stale_days": _DAYS},
                answer=listing("identities", stale_days=INTEGER),
                refusals={400: "`stale_days` out of range"},
            ),
        ),
        secured(
            "/v1/grants",
            grants,
            roles=READERS,
            doc=Doc(
                "Third-party OAuth grants and the scopes they use",
                query={"window_days": _DAYS, "review_every_days": _DAYS},
                answer=listing("grants", window_days=INTEGER),
                refusals={400: "a query parameter out of range"},
            ),
        ),
        secured(
            "/v1/metrics",
            metrics,
            roles=READERS,
            doc=Doc(
                "Excessive privilege and rotation shares beside the industry figures, and "
                "their trend",
                query={"window_days": _DAYS, "last": {**_DAYS, "maximum": 1000}},
                refusals={400: "a query parameter out of range"},
            ),
        ),
    ]
