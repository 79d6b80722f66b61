"""What the SDK raises, and the one place an HTTP answer becomes an SDK error.

Every SDK error is a :class:`tether.errors.TetherError`; ``code`` (also ``error_code``)
is tether's stable error code, read from the answer when tether sent one (RFC 9457
problem+json on ``/v1`` and AuthZEN, RFC 6749 §5.2 JSON on ``/oauth2``)::

    TetherError                       (tether.errors)
    └── ClientError                   anything the SDK raises
        ├── TetherUnavailable         tether could not be reached (connection, TLS, timeout)
        │   └── TetherTimeout         no answer within the time allowed
        ├── UnexpectedResponse        an answer that is not what the protocol says
        ├── TetherAPIError            tether answered with an error status
        │   ├── BadRequestError       400, 413, 415, 431
        │   ├── AuthenticationError   401 (``www_authenticate`` kept)
        │   ├── PermissionDeniedError 403
        │   ├── NotFoundError         404
        │   ├── ConflictError         409
        │   ├── RateLimitError        429 (``retry_after_s``)
        │   └── ServerError           5xx
        └── ToolRefused               a guarded tool was not run (or its result withheld)
            ├── ToolDenied            the decision was ``deny`` (reasons, decision)
            ├── ApprovalPending       a human must approve first (``ticket``)
            ├── ObligationUnsupported an obligation the guard cannot fulfil
            └── DecisionUnavailable   no decision could be had: fail closed (cause chained)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx

from tether.errors import TetherError

if TYPE_CHECKING:
    from tether.sdk.models import ApprovalTicket, Decision


class ClientError(TetherError):
    """Root of every error the SDK raises."""

    code = "client_error"

    @property
    def error_code(self) -> str:
        """tether's stable error code (the same as ``code``)."""
        return self.code


class TetherUnavailable(ClientError):
    """tether could not be reached: nothing was decided, so nothing may proceed."""

    code = "tether_unreachable"


class TetherTimeout(TetherUnavailable):
    """tether did not answer within the time allowed."""

    code = "tether_timeout"


class UnexpectedResponse(ClientError):
    """An answer the protocol does not allow (not JSON, members missing or mistyped)."""

    code = "unexpected_response"

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class TetherAPIError(ClientError):
    """tether answered with an error status.

    Attributes:
        status: the HTTP status.
        detail: the human-readable message (``detail`` or ``error_description``).
        oauth_error: the RFC 6749 ``error`` on OAuth endpoints, else ``None``.
        body: the decoded error body (empty when it was not a JSON object).
    """

    code = "http_error"

    def __init__(
        self,
        detail: str,
        *,
        status: int,
        code: str | None = None,
        oauth_error: str | None = None,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail, code=code)
        self.status = status
        self.detail = detail
        self.oauth_error = oauth_error
        self.body: Mapping[str, Any] = dict(body or {})
        self.headers: Mapping[str, str] = dict(headers or {})


class BadRequestError(TetherAPIError):
    code = "bad_request"


class AuthenticationError(TetherAPIError):
    code = "unauthenticated"

    @property
    def www_authenticate(self) -> str | None:
        """The challenge tether sent (RFC 6750 §3)."""
        return self.headers.get("www-authenticate")


class PermissionDeniedError(TetherAPIError):
    code = "forbidden"


class NotFoundError(TetherAPIError):
    code = "not_found"


class ConflictError(TetherAPIError):
    code = "conflict"


class RateLimitError(TetherAPIError):
    code = "rate_limited"

    @property
    def retry_after_s(self) -> float | None:
        """Seconds tether asked the caller to wait (``Retry-After``), if it said."""
        value = self.headers.get("retry-after", "")
        try:
            return float(value)
        except ValueError:
            return None


class ServerError(TetherAPIError):
    code = "server_error"


_BY_STATUS: dict[int, type[TetherAPIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: BadRequestError,
    415: BadRequestError,
    429: RateLimitError,
    431: BadRequestError,
}


def api_error(response: httpx.Response) -> TetherAPIError:
    """The SDK error for an error answer, with tether's ``error_code`` when it sent one."""
    status = response.status_code
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else TetherAPIError)
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {}
    code = body.get("error_code")
    oauth_error = body.get("error") if isinstance(body.get("error"), str) else None
    detail = body.get("detail") or body.get("error_description") or body.get("message")
    if not isinstance(detail, str) or not detail:
        detail = f"tether answered {status} to `{response.request.method} {response.request.url}`"
    headers = {k.lower(): v for k, v in response.headers.items()}
    return cls(
        detail,
        status=status,
        code=code if isinstance(code, str) and code else None,
        oauth_error=oauth_error,
        body=body,
        headers=headers,
    )


def transport_error(exc: httpx.TransportError, url: str) -> TetherUnavailable:
    """The SDK error for a request that got no answer."""
    if isinstance(exc, httpx.TimeoutException):
        return TetherTimeout(f"tether at `{url}` did not answer in time ({type(exc).__name__})")
    reason = str(exc) or type(exc).__name__
    return TetherUnavailable(f"tether at `{url}` could not be reached: {reason}")


# --- a guarded tool that was not run ---------------------------------------------------------


class ToolRefused(ClientError):
    """A guarded tool was not run, or its result was withheld.

    Attributes:
        tool: the guarded tool's name.
        reasons: why, as tether said (policy ids, error codes).
        decision: the decision that refused it, when there was one.
    """

    code = "tool_refused"

    def __init__(
        self,
        message: str,
        *,
        tool: str,
        code: str | None = None,
        reasons: Sequence[str] = (),
        decision: Decision | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.tool = tool
        self.reasons = tuple(reasons)
        self.decision = decision


class ToolDenied(ToolRefused):
    """tether denied the call (``error_code`` says why when tether gave a code)."""

    code = "tool_denied"


class ApprovalPending(ToolRefused):
    """The call needs a human's approval; ``ticket`` is the approval to wait for."""

    code = "approval_pending"

    def __init__(self, message: str, *, tool: str, ticket: ApprovalTicket, **kw: Any) -> None:
        super().__init__(message, tool=tool, **kw)
        self.ticket = ticket


class ObligationUnsupported(ToolRefused):
    """The decision carries obligations this guard cannot fulfil, so it must refuse."""

    code = "obligation_unsupported"

    def __init__(self, message: str, *, tool: str, obligations: Sequence[str], **kw: Any) -> None:
        super().__init__(message, tool=tool, **kw)
        self.obligations = tuple(obligations)


class DecisionUnavailable(ToolRefused):
    """No decision could be had (tether unreachable, too slow, or it refused the PEP):
    the guard fails closed. The error from the client is the ``__cause__``."""

    code = "decision_unavailable"
