"""Signing off a review: who, when, the scope, a decision per row, and the report's digest.

A sign-off is made against a report generated at that moment for the scope asked; if
the caller names the digest of the report it read, a different current digest is a
conflict (the data changed since). Every decision must name a row of that report and be
``keep`` or ``revoke``; a bad decision refuses the whole sign-off and stores nothing.
The record and an audit-log entry are written in one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert, select

from tether.errors import Conflict, InvalidRequest, NotFound
from tether.review.report import Report
from tether.store.audit import record_audit
from tether.store.review_tables import access_review_decisions, access_reviews

DECISIONS = ("keep", "revoke")


@dataclass(frozen=True)
class SignOff:
    """A stored sign-off."""

    id: str
    signed_at: datetime
    signed_by: str
    scope: Mapping[str, Any]
    report_digest: str
    summary: Mapping[str, int]
    note: str
    decisions: Mapping[str, str]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "signed_at": self.signed_at.isoformat(),
            "signed_by": self.signed_by,
            "scope": dict(self.scope),
            "report_digest": self.report_digest,
            "summary": dict(self.summary),
            "note": self.note,
            "decisions": dict(self.decisions),
        }


def parse_decisions(items: list[str]) -> dict[str, str]:
    """``ROW=keep|revoke`` strings as a mapping (the row id may itself hold ``=``)."""
    found: dict[str, str] = {}
    for item in items:
        row, sep, decision = item.rpartition("=")
        if not sep or not row:
            raise InvalidRequest(f"decision `{item}` must look like `ROW=keep` or `ROW=revoke`")
        found[row] = decision
    return found


def sign_off(
    engine: Engine,
    report: Report,
    *,
    signed_by: str,
    decisions: Mapping[str, str],
    note: str = "",
    expected_digest: str | None = None,
    now: datetime | None = None,
) -> SignOff:
    """Validate and store a sign-off of ``report``.

    Raises:
        InvalidRequest: no signer, a decision that is not keep/revoke, or one naming a
            row the report does not have.
        Conflict: ``expected_digest`` differs from the report's digest.
    """
    if not signed_by.strip():
        raise InvalidRequest("a sign-off needs the name of who signs it")
    if expected_digest is not None and expected_digest != report.digest:
        raise Conflict(
            f"the report changed since it was read: digest `{report.digest}`, "
            f"expected `{expected_digest}`; read it again and review the changes"
        )
    rows = {str(row["row_id"]): row for _, row in report.rows()}
    problems = []
    for row_id, decision in decisions.items():
        if decision not in DECISIONS:
            problems.append(f"decision `{decision}` for `{row_id}` is not keep or revoke")
        elif row_id not in rows:
            problems.append(f"row `{row_id}` is not in the report")
    if problems:
        raise InvalidRequest("; ".join(problems))
    record = SignOff(
        id=uuid.uuid4().hex,
        signed_at=now or datetime.now(UTC),
        signed_by=signed_by,
        scope=dict(report.scope),
        report_digest=report.digest,
        summary={
            "rows": len(rows),
            "decisions": len(decisions),
            "revoke": sum(1 for d in decisions.values() if d == "revoke"),
            "keep": sum(1 for d in decisions.values() if d == "keep"),
        },
        note=note,
        decisions=dict(decisions),
    )
    with engine.begin() as connection:
        connection.execute(
            insert(access_reviews).values(
                id=record.id,
                signed_at=record.signed_at,
                signed_by=record.signed_by[:200],
                scope=dict(record.scope),
                report_digest=record.report_digest,
                summary=dict(record.summary),
                note=note,
                report=report.to_json(),
            )
        )
        if decisions:
            connection.execute(
                insert(access_review_decisions),
                [
                    {
                        "review_id": record.id,
                        "row_id": row_id,
                        "row_type": str(rows[row_id].get("row_type", "")),
                        "identity_id": rows[row_id].get("identity"),
                        "decision": decision,
                    }
                    for row_id, decision in decisions.items()
                ],
            )
        record_audit(
            connection,
            actor=signed_by,
            action="review.sign_off",
            target=f"review:{record.id}",
            details={"scope": dict(record.scope), "digest": record.report_digest, **record.summary},
        )
    return record


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def get_sign_off(engine: Engine, review_id: str) -> SignOff:
    """A stored sign-off by id.

    Raises:
        NotFound: no sign-off has that id.
    """
    with engine.connect() as connection:
        row = (
            connection.execute(select(access_reviews).where(access_reviews.c.id == review_id))
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(f"no review `{review_id}`")
        decided = connection.execute(
            select(access_review_decisions.c.row_id, access_review_decisions.c.decision).where(
                access_review_decisions.c.review_id == review_id
            )
        )
        decisions = {str(r): str(d) for r, d in decided}
    return SignOff(
        id=row["id"],
        signed_at=_utc(row["signed_at"]),
        signed_by=row["signed_by"],
        scope=row["scope"],
        report_digest=row["report_digest"],
        summary=row["summary"],
        note=row["note"],
        decisions=decisions,
    )


def recent_sign_offs(engine: Engine, limit: int = 20) -> list[dict[str, Any]]:
    """The latest sign-offs, newest first (without their decisions)."""
    r = access_reviews.c
    query = (
        select(r.id, r.signed_at, r.signed_by, r.scope, r.report_digest, r.summary)
        .order_by(r.signed_at.desc())
        .limit(limit)
    )
    with engine.connect() as connection:
        return [
            {**dict(row), "signed_at": _utc(row["signed_at"]).isoformat()}
            for row in connection.execute(query).mappings()
        ]
