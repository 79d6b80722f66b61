"""The task authority: opens and ends tasks, issues, checks and revokes task tokens.

One per :class:`~tether.services.Tether` (``tether.tasks``); the HTTP edge and the CLI
call the same methods. The protocols sit on top of it, one module each: token exchange
(``exchange``, RFC 8693), introspection (``introspection``, RFC 7662), revocation
(``revocation``, RFC 7009), metadata (``metadata``, RFC 8414) and decisions with a task
token (``decisions``).

Checking a token (:meth:`TaskAuthority.inspect`) is the hot part: a cache hit costs a
dict lookup and one read of the revocation version; a miss verifies the signature and
reads the token's record and task once.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from tether.config import Settings
from tether.errors import FieldError, Forbidden, NotFound, TetherError
from tether.estate import CompiledEstate
from tether.tokens import ledger
from tether.tokens.access_token import TaskTokenClaims, sign_task_token
from tether.tokens.cache import VerifiedToken
from tether.tokens.checking import Inspection, TokenChecker
from tether.tokens.errors import TaskNotFound, TaskNotOwned, TaskRequestInvalid, TaskTtlTooLong
from tether.tokens.keys import KeyRing, SigningKey
from tether.tokens.rotation import DEFAULT_TOKEN_TTL_S, KeyWatch, rotate
from tether.tokens.tasks import (
    DEFAULT_MAX_TASK_TTL_S,
    OPEN,
    TASK_CONTEXT_MEMBERS,
    TaskRecord,
    TaskRequest,
    check_within_entitlement,
    referenced_attributes,
)
from tether.tokens.trust import WorkloadTrust
from tether.tokens.workloads import Workload, authenticate_workload

log = logging.getLogger(__name__)

#: How deep delegation may go when the class sets no ``max_delegation_depth``: not at all.
DEFAULT_MAX_DELEGATION_DEPTH = 0
_MAX_CACHED_TASKS = 10_000


#: ``(subjects revoked: task ids or jtis, their task id, actor, reason)``.
SessionsRevoked = Callable[[tuple[str, ...], str, str, str], None]


@dataclass(frozen=True)
class IssuedTaskToken:
    token: str
    claims: TaskTokenClaims
    kid: str


class TaskAuthority:
    """Tasks and task tokens over one store.

    Args:
        engine: the store.
        settings: issuer (``public_url``), audience and reload interval.
        keys: tether's signing keys.
        estate: the live compiled estate (for class settings).
        clock: seconds since the epoch (tests move it).
    """

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        keys: KeyRing,
        estate: Callable[[], CompiledEstate],
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.engine = engine
        self.keys = keys
        self.issuer = settings.public_url
        self.audience = settings.audience
        self._estate = estate
        self._clock = clock or time.time
        interval = settings.reload_interval_ms / 1000
        self.trust = WorkloadTrust(engine, audience=settings.audience, refresh_interval_s=interval)
        self.key_watch = KeyWatch(engine, keys)
        self.checker = TokenChecker(
            engine,
            keys,
            self.key_watch,
            issuer=self.issuer,
            audience=self.audience,
            clock=self._clock,
        )
        self.cache = self.checker.cache
        self.revocations = self.checker.revocations
        self._members: tuple[CompiledEstate, frozenset[str] | None] | None = None
        self._tasks: dict[str, TaskRecord] = {}
        # SQLite has one writer: queue token writes here rather than in its busy handler,
        # whose sleeps grow to 100 ms under contention.
        self._writes: AbstractContextManager[Any] = (
            threading.Lock() if engine.dialect.name == "sqlite" else nullcontext()
        )
        # Told of revocations and key rotations (tether.signals sends CAEP events);
        # optional so that tokens/ never imports who listens.
        self.on_sessions_revoked: SessionsRevoked | None = None
        self.on_keys_rotated: Callable[[SigningKey], None] | None = None

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def close(self) -> None:
        self.checker.close()
        self.trust.close()

    # --- classes ----------------------------------------------------------------------------

    def class_settings(self, workload_class: str | None) -> Mapping[str, Any]:
        if workload_class is None:
            return {}
        return self._estate().classes.get(workload_class, {})

    def task_members(self) -> frozenset[str] | None:
        """The members of ``context.tether.task`` the live policies read; ``None`` when no
        policy reads ``task`` at all (then the record is left out of the context)."""
        estate = self._estate()
        cached = self._members
        if cached is not None and cached[0] is estate:
            return cached[1]
        named = referenced_attributes(spec.est for spec in estate.policies)
        members = TASK_CONTEXT_MEMBERS & named if "task" in named else None
        self._members = (estate, members)
        return members

    def enforces_intent(self, workload_class: str | None) -> bool:
        """Whether a request outside the task's intent is denied (``monitor`` only records)."""
        return self.class_settings(workload_class).get("mode") != "monitor"

    # --- workloads --------------------------------------------------------------------------

    def authenticate(self, proof: str, *, attempt: str) -> Workload:
        """Verify a workload proof and find its identity; unknown workloads are recorded.

        Raises:
            IdentityProofError: the proof does not verify, or binds no (or several) identities.
            Forbidden: the identity is not active.
        """
        return authenticate_workload(
            self.trust, self.engine, proof, attempt=attempt, now=self.now()
        )

    def record_refusal(self, actor: str, action: str, target: str, error: TetherError) -> None:
        """Record a refusal of an authenticated party (a scope widening, a replay...)."""
        with self.engine.begin() as connection:
            ledger.record_event(
                connection,
                actor=actor,
                action=action,
                target=target,
                details={"error_code": error.code, "message": error.message},
                at=self.now(),
            )

    # --- tasks ------------------------------------------------------------------------------

    def open_task(
        self,
        request: TaskRequest,
        *,
        identity_id: str,
        opened_by: str,
        proof_id: str | None = None,
    ) -> TaskRecord:
        """Open a task for an identity, within its entitlement and its class's TTL.

        Raises:
            NotFound: no such identity.
            Forbidden: the identity is not active.
            TaskRequestInvalid: an unknown data class.
            TaskTtlTooLong: the TTL exceeds the class maximum.
            IntentExceedsEntitlement: naming what exceeds the standing entitlement.
        """
        now = self.now()
        try:
            with self.engine.begin() as connection:
                identity = ledger.identity(connection, identity_id)
                if identity is None:
                    raise NotFound(f"no identity `{identity_id}`", code="identity_not_found")
                if identity.status != "active":
                    raise Forbidden(
                        f"identity `{identity_id}` is {identity.status}", code="identity_inactive"
                    )
                ttl_s = self._task_ttl(identity.workload_class, request.ttl_s)
                known = ledger.data_class_names(connection)
                unknown = [
                    FieldError(f"intent.data_classes[{i}]", f"data class `{name}` is not declared")
                    for i, name in enumerate(request.intent.data_classes)
                    if name not in known
                ]
                if unknown:
                    raise TaskRequestInvalid(unknown)
                grants = ledger.grants_of(connection, identity_id)
                check_within_entitlement(identity_id, request.intent, grants)
                task = TaskRecord(
                    id=new_task_id(),
                    identity_id=identity_id,
                    identity_kind=identity.kind,
                    workload_class=identity.workload_class,
                    purpose=request.purpose,
                    intent=request.intent,
                    status=OPEN,
                    opened_at=now,
                    expires_at=now + timedelta(seconds=ttl_s),
                    opened_by=opened_by,
                )
                ledger.insert_task(connection, task, proof_id=proof_id)
                ledger.record_event(
                    connection,
                    actor=identity_id,
                    action="task.open",
                    target=task.id,
                    details={
                        "identity": identity_id,
                        "purpose": task.purpose,
                        "intent": task.intent.to_json(),
                        "expires_at": task.expires_at.isoformat(),
                        "opened_by": opened_by,
                        "proof": proof_id,
                    },
                    at=now,
                )
        except TaskRequestInvalid as exc:
            # Asking for more than the entitlement is a signal (scope widening): keep it.
            self.record_refusal(identity_id, "task.refused", identity_id, exc)
            raise
        return task

    def _task_ttl(self, workload_class: str | None, asked: int | None) -> int:
        settings = self.class_settings(workload_class)
        maximum = int(settings.get("max_task_ttl_seconds", DEFAULT_MAX_TASK_TTL_S))
        if asked is None:
            return maximum
        if asked > maximum:
            whose = f"class `{workload_class}`" if settings else "tasks without a class maximum"
            raise TaskTtlTooLong(
                f"a task TTL of {asked} s exceeds the maximum of {maximum} s for {whose}"
            )
        return asked

    def task(self, task_id: str, *, fresh: bool = False) -> TaskRecord:
        """A task; open ones are cached (only their end changes, which the revocation
        state reports), ``fresh`` reads the store.

        Raises:
            TaskNotFound: no such task.
            StoreUnavailable: the revocation state cannot be read.
        """
        cached = None if fresh else self._tasks.get(task_id)
        if cached is not None:
            self.revocations.refresh()
            if not self.revocations.task_ended(task_id):
                return cached
        with self.engine.connect() as connection:
            task = ledger.load_task(connection, task_id)
        if task is None:
            raise TaskNotFound(f"no task `{task_id}`")
        if task.status == OPEN:
            if len(self._tasks) >= _MAX_CACHED_TASKS:
                self._tasks = {}
            self._tasks[task_id] = task
        else:
            self._tasks.pop(task_id, None)
        return task

    def tokens_of(self, task_id: str) -> list[ledger.IssuedToken]:
        with self.engine.connect() as connection:
            return ledger.tokens_of_task(connection, task_id)

    def list_tasks(
        self, *, identity_id: str | None = None, state: str | None = None, limit: int = 100
    ) -> list[TaskRecord]:
        return ledger.list_tasks(
            self.engine, identity_id=identity_id, state=state, limit=limit, now=self.now()
        )

    def end_task(
        self, task_id: str, *, actor: str, reason: str = "ended", owner: str | None = None
    ) -> ledger.EndedTask:
        """End a task: every token issued for it (and delegated from those) is revoked.

        Args:
            owner: when given, the identity that must own the task (a workload ending its
                own); ``None`` for an administrator.

        Raises:
            TaskNotFound, TaskNotOwned.
        """
        if owner is not None and self.task(task_id).identity_id != owner:
            raise TaskNotOwned(f"task `{task_id}` belongs to another identity")
        ended = ledger.end_task(self.engine, task_id, actor=actor, reason=reason, now=self.now())
        if ended is None:
            raise TaskNotFound(f"no task `{task_id}`")
        until = (ended.task.expires_at + ledger.REMEMBER_PAST_EXPIRY).timestamp()
        self.revocations.note("task", task_id, until)
        if self.on_sessions_revoked is not None and not ended.already_ended:
            self.on_sessions_revoked((task_id,), task_id, actor, reason)
        return ended

    # --- tokens -----------------------------------------------------------------------------

    def inspect(self, token: object, *, refresh: bool = True) -> Inspection:
        """Check a task token completely (:meth:`TokenChecker.inspect`); never raises."""
        return self.checker.inspect(token, refresh=refresh)

    def inspect_in_memory(self, token: object) -> Inspection | None:
        """:meth:`inspect` without store I/O, or ``None`` when it would need some
        (:meth:`TokenChecker.inspect_in_memory`)."""
        return self.checker.inspect_in_memory(token)

    def check(self, token: object) -> VerifiedToken:
        """:meth:`inspect`, raising the error.

        Raises:
            TokenRejected, IdentityProofError: the token is not (or no longer) valid.
            StoreUnavailable: the revocation state cannot be read.
        """
        return self.checker.check(token)

    def issue(
        self,
        task: TaskRecord,
        *,
        scope: Sequence[str],
        actors: tuple[str, ...] = (),
        parent: VerifiedToken | None = None,
        event: str,
        actor: str,
        details: Mapping[str, Any],
    ) -> IssuedTaskToken:
        """Mint, sign and record a task token (``exp`` within the task, the class's TTL and
        the parent's ``exp``), with its audit event, in one transaction."""
        now = int(self._clock())
        ttl = int(
            self.class_settings(task.workload_class).get("token_ttl_seconds", DEFAULT_TOKEN_TTL_S)
        )
        expires = min(now + ttl, int(task.expires_at.timestamp()))
        if parent is not None:
            expires = min(expires, parent.claims.expires_at)
        claims = TaskTokenClaims(
            issuer=self.issuer,
            subject=task.identity_id,
            audience=self.audience,
            task_id=task.id,
            jti=secrets.token_urlsafe(18),
            scope=tuple(scope),
            issued_at=now,
            expires_at=expires,
            actors=actors,
        )
        self.refresh_keys()
        kid = self.keys.active().kid
        token = sign_task_token(self.keys, claims)
        parent_record = None
        with self._writes, self.engine.begin() as connection:
            if parent is not None:
                parent_record = ledger.load_token(connection, parent.claims.jti)
            ledger.insert_token(connection, claims, kid=kid, parent=parent_record)
            ledger.record_event(
                connection,
                actor=actor,
                action=event,
                target=claims.jti,
                details={
                    "jti": claims.jti,
                    "task": task.id,
                    "identity": task.identity_id,
                    "parent_jti": parent.claims.jti if parent else None,
                    "actor": claims.actor,
                    "depth": claims.depth,
                    "scope": list(claims.scope),
                    "expires_at": datetime.fromtimestamp(expires, UTC).isoformat(),
                    "kid": kid,
                    **details,
                },
                at=datetime.fromtimestamp(now, UTC),
            )
        return IssuedTaskToken(token, claims, kid)

    def revoke_jti(self, jti: str, *, actor: str, reason: str = "revoked") -> tuple[str, ...]:
        """Revoke a token by ``jti`` and everything delegated from it; the jtis revoked."""
        revoked = ledger.revoke_token(self.engine, jti, actor=actor, reason=reason, now=self.now())
        for token in revoked:
            until = token.expires_at + ledger.REMEMBER_PAST_EXPIRY
            self.revocations.note("token", token.jti, until.timestamp())
        if self.on_sessions_revoked is not None and revoked:
            jtis = tuple(t.jti for t in revoked)
            self.on_sessions_revoked(jtis, revoked[0].task_id, actor, reason)
        return tuple(token.jti for token in revoked)

    # --- keys -------------------------------------------------------------------------------

    def refresh_keys(self, *, force: bool = False) -> bool:
        """Reload the key ring when another process rotated keys; ``True`` if it did."""
        return self.key_watch.refresh(force=force)

    def rotate_keys(self, *, alg: str = "ES256") -> SigningKey:
        """Make a new active key (:func:`tether.tokens.rotation.rotate`)."""
        key = rotate(self.keys, self.engine, self._estate().classes, self.now(), alg=alg)
        if self.on_keys_rotated is not None:
            self.on_keys_rotated(key)
        return key


def new_task_id() -> str:
    return secrets.token_hex(12)
