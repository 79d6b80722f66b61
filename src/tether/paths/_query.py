"""A request for a path, validated once: the CLI and ``GET /v1/paths`` read the same way.

Times are ISO 8601 (``2026-03-01``, ``2026-03-01T09:00:00Z``, any offset); a time
without an offset is UTC. ``since`` is inclusive, ``until`` exclusive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from tether.errors import InvalidRequest

DEFAULT_LIMIT = 10_000
MAX_LIMIT = 100_000
MAX_NAME = 400
INVALID_QUERY = "invalid_query"


def _invalid(message: str) -> InvalidRequest:
    return InvalidRequest(message, code=INVALID_QUERY)


def parse_time(value: str, name: str) -> datetime:
    """``value`` as a UTC time.

    Raises:
        InvalidRequest: ``invalid_query``, naming the parameter.
    """
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise _invalid(
            f"`{name}` must be an ISO 8601 time such as `2026-03-01T09:00:00Z`, got `{value}`"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class PathQuery:
    """Whose path, of which task, over which window, how many steps at most."""

    identity: str
    task: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = DEFAULT_LIMIT

    @classmethod
    def parse(
        cls,
        identity: str | None,
        *,
        task: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: str | int | None = None,
    ) -> PathQuery:
        """Read a path request from text (query parameters or command-line options).

        Raises:
            InvalidRequest: ``invalid_query``, saying which value is wrong and why.
        """
        if identity is None or not identity.strip():
            raise _invalid("`identity` is required: the id of the identity whose path to show")
        if len(identity) > MAX_NAME or (task is not None and len(task) > MAX_NAME):
            raise _invalid(f"`identity` and `task` must be at most {MAX_NAME} characters")
        if task is not None and not task.strip():
            raise _invalid("`task` must not be empty")
        start = parse_time(since, "since") if since is not None else None
        end = parse_time(until, "until") if until is not None else None
        if start is not None and end is not None and start >= end:
            raise _invalid(
                f"`since` ({start.isoformat()}) must be before `until` ({end.isoformat()})"
            )
        count = DEFAULT_LIMIT
        if limit is not None:
            text = str(limit).strip()
            if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_LIMIT:
                raise _invalid(f"`limit` must be a whole number from 1 to {MAX_LIMIT}")
            count = int(text)
        return cls(identity.strip(), task.strip() if task else None, start, end, count)
