"""The tether error tree: one root, a stable ``code`` per error.

Every error a caller can cause or meet derives from :class:`TetherError`. The
``code`` is stable (clients match on it); the message is for people: lowercase,
no trailing period, user values in backticks. HTTP statuses are assigned in
exactly one place (``tether.api.errors``) and CLI exit codes in one place
(``tether.cli.output``)::

    TetherError
    ├── InvalidRequest        bad input from a caller (malformed, missing, wrong type)
    │   ├── EstateInvalid     estate files that do not validate (carries file and line)
    │   └── LimitExceeded     over a configured bound of shape (nesting depth); names it
    ├── NotFound              a named object does not exist
    ├── Conflict              the request contradicts stored state
    ├── Unauthenticated       no or unverifiable credentials
    ├── Forbidden             authenticated but not allowed
    ├── PayloadTooLarge       body, item count or value count over a configured limit
    ├── RateLimited           caller over its rate limit
    └── StoreUnavailable      the database cannot be reached or migrated
"""

from __future__ import annotations

from dataclasses import dataclass, field


class TetherError(Exception):
    """Root of every error tether raises on purpose."""

    code: str = "tether_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class InvalidRequest(TetherError):
    code = "invalid_request"


@dataclass(frozen=True)
class EstateProblem:
    """One thing wrong in the estate files, located as precisely as we can."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


class EstateInvalid(InvalidRequest):
    code = "estate_invalid"

    def __init__(self, problems: list[EstateProblem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"estate is invalid ({len(problems)} problem(s)):\n{lines}")


@dataclass(frozen=True)
class Limit:
    """A configured bound a request went over: the setting that holds it and its value."""

    setting: str
    value: int

    @property
    def env(self) -> str:
        """The environment variable that sets it."""
        return f"TETHER_{self.setting.upper()}"

    def __str__(self) -> str:
        return f"{self.value} (`{self.env}`)"


class LimitExceeded(InvalidRequest):
    """A request shaped beyond a configured bound (e.g. nested too deep)."""

    code = "limit_exceeded"

    def __init__(self, message: str, *, limit: Limit, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.limit = limit


class NotFound(TetherError):
    code = "not_found"


class Conflict(TetherError):
    code = "conflict"


class Unauthenticated(TetherError):
    code = "unauthenticated"


class Forbidden(TetherError):
    code = "forbidden"


class PayloadTooLarge(TetherError):
    code = "payload_too_large"

    def __init__(
        self, message: str, *, limit: Limit | None = None, code: str | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.limit = limit


class RateLimited(TetherError):
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class StoreUnavailable(TetherError):
    code = "store_unavailable"


@dataclass(frozen=True)
class FieldError:
    """A single problem in a request body, addressed by a JSON-pointer-like path."""

    path: str
    message: str
    extra: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"`{self.path}`: {self.message}" if self.path else self.message
