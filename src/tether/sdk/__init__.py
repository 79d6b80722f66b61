"""tether's Python SDK: a client of tether's HTTP API and ``@guarded`` agent tools.

* :class:`Client` / :class:`AsyncClient` (httpx): ``evaluate``, ``evaluations``,
  ``open_task``, ``exchange``, ``end_task``, ``wait_for_approval``, ``report`` (events),
  ``report_result`` (what a decided call returned, for drift's provenance); the
  PEP authenticates with an :class:`ApiKey`, a :class:`BearerToken` (its JWT-SVID) or a
  :class:`ClientCertificate` (mTLS);
* :func:`guarded`: tether decides each call of a tool function before it runs, its
  obligations are fulfilled, and what ran is reported (see ``tether.sdk.guard``);
* answers are frozen values (:class:`Decision`, :class:`Task`, :class:`TokenGrant`,
  :class:`Approval`); errors are :class:`ClientError` subclasses carrying tether's
  ``error_code`` (see ``tether.sdk.errors``).
"""

from tether.sdk.actors import Actor, acting_as
from tether.sdk.client import AsyncClient, Client
from tether.sdk.credentials import ApiKey, BearerToken, ClientCertificate, Credential
from tether.sdk.errors import (
    ApprovalPending,
    AuthenticationError,
    BadRequestError,
    ClientError,
    ConflictError,
    DecisionUnavailable,
    NotFoundError,
    ObligationUnsupported,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    TetherAPIError,
    TetherTimeout,
    TetherUnavailable,
    ToolDenied,
    ToolRefused,
    UnexpectedResponse,
)
from tether.sdk.events import ToolCall
from tether.sdk.guard import FAIL_CLOSED, FailClosed, guarded
from tether.sdk.models import (
    AccessRequest,
    Approval,
    ApprovalStatus,
    ApprovalTicket,
    Decision,
    Outcome,
    ReportReceipt,
    Resource,
    ResultReceipt,
    Subject,
    Task,
    TaskIntent,
    TokenGrant,
)
from tether.sdk.obligations import ObligationHandler, ObligationMismatch

__all__ = [
    "FAIL_CLOSED",
    "AccessRequest",
    "Actor",
    "ApiKey",
    "Approval",
    "ApprovalPending",
    "ApprovalStatus",
    "ApprovalTicket",
    "AsyncClient",
    "AuthenticationError",
    "BadRequestError",
    "BearerToken",
    "Client",
    "ClientCertificate",
    "ClientError",
    "ConflictError",
    "Credential",
    "Decision",
    "DecisionUnavailable",
    "FailClosed",
    "NotFoundError",
    "ObligationHandler",
    "ObligationMismatch",
    "ObligationUnsupported",
    "Outcome",
    "PermissionDeniedError",
    "RateLimitError",
    "ReportReceipt",
    "Resource",
    "ResultReceipt",
    "ServerError",
    "Subject",
    "Task",
    "TaskIntent",
    "TetherAPIError",
    "TetherTimeout",
    "TetherUnavailable",
    "TokenGrant",
    "ToolCall",
    "ToolDenied",
    "ToolRefused",
    "UnexpectedResponse",
    "acting_as",
    "guarded",
]
