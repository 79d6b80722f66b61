"""An approval of one high-impact request, as the store keeps it (frozen values)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class ApprovalStatus(StrEnum):
    """Where an approval stands.

    ``pending``, ``approved`` and ``denied`` are what a human decided; ``expired`` (not
    decided, or approved and not used, before ``expires_at``: default deny) and ``used``
    (its one retry was allowed) are derived from the clock and the store.
    """

    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"
    USED = "used"


class Verdict(StrEnum):
    """What an approver decides."""

    APPROVE = "approve"
    DENY = "deny"

    @property
    def status(self) -> ApprovalStatus:
        return ApprovalStatus.APPROVED if self is Verdict.APPROVE else ApprovalStatus.DENIED


def aware(moment: datetime) -> datetime:
    """``moment`` in UTC (SQLite hands back naive datetimes)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def poll_path(approval_id: str) -> str:
    return f"/v1/approvals/{approval_id}"


@dataclass(frozen=True)
class Approval:
    """One approval: the request it is bound to, who asked, who decided, when it was used."""

    id: str
    decided: ApprovalStatus  # pending | approved | denied: what a human decided
    subject_type: str
    subject_id: str
    action: str
    resource_type: str
    resource_id: str
    request: Mapping[str, Any]
    binding_hash: str
    reasons: tuple[str, ...]
    requested_by: str
    decision_id: str
    parties: tuple[str, ...]
    created_at: datetime
    expires_at: datetime
    decided_at: datetime | None = None
    decided_by: str | None = None
    comment: str | None = None
    used_at: datetime | None = None
    used_decision_id: str | None = None

    @classmethod
    def from_row(cls, row: Any) -> Approval:
        def maybe(moment: datetime | None) -> datetime | None:
            return aware(moment) if moment is not None else None

        return cls(
            id=row.id,
            decided=ApprovalStatus(row.status),
            subject_type=row.subject_type,
            subject_id=row.subject_id,
            action=row.action,
            resource_type=row.resource_type,
            resource_id=row.resource_id,
            request=dict(row.request),
            binding_hash=row.binding_hash,
            reasons=tuple(row.reasons),
            requested_by=row.requested_by,
            decision_id=row.decision_id,
            parties=tuple(row.parties),
            created_at=aware(row.created_at),
            expires_at=aware(row.expires_at),
            decided_at=maybe(row.decided_at),
            decided_by=row.decided_by,
            comment=row.comment,
            used_at=maybe(row.used_at),
            used_decision_id=row.used_decision_id,
        )

    def status(self, now: datetime) -> ApprovalStatus:
        """The status at ``now``: used and denied are final, the rest expire."""
        if self.used_at is not None:
            return ApprovalStatus.USED
        if self.decided is ApprovalStatus.DENIED:
            return ApprovalStatus.DENIED
        if now >= self.expires_at:
            return ApprovalStatus.EXPIRED
        return self.decided

    def ticket(self, now: datetime) -> dict[str, Any]:
        """What an ``approval_required`` answer carries in ``context.approval``."""
        return {
            "id": self.id,
            "status": self.status(now).value,
            "expires_at": self.expires_at.isoformat(),
            "poll": poll_path(self.id),
        }

    def to_json(self, now: datetime) -> dict[str, Any]:
        def iso(moment: datetime | None) -> str | None:
            return moment.isoformat() if moment is not None else None

        return {
            "id": self.id,
            "status": self.status(now).value,
            "subject": {"type": self.subject_type, "id": self.subject_id},
            "action": {"name": self.action},
            "resource": {"type": self.resource_type, "id": self.resource_id},
            "request": dict(self.request),
            "reasons": list(self.reasons),
            "requested_by": self.requested_by,
            "decision_id": self.decision_id,
            "created_at": iso(self.created_at),
            "expires_at": iso(self.expires_at),
            "decided_at": iso(self.decided_at),
            "decided_by": self.decided_by,
            "comment": self.comment,
            "used_at": iso(self.used_at),
            "used_decision_id": self.used_decision_id,
            "poll": poll_path(self.id),
        }
