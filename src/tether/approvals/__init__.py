"""Human approvals for high-impact actions (decision outcome ``approval_required``).

A decision whose policies answer ``approval_required`` stores a pending approval bound to
exactly that request (:func:`binding_hash`) and answers its ticket in
``context.approval``; a human approves or denies it (HTTP ``/v1/approvals``,
``tether approvals``); the PEP retries with ``context.approval_id`` and is allowed once.

* :class:`ApprovalService`: what ``Tether.evaluate`` calls (``settle``) and the API decides with;
* :class:`ApprovalStore`: create, read, list, and the single-use compare-and-set;
* :func:`decide`: the approver rules (a ``user``, the approver role, no party to it);
* :class:`Approval`, :class:`ApprovalStatus`, :class:`Verdict`: the values.
"""

from tether.approvals._binding import VOLATILE_CONTEXT_KEYS, binding_hash, bound_request
from tether.approvals._deciding import check_comment, decide
from tether.approvals._model import Approval, ApprovalStatus, Verdict
from tether.approvals._service import (
    APPROVAL_ID,
    ApprovalService,
    Settled,
    approval_reason,
)
from tether.approvals._store import (
    APPROVAL_DENIED,
    APPROVAL_EXPIRED,
    APPROVAL_MISMATCH,
    APPROVAL_PENDING,
    APPROVAL_UNKNOWN,
    APPROVAL_USED,
    ApprovalStore,
    Retry,
)

__all__ = [
    "APPROVAL_DENIED",
    "APPROVAL_EXPIRED",
    "APPROVAL_ID",
    "APPROVAL_MISMATCH",
    "APPROVAL_PENDING",
    "APPROVAL_UNKNOWN",
    "APPROVAL_USED",
    "VOLATILE_CONTEXT_KEYS",
    "Approval",
    "ApprovalService",
    "ApprovalStatus",
    "ApprovalStore",
    "Retry",
    "Settled",
    "Verdict",
    "approval_reason",
    "binding_hash",
    "bound_request",
    "check_comment",
    "decide",
]
