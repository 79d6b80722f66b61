"""Drift findings and exceptions under ``/v1`` (RFC 9457 problem+json errors).

* ``GET /v1/findings`` (auditor, admin): ``identity``, ``severity`` (a minimum),
  ``since`` (ISO 8601), ``detector``, ``limit`` (1..1000, default 100) and ``cursor``
  (the ``next_cursor`` of the previous page); newest first.
* ``GET /v1/exceptions`` (auditor, admin): ``expiring_within`` (seconds, default 14
  days) lists those expiring soonest first.
* ``POST /v1/exceptions`` (admin): ``{identity, detector, owner, justification,
  expires (ISO 8601), resource?, downgrade_to?}``; 201 with the exception.
* ``POST /v1/exceptions/{id}/expire`` (admin): ends it now.

Every change is in the audit log, with the admin who made it.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tether.api.contract import DATE_TIME, STRING, Doc, listing, obj
from tether.api.routing import caller_of, secured
from tether.api.tasks import read_json
from tether.callers import Role
from tether.drift.findings import FindingQuery, finding_json
from tether.drift.model import Severity
from tether.errors import InvalidRequest
from tether.numerals import decimal
from tether.services import Tether

READERS = (Role.AUDITOR, Role.ADMIN)
# Beyond this a window is meaningless (and overflows a date).
MAX_EXPIRING_WITHIN_S = 10 * 365 * 24 * 3600
MAX_BODY = 16 * 1024
DEFAULT_EXPIRING_WITHIN_S = 14 * 86400


def _query_error(message: str) -> InvalidRequest:
    return InvalidRequest(message, code="invalid_query")


def _moment(text: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _query_error(f"`{name}` must be an ISO 8601 time, got `{text}`") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _cursor(text: str) -> tuple[datetime, str]:
    try:
        at, _, finding_id = base64.urlsafe_b64decode(text.encode()).decode().partition("|")
        return _moment(at, "cursor"), finding_id
    except (ValueError, UnicodeDecodeError):
        raise _query_error("`cursor` is not one this server gave") from None


def findings_query(params: Any) -> FindingQuery:
    """The :class:`FindingQuery` of ``GET /v1/findings`` query parameters."""
    severity = params.get("severity")
    if severity is not None and severity not in {s.value for s in Severity}:
        raise _query_error(f"`severity` must be one of {', '.join(s.value for s in Severity)}")
    limit = decimal(params.get("limit", "100"), low=1, high=1000)
    if limit is None:
        raise _query_error("`limit` must be from 1 to 1000")
    since = params.get("since")
    cursor = params.get("cursor")
    return FindingQuery(
        identity_id=params.get("identity"),
        severity=Severity(severity) if severity else None,
        since=_moment(since, "since") if since else None,
        detector=params.get("detector"),
        limit=limit,
        before=_cursor(cursor) if cursor else None,
    )


def finding_routes(tether: Tether) -> list[Route]:
    async def list_findings(request: Request) -> Response:
        query = findings_query(request.query_params)
        items = await run_in_threadpool(tether.records.findings, query)
        answer: dict[str, Any] = {"findings": [finding_json(f) for f in items]}
        if len(items) == query.limit:
            last = items[-1]
            token = f"{last.at.isoformat()}|{last.finding_id}".encode()
            answer["next_cursor"] = base64.urlsafe_b64encode(token).decode()
        return JSONResponse(answer)

    async def get_exceptions(request: Request) -> Response:
        raw = request.query_params.get("expiring_within", str(DEFAULT_EXPIRING_WITHIN_S))
        within = decimal(raw, high=MAX_EXPIRING_WITHIN_S)
        if within is None:
            raise _query_error(
                f"`expiring_within` must be seconds, at most {MAX_EXPIRING_WITHIN_S} (10 years)"
            )
        now = datetime.now(UTC)
        items = await run_in_threadpool(
            lambda: tether.records.exceptions(now=now, expiring_within=timedelta(seconds=within))
        )
        return JSONResponse({"exceptions": [e.to_json(now) for e in items]})

    async def post_exception(request: Request) -> Response:
        actor = caller_of(request).identity_id
        body = await read_json(request, MAX_BODY)
        if not isinstance(body, dict):
            raise InvalidRequest("the body must be a JSON object", code="invalid_request")
        fields = {}
        for name in ("identity", "detector", "owner", "justification", "expires"):
            value = body.get(name)
            if not isinstance(value, str) or not value.strip():
                raise InvalidRequest(
                    f"`{name}` is required (a string)", code="drift_exception_invalid"
                )
            fields[name] = value
        optional = {k: body.get(k) for k in ("resource", "downgrade_to")}
        for name, value in optional.items():
            if value is not None and not isinstance(value, str):
                raise InvalidRequest(f"`{name}` must be a string", code="drift_exception_invalid")
        unknown = set(body) - {*fields, *optional}
        if unknown:
            raise InvalidRequest(
                f"unknown member(s): {', '.join(sorted(unknown))}",
                code="drift_exception_invalid",
            )
        now = datetime.now(UTC)
        item = await run_in_threadpool(
            lambda: tether.records.add_exception(
                identity_id=fields["identity"],
                detector=fields["detector"],
                owner=fields["owner"],
                justification=fields["justification"],
                expires_at=_moment(fields["expires"], "expires"),
                resource_pattern=optional["resource"],
                downgrade_to=optional["downgrade_to"],
                actor=actor,
                now=now,
            )
        )
        return JSONResponse(
            item.to_json(now), status_code=201, headers={"location": "/v1/exceptions"}
        )

    async def expire(request: Request) -> Response:
        exception_id = request.path_params["exception_id"]
        actor = caller_of(request).identity_id
        now = datetime.now(UTC)
        item = await run_in_threadpool(
            lambda: tether.records.expire_exception(exception_id, actor=actor, now=now)
        )
        return JSONResponse(item.to_json(now))

    return [
        secured(
            "/v1/findings",
            list_findings,
            roles=READERS,
            doc=Doc(
                "Drift findings, newest first (`next_cursor` pages on)",
                query={
                    "identity": STRING,
                    "severity": {"enum": [s.value for s in Severity]},
                    "since": DATE_TIME,
                    "detector": STRING,
                    "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
                    "cursor": STRING,
                },
                answer=listing("findings", next_cursor=STRING),
                refusals={400: "a query parameter out of range (`invalid_query`)"},
            ),
        ),
        secured(
            "/v1/exceptions",
            get_exceptions,
            roles=READERS,
            doc=Doc(
                "Drift exceptions, with those expiring within `expiring_within` seconds marked",
                query={
                    "expiring_within": {
                        "type": "integer",
                        "minimum": 0,
                        "maximum": MAX_EXPIRING_WITHIN_S,
                    }
                },
                answer=listing("exceptions"),
                refusals={400: "`expiring_within` is not a number of seconds"},
            ),
        ),
        secured(
            "/v1/exceptions",
            post_exception,
            roles=(Role.ADMIN,),
            methods=("POST",),
            doc=Doc(
                "Add a drift exception: owned, justified, expiring",
                body=obj(
                    ("identity", "detector", "owner", "justification", "expires"),
                    identity=STRING,
                    detector=STRING,
                    owner=STRING,
                    justification=STRING,
                    expires=DATE_TIME,
                    resource=STRING,
                    downgrade_to=STRING,
                ),
                status=201,
                refusals={400: "a member missing or invalid (`drift_exception_invalid`)"},
            ),
        ),
        secured(
            "/v1/exceptions/{exception_id}/expire",
            expire,
            roles=(Role.ADMIN,),
            methods=("POST",),
            doc=Doc("Expire a drift exception now", refusals={404: "no such exception"}),
        ),
    ]
