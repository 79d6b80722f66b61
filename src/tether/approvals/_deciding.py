"""Deciding an approval: only a ``user`` who holds the approver role and is no party to it.

The rules are checked against the store (never against what a token claims), just before
the verdict is recorded, so the HTTP API and ``tether approvals`` apply the
same rules: the approver is an active identity of kind ``user`` with the ``approver``
role (:func:`tether.callers.check_may_approve`), not the request's subject, its
requesting caller or the subject's owner; the approval is still pending and unexpired.
The verdict is a compare-and-set on ``status = 'pending'`` (two approvers racing: one
wins, the other is told it was already decided) and an audit-log row (who, when,
comment) in the same transaction.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, select, update

from tether.approvals._model import Approval, ApprovalStatus, Verdict
from tether.approvals.errors import (
    ApprovalAlreadyDecided,
    ApprovalExpired,
    ApprovalNotFound,
    ApprovalRequestInvalid,
    ApproverNotUser,
)
from tether.callers import Caller, check_may_approve
from tether.callers.directory import parse_roles
from tether.store.approval_tables import approvals
from tether.store.audit import record_audit
from tether.store.caller_tables import caller_roles
from tether.store.tables import identities

MAX_COMMENT = 2000


def check_comment(comment: object) -> str | None:
    """A comment is optional text of at most 2000 characters."""
    if comment is None:
        return None
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
        raise ApprovalRequestInvalid(f"`comment` must be text of at most {MAX_COMMENT} characters")
    return comment


def approver_of(connection: Connection, identity_id: str, credential: str) -> Caller:
    """The identity ``identity_id`` as an approver, with the roles the store gives it.

    Raises:
        ApproverNotUser: no such identity, not a ``user``, or not active.
    """
    row = connection.execute(
        select(identities.c.kind, identities.c.status).where(identities.c.id == identity_id)
    ).first()
    if row is None:
        raise ApproverNotUser(
            f"no identity `{identity_id}`; approvals are decided by `user` identities"
        )
    if row.kind != "user":
        raise ApproverNotUser(
            f"`{identity_id}` is of kind `{row.kind}`; only `user` identities decide approvals"
        )
    if row.status != "active":
        raise ApproverNotUser(f"user `{identity_id}` is {row.status}; it cannot decide approvals")
    roles = connection.execute(
        select(caller_roles.c.roles).where(caller_roles.c.identity_id == identity_id)
    ).scalar()
    return Caller(identity_id, parse_roles(roles), credential)


def decide(
    engine: Engine,
    approval_id: str,
    verdict: Verdict,
    *,
    approver_id: str,
    comment: str | None = None,
    via: str = "cli",
    now: datetime | None = None,
) -> Approval:
    """Record ``approver_id``'s verdict on a pending approval.

    Raises:
        ApprovalNotFound: no such approval.
        ApproverNotUser: the approver is not an active ``user``.
        RoleForbidden: the approver does not hold the approver role.
        SelfApprovalForbidden: the approver is party to the request.
        ApprovalExpired: it expired before it was decided.
        ApprovalAlreadyDecided: someone decided it already.
    """
    moment = now or datetime.now(UTC)
    comment = check_comment(comment)
    with engine.connect() as connection:
        row = connection.execute(select(approvals).where(approvals.c.id == approval_id)).first()
        if row is None:
            raise ApprovalNotFound(f"no approval `{approval_id[:40]}`")
        approval = Approval.from_row(row)
        check_may_approve(approver_of(connection, approver_id, via), approval.parties)
        _check_pending(approval, moment)
    # The write transaction starts with its write, so SQLite queues it behind a concurrent
    # verdict (busy timeout) instead of failing a read snapshot that went stale.
    with engine.begin() as connection:
        changed = connection.execute(
            update(approvals)
            .where(
                approvals.c.id == approval_id,
                approvals.c.status == ApprovalStatus.PENDING.value,
                approvals.c.expires_at > moment,
            )
            .values(
                status=verdict.status.value,
                decided_at=moment,
                decided_by=approver_id,
                comment=comment,
            )
        )
        if changed.rowcount != 1:  # decided by someone else since we read it
            fresh = connection.execute(select(approvals).where(approvals.c.id == approval_id)).one()
            _check_pending(Approval.from_row(fresh), moment)
            raise ApprovalAlreadyDecided(f"approval `{approval_id}` was decided meanwhile")
        record_audit(
            connection,
            actor=approver_id,
            action=f"approval.{verdict.value}",
            target=approval_id,
            details={
                "comment": comment,
                "via": via,
                "subject": f"{approval.subject_type}:{approval.subject_id}",
                "action": approval.action,
                "resource": f"{approval.resource_type}:{approval.resource_id}",
                "requested_by": approval.requested_by,
                "decision_id": approval.decision_id,
            },
            at=moment,
        )
    return replace(
        approval,
        decided=verdict.status,
        decided_at=moment,
        decided_by=approver_id,
        comment=comment,
    )


def _check_pending(approval: Approval, now: datetime) -> None:
    status = approval.status(now)
    if status is ApprovalStatus.EXPIRED:
        raise ApprovalExpired(
            f"approval `{approval.id}` expired at {approval.expires_at.isoformat()}; "
            "expired approvals are denied, the requester must ask again"
        )
    if status is not ApprovalStatus.PENDING:
        by = f" by `{approval.decided_by}`" if approval.decided_by else ""
        raise ApprovalAlreadyDecided(f"approval `{approval.id}` is already {status.value}{by}")
