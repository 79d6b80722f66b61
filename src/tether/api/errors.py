"""The one place where errors become HTTP answers (RFC 9457 problem+json).

Every body carries tether's stable ``error_code`` so a client can tell, say, a
hostile-token refusal from a typo.
"""

from __future__ import annotations

from typing import Any

import orjson

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
    field_errors = getattr(error, "field_errors", None)
    if field_errors:
        extra["errors"] = [{"path": f.path, "message": f.message} for f in field_errors]
    return status, problem(status, error.message, error.code, **extra)
