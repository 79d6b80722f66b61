"""Errors of human approvals; each carries a stable ``code``.

Refusals of a retry are not errors: they are deny decisions whose reason and
``error_code`` name the check (``approval_used``, ``approval_mismatch``,
``approval_denied``, ``approval_expired``, ``approval_unknown``). These errors are for
the people and PEPs calling the approvals API and CLI::

    NotFound
    └── ApprovalNotFound        approval_unknown
    Conflict
    ├── ApprovalExpired         approval_expired
    └── ApprovalAlreadyDecided  approval_already_decided
    Forbidden
    └── ApproverNotUser         approver_not_user
    InvalidRequest
    └── ApprovalRequestInvalid  approval_request_invalid

A caller who is not an approver, or who is party to the request, meets
``tether.callers.errors.RoleForbidden`` (``role_forbidden``) and
``SelfApprovalForbidden`` (``self_approval_forbidden``).
"""

from __future__ import annotations

from tether.errors import Conflict, Forbidden, InvalidRequest, NotFound


class ApprovalNotFound(NotFound):
    code = "approval_unknown"


class ApprovalExpired(Conflict):
    code = "approval_expired"


class ApprovalAlreadyDecided(Conflict):
    code = "approval_already_decided"


class ApproverNotUser(Forbidden):
    code = "approver_not_user"


class ApprovalRequestInvalid(InvalidRequest):
    code = "approval_request_invalid"
