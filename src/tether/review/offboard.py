"""Offboarding: revoke everything an identity holds, disable it, keep the evidence.

:func:`offboard_identity` does, in this order:

1. marks the identity ``offboarded`` (``identities.status``, read by every proof check:
   no new task, no token exchange) and records it in ``offboardings``, which tether's
   decision point reads (every later decision for it is a deny, ``identity_offboarded``);
   its PEP API keys are disabled in the same transaction;
2. ends each of its tasks that is not ended, which revokes every token issued for them,
   delegated children included (:meth:`TaskAuthority.end_task`);
3. revokes every token it still holds as the delegated actor in another identity's task,
   with what descends from it (:meth:`TaskAuthority.revoke_jti`);
4. appends one ``identity.offboard`` entry to the audit log listing everything revoked.

Nothing is deleted: the identity row, its tasks, tokens, decisions and events stay as
evidence. Offboarding again sweeps once more (anything issued in a race is revoked) and
answers ``already_offboarded``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, insert, or_, select, update

from tether.errors import InvalidRequest, NotFound
from tether.store.caller_tables import api_keys
from tether.store.lifecycle_tables import offboardings
from tether.store.tables import identities
from tether.store.token_tables import issued_tokens, tasks
from tether.tokens import TaskAuthority
from tether.tokens.ledger import record_event, utc
from tether.tokens.tasks import ENDED

OFFBOARDED = "offboarded"
MAX_REASON = 400


@dataclass(frozen=True)
class Offboarding:
    """What one offboarding did (``tasks_ended`` etc. are what this run revoked)."""

    identity_id: str
    offboarded_at: datetime
    offboarded_by: str
    reason: str
    previous_status: str | None
    tasks_ended: tuple[str, ...]
    tokens_revoked: tuple[str, ...]
    api_keys_disabled: tuple[str, ...]
    already_offboarded: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "identity": self.identity_id,
            "status": OFFBOARDED,
            "offboarded_at": self.offboarded_at.isoformat(),
            "offboarded_by": self.offboarded_by,
            "reason": self.reason,
            "previous_status": self.previous_status,
            "tasks_ended": list(self.tasks_ended),
            "tokens_revoked": list(self.tokens_revoked),
            "api_keys_disabled": list(self.api_keys_disabled),
            "already_offboarded": self.already_offboarded,
        }


def offboard_identity(
    authority: TaskAuthority, identity_id: str, *, actor: str, reason: str = "offboarded"
) -> Offboarding:
    """Offboard ``identity_id`` (see the module docstring).

    Raises:
        NotFound: no such identity, and none was ever offboarded under that id.
        InvalidRequest: an empty or overlong reason.
    """
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON:
        raise InvalidRequest(
            f"the offboarding reason must be 1 to {MAX_REASON} characters",
            code="offboard_request_invalid",
        )
    engine = authority.engine
    now = authority.now()
    previous, keys, already = _disable(engine, identity_id, actor=actor, reason=reason, now=now)
    # This process stops accepting the identity's proofs now, not at the next refresh.
    authority.trust.refresh(force=True)
    ended: list[str] = []
    revoked: list[str] = []
    for task_id in _unended_tasks(engine, identity_id):
        result = authority.end_task(task_id, actor=actor, reason=f"identity offboarded: {reason}")
        if not result.already_ended:
            ended.append(task_id)
        revoked.extend(result.revoked)
    for jti in _live_tokens(engine, identity_id, authority.now()):
        revoked.extend(authority.revoke_jti(jti, actor=actor, reason="identity offboarded"))
    revoked = list(dict.fromkeys(revoked))
    with engine.begin() as connection:
        stored = (
            connection.execute(
                select(offboardings.c.revoked).where(offboardings.c.identity_id == identity_id)
            ).scalar_one()
            or {}
        )
        merged = {
            "tasks_ended": _union(stored.get("tasks_ended"), ended),
            "tokens_revoked": _union(stored.get("tokens_revoked"), revoked),
            "api_keys_disabled": _union(stored.get("api_keys_disabled"), keys),
        }
        connection.execute(
            update(offboardings)
            .where(offboardings.c.identity_id == identity_id)
            .values(revoked=merged)
        )
        record_event(
            connection,
            actor=actor,
            action="identity.offboard",
            target=identity_id,
            details={
                "reason": reason,
                "previous_status": previous,
                "already_offboarded": already,
                "tasks_ended": ended,
                "tokens_revoked": revoked,
                "api_keys_disabled": keys,
            },
            at=now,
        )
    return Offboarding(
        identity_id=identity_id,
        offboarded_at=now,
        offboarded_by=actor,
        reason=reason,
        previous_status=previous,
        tasks_ended=tuple(ended),
        tokens_revoked=tuple(revoked),
        api_keys_disabled=tuple(keys),
        already_offboarded=already,
    )


def _disable(
    engine: Engine, identity_id: str, *, actor: str, reason: str, now: datetime
) -> tuple[str | None, list[str], bool]:
    """Step 1, in one transaction: (previous status, API keys disabled, already offboarded)."""
    with engine.begin() as connection:
        status = connection.execute(
            select(identities.c.status).where(identities.c.id == identity_id)
        ).scalar_one_or_none()
        recorded = connection.execute(
            select(offboardings.c.previous_status).where(offboardings.c.identity_id == identity_id)
        ).first()
        if status is None and recorded is None:
            raise NotFound(f"no identity `{identity_id}`", code="identity_not_found")
        if status is not None and status != OFFBOARDED:
            connection.execute(
                update(identities)
                .where(identities.c.id == identity_id)
                .values(status=OFFBOARDED, updated_at=now)
            )
        live_keys = and_(api_keys.c.identity_id == identity_id, api_keys.c.revoked_at.is_(None))
        keys = list(connection.execute(select(api_keys.c.key_id).where(live_keys)).scalars())
        if keys:
            connection.execute(update(api_keys).where(live_keys).values(revoked_at=now))
        if recorded is None:
            connection.execute(
                insert(offboardings).values(
                    identity_id=identity_id,
                    offboarded_at=now,
                    offboarded_by=actor[:200],
                    reason=reason,
                    previous_status=status,
                    revoked={},
                )
            )
            return status, keys, False
        return recorded.previous_status, keys, True


def _unended_tasks(engine: Engine, identity_id: str) -> list[str]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                select(tasks.c.id)
                .where(tasks.c.identity_id == identity_id, tasks.c.status != ENDED)
                .order_by(tasks.c.opened_at)
            ).scalars()
        )


def _live_tokens(engine: Engine, identity_id: str, now: datetime) -> list[str]:
    """Unrevoked, unexpired tokens it holds as subject or delegated actor, parents first."""
    with engine.connect() as connection:
        return list(
            connection.execute(
                select(issued_tokens.c.jti)
                .where(
                    or_(
                        issued_tokens.c.identity_id == identity_id,
                        issued_tokens.c.actor_id == identity_id,
                    ),
                    issued_tokens.c.revoked_at.is_(None),
                    issued_tokens.c.expires_at > now,
                )
                .order_by(issued_tokens.c.depth, issued_tokens.c.issued_at)
            ).scalars()
        )


def _union(old: Any, new: Sequence[str]) -> list[str]:
    return list(dict.fromkeys([*(old or []), *new]))


@dataclass(frozen=True)
class OffboardRecord:
    """An ``offboardings`` row: who offboarded the identity, when and what was revoked."""

    identity_id: str
    offboarded_at: datetime
    offboarded_by: str
    reason: str
    revoked: dict[str, list[str]]


def offboard_records(engine: Engine) -> dict[str, OffboardRecord]:
    """Every offboarding, by identity id."""
    with engine.connect() as connection:
        rows = connection.execute(select(offboardings)).mappings().all()
    return {
        r["identity_id"]: OffboardRecord(
            r["identity_id"],
            utc(r["offboarded_at"]),
            r["offboarded_by"],
            r["reason"],
            dict(r["revoked"] or {}),
        )
        for r in rows
    }
