"""The one place where errors become HTTP answers (RFC 9457 problem+json).

Every body carries tether's stable ``error_code`` so a client can tell, say, a
hostile-token refusal from a typo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.responses import Response

from tether import errors

STATUS: dict[type[errors.TetherError], int] = {
    errors.InvalidRequest: 400,
    errors.Unauthenticated: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.PayloadTooLarge: 413,
    errors.RateLimited: 429,
    errors.StoreUnavailable: 503,
}

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    431: "Request Header Fields Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def status_of(error: errors.TetherError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def problem(status: int, detail: str, code: str, **extra: Any) -> bytes:
    body: dict[str, Any] = {
        "type": f"https://tether.dev/errors/{code}",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "error_code": code,
    }
    body.update(extra)
    return orjson.dumps(body)


def problem_for(error: errors.TetherError) -> tuple[int, bytes]:
    status = status_of(error)
    extra: dict[str, Any] = {}
    if isinstance(error, errors.EstateInvalid):
        extra["problems"] = [
            {"file": p.file, "line": p.line, "message": p.message} for p in error.problems
        ]
    limit = getattr(error, "limit", None)
    if isinstance(limit, errors.Limit):  # which bound, so a client can tell what to change
        extra["limit"] = {"setting": limit.setting, "env": limit.env, "value": limit.value}
    field_errors = getattr(error, "field_errors", None)
    if field_errors:
        extra["errors"] = [{"path": f.path, "message": f.message} for f in field_errors]
    return status, problem(status, error.message, error.code, **extra)


# --- refusals at the edge: the same error, in the form each protocol expects ----------------

OAUTH_PREFIX = "/oauth2/"
# RFC 6749 §5.2 codes for a refused caller of an OAuth endpoint.
_OAUTH_ERROR = {401: "invalid_client", 403: "unauthorized_client", 429: "slow_down"}


@dataclass(frozen=True)
class Refusal:
    """An answer refusing a request: status, body, media type and extra headers."""

    status: int
    body: bytes
    content_type: bytes
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


def refusal_for(path: str, error: errors.TetherError) -> Refusal:
    """How the edge refuses a call to ``path``: 401 with ``WWW-Authenticate: Bearer``,
    403, or 429 with ``Retry-After``; RFC 6749 JSON on OAuth endpoints, problem+json
    elsewhere (AuthZEN and ``/v1``). ``error_code`` is in every form."""
    status = status_of(error)
    headers: list[tuple[bytes, bytes]] = []
    if status == 401:
        # RFC 6750 §3: no error attribute when the request carried no credentials.
        challenge = 'Bearer realm="tether"'
        if error.code != "credentials_missing":
            challenge += ', error="invalid_token"'
        headers.append((b"www-authenticate", challenge.encode()))
    if isinstance(error, errors.RateLimited):
        headers.append((b"retry-after", str(error.retry_after_s).encode()))
    if path.startswith(OAUTH_PREFIX):
        body = orjson.dumps(
            {
                "error": _OAUTH_ERROR.get(status, "invalid_request"),
                "error_description": error.message,
                "error_code": error.code,
            }
        )
        return Refusal(status, body, b"application/json", headers)
    _, body = problem_for(error)
    return Refusal(status, body, b"application/problem+json", headers)


def error_response(path: str, error: errors.TetherError) -> Response:
    """The answer to a route that raised ``error``: :func:`refusal_for`'s form (problem+json
    on ``/v1``, RFC 6749 JSON on ``/oauth2/``, with ``WWW-Authenticate`` or ``Retry-After``
    where they belong). The app's one handler of :class:`~tether.errors.TetherError`."""
    refusal = refusal_for(path, error)
    return Response(
        refusal.body,
        status_code=refusal.status,
        media_type=refusal.content_type.decode(),
        headers={k.decode(): v.decode() for k, v in refusal.headers},
    )
