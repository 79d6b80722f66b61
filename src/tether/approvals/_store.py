"""Approvals in the store: made pending, listed, and used once (compare-and-set).

Single use holds on both backends because using an approval is one statement,
``UPDATE approvals SET used_at = :now WHERE id = :id AND status = 'approved' AND used_at
IS NULL AND binding_hash = :hash AND requested_by = :caller AND expires_at > :now``: SQLite
runs writers one at a time, and PostgreSQL re-checks the ``WHERE`` of a row a concurrent
transaction changed before it updates it, so of two concurrent retries exactly one sees
``rowcount == 1``. Only after a refused update is the row read, to say why.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, insert, select, update

from tether.approvals._binding import bound_request
from tether.approvals._model import Approval, ApprovalStatus
from tether.approvals.errors import ApprovalNotFound
from tether.policy import DecisionRequest
from tether.store.approval_tables import approvals
from tether.store.tables import identities

#: Why a retry with ``context.approval_id`` was refused (the deny's reason and error code).
APPROVAL_UNKNOWN = "approval_unknown"
APPROVAL_MISMATCH = "approval_mismatch"
APPROVAL_DENIED = "approval_denied"
APPROVAL_USED = "approval_used"
APPROVAL_EXPIRED = "approval_expired"
#: Not a refusal: the approval is still pending, the answer stays ``approval_required``.
APPROVAL_PENDING = "approval_pending"
MAX_ID_LENGTH = 40


@dataclass(frozen=True)
class Retry:
    """The result of a retry: ``code`` is ``None`` when the approval was used by it."""

    code: str | None
    message: str
    approval: Approval | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def status_filter(status: ApprovalStatus, now: datetime) -> ColumnElement[bool]:
    """SQL for "has status ``status`` at ``now``" (see :meth:`Approval.status`)."""
    c = approvals.c
    unused = c.used_at.is_(None)
    if status is ApprovalStatus.USED:
        return c.used_at.is_not(None)
    if status is ApprovalStatus.DENIED:
        return c.status == ApprovalStatus.DENIED.value
    if status is ApprovalStatus.EXPIRED:
        undecided = c.status.in_([ApprovalStatus.PENDING.value, ApprovalStatus.APPROVED.value])
        return and_(undecided, unused, c.expires_at <= now)
    return and_(c.status == status.value, unused, c.expires_at > now)


class ApprovalStore:
    """Approvals of one store; every method is one short transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(
        self,
        request: DecisionRequest,
        *,
        reasons: Sequence[str],
        requested_by: str,
        decision_id: str,
        binding: str,
        expires_at: datetime,
        now: datetime | None = None,
    ) -> Approval:
        """Store a pending approval of ``request`` (committed when this returns)."""
        moment = now or _now()
        values: dict[str, Any] = {
            "id": uuid.uuid4().hex,
            "status": ApprovalStatus.PENDING.value,
            "subject_type": request.subject.type,
            "subject_id": request.subject.id,
            "action": request.action,
            "resource_type": request.resource.type,
            "resource_id": request.resource.id,
            "request": bound_request(request),
            "binding_hash": binding,
            "reasons": list(reasons),
            "requested_by": requested_by,
            "decision_id": decision_id,
            "created_at": moment,
            "expires_at": expires_at,
        }
        with self.engine.begin() as connection:
            owner = connection.execute(
                select(identities.c.owner).where(identities.c.id == request.subject.id)
            ).scalar()
            # Who may never decide it (four eyes): subject, requester, subject's owner.
            parties = {request.subject.id, requested_by} | ({owner} if owner else set())
            values["parties"] = sorted(parties)
            connection.execute(insert(approvals).values(**values))
        return Approval.from_row(_Row(values))

    def get(self, approval_id: str) -> Approval:
        """Raises:
        ApprovalNotFound: there is no approval ``approval_id``.
        """
        found = self.find(approval_id)
        if found is None:
            raise ApprovalNotFound(f"no approval `{approval_id[:MAX_ID_LENGTH]}`")
        return found

    def find(self, approval_id: str) -> Approval | None:
        if len(approval_id) > MAX_ID_LENGTH:
            return None
        with self.engine.connect() as connection:
            row = connection.execute(select(approvals).where(approvals.c.id == approval_id)).first()
        return Approval.from_row(row) if row is not None else None

    def list(
        self,
        *,
        status: ApprovalStatus | None = None,
        requested_by: str | None = None,
        limit: int = 100,
        now: datetime | None = None,
    ) -> list[Approval]:
        """Approvals, newest first, optionally of one status or one requester."""
        query = select(approvals).order_by(approvals.c.created_at.desc()).limit(limit)
        if status is not None:
            query = query.where(status_filter(status, now or _now()))
        if requested_by is not None:
            query = query.where(approvals.c.requested_by == requested_by)
        with self.engine.connect() as connection:
            return [Approval.from_row(row) for row in connection.execute(query)]

    def use(
        self,
        approval_id: object,
        *,
        binding: str,
        requested_by: str,
        decision_id: str,
        now: datetime | None = None,
    ) -> Retry:
        """Use approval ``approval_id`` for the request hashed ``binding``, once."""
        if not isinstance(approval_id, str) or not 0 < len(approval_id) <= MAX_ID_LENGTH:
            return Retry(APPROVAL_UNKNOWN, "`context.approval_id` names no approval")
        moment = now or _now()
        c = approvals.c
        with self.engine.begin() as connection:
            used = connection.execute(
                update(approvals)
                .where(
                    c.id == approval_id,
                    c.status == ApprovalStatus.APPROVED.value,
                    c.used_at.is_(None),
                    c.binding_hash == binding,
                    c.requested_by == requested_by,
                    c.expires_at > moment,
                )
                .values(used_at=moment, used_decision_id=decision_id)
            )
            row = connection.execute(select(approvals).where(c.id == approval_id)).first()
        if row is None:
            return Retry(APPROVAL_UNKNOWN, f"no approval `{approval_id}`")
        approval = Approval.from_row(row)
        if used.rowcount == 1:
            return Retry(None, f"approved by `{approval.decided_by}`", approval)
        return _refusal(approval, binding, requested_by, moment)


def _refusal(approval: Approval, binding: str, requested_by: str, now: datetime) -> Retry:
    name = f"approval `{approval.id}`"
    if approval.binding_hash != binding or approval.requested_by != requested_by:
        return Retry(
            APPROVAL_MISMATCH,
            f"{name} was given for another request; ask again without `approval_id`",
        )
    status = approval.status(now)
    if status is ApprovalStatus.DENIED:
        return Retry(APPROVAL_DENIED, f"{name} was denied by `{approval.decided_by}`", approval)
    if status is ApprovalStatus.USED:
        return Retry(APPROVAL_USED, f"{name} was already used; an approval is single use")
    if status is ApprovalStatus.EXPIRED:
        return Retry(
            APPROVAL_EXPIRED, f"{name} expired at {approval.expires_at.isoformat()}", approval
        )
    return Retry(APPROVAL_PENDING, f"{name} is still pending", approval)


class _Row:
    """A mapping seen as a row (attribute access), for :meth:`Approval.from_row`."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)

    def __getattr__(self, name: str) -> Any:  # the optional columns not yet set
        return None
