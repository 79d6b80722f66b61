"""Checking a presented task token completely: form, signature, claims, record, revocation.

In order, each refusal with its own code: the token itself (``access_token``: form,
header, signature, ``iss``, ``aud``, ``exp``), tether's record of issuing it (a token
signed with tether's key but never recorded is ``token_unknown``), then what may have
changed since it was issued: its task ended (``task_ended``), it or a token it was
delegated from was revoked (``token_revoked``), its task expired (``task_expired``). The
first three steps are cached per token until its ``exp``; the rest is asked of the
revocation state at every check (``tokens.cache``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine

from tether.errors import TetherError
from tether.identity import IdentityProofError
from tether.tokens import ledger
from tether.tokens.access_token import LEEWAY_S, TaskTokenClaims, verify_task_token
from tether.tokens.cache import RevocationState, VerifiedToken, VerifiedTokenCache
from tether.tokens.errors import TaskEnded, TaskExpired, TokenRejected, TokenRevoked, TokenUnknown
from tether.tokens.keys import KeyRing
from tether.tokens.rotation import KeyWatch
from tether.tokens.tasks import ENDED, TaskRecord


@dataclass(frozen=True)
class Inspection:
    """What checking a task token found: the token, or the error and what was known.

    ``claims`` (and ``task``) are set whenever the signature verified, refused or not:
    they are trustworthy, e.g. to name the subject of a refused decision.
    """

    verified: VerifiedToken | None
    error: TetherError | None = None
    claims: TaskTokenClaims | None = None
    task: TaskRecord | None = None


class TokenChecker:
    """Checks task tokens against one store; thread-safe.

    Args:
        engine: the store.
        keys: tether's signing keys, reloaded through ``key_watch`` when rotated elsewhere.
        issuer, audience: what a token must name.
        clock: seconds since the epoch.
    """

    def __init__(
        self,
        engine: Engine,
        keys: KeyRing,
        key_watch: KeyWatch,
        *,
        issuer: str,
        audience: str,
        clock: Callable[[], float],
    ) -> None:
        self._engine = engine
        self._keys = keys
        self._key_watch = key_watch
        self.issuer = issuer
        self.audience = audience
        self._clock = clock
        self.cache = VerifiedTokenCache()
        self.revocations = RevocationState(engine, clock=clock)

    def inspect(self, token: object, *, refresh: bool = True) -> Inspection:
        """Check ``token``; never raises for a bad token (the error is in the result).

        Args:
            refresh: read the revocation version first (``False`` only where a stale
                answer is harmless, e.g. to revoke).
        """
        now = self._clock()
        verified = self.cache.get(token, now) if isinstance(token, str) else None
        if verified is None:
            try:
                verified = self._verify(token, now)
            except _Known as known:
                return Inspection(None, known.error, known.claims, known.task)
            except (TokenRejected, IdentityProofError) as exc:
                return Inspection(None, exc)
            assert isinstance(token, str)
            self.cache.put(token, verified, now)
        try:
            if refresh:
                self.revocations.refresh()
        except TetherError as exc:  # cannot tell whether it was revoked: fail closed
            return Inspection(None, exc, verified.claims, verified.task)
        return self._judge(verified, now)

    def inspect_in_memory(self, token: object) -> Inspection | None:
        """:meth:`inspect` when it needs no store I/O, else ``None`` (ask :meth:`inspect`):
        the token verified before (cached) and the revocation state is known current
        without a read (PostgreSQL with a live change feed, :meth:`RevocationState.current`)
        or with a read that cannot wait (SQLite, where its owner allows it). Safe on an
        event loop: no lock waited for, no signature check."""
        if not isinstance(token, str) or not self.revocations.current():
            return None
        now = self._clock()
        verified = self.cache.get(token, now)
        if verified is None:
            return None
        return self._judge(verified, now)

    def _judge(self, verified: VerifiedToken, now: float) -> Inspection:
        """What may have changed since ``verified`` was verified: its task, revocations."""
        claims, task = verified.claims, verified.task
        if self.revocations.task_ended(task.id):
            return Inspection(None, TaskEnded(f"task `{task.id}` has ended"), claims, task)
        revoked = self.revocations.revoked(verified.chain)
        if revoked is not None:
            why = (
                "the token was revoked"
                if revoked == claims.jti
                else f"the token it was delegated from (`{revoked}`) was revoked"
            )
            return Inspection(None, TokenRevoked(why), claims, task)
        if now >= task.expires_at.timestamp() + LEEWAY_S:
            return Inspection(None, TaskExpired(f"task `{task.id}` has expired"), claims, task)
        return Inspection(verified, None, claims, task)

    def check(self, token: object) -> VerifiedToken:
        """:meth:`inspect`, raising the error.

        Raises:
            TokenRejected, IdentityProofError: the token is not (or no longer) valid.
            StoreUnavailable: the revocation state cannot be read.
        """
        inspection = self.inspect(token)
        if inspection.error is not None:
            raise inspection.error
        assert inspection.verified is not None
        return inspection.verified

    def _verify(self, token: object, now: float) -> VerifiedToken:
        self._key_watch.refresh()
        try:
            claims = self._claims(token, now)
        except TokenRejected as exc:
            if exc.code != "token_key_unknown" or not self._key_watch.refresh(force=True):
                raise
            claims = self._claims(token, now)  # a key rotated in by another process
        with self._engine.connect() as connection:
            record = ledger.load_token(connection, claims.jti)
            if (
                record is None
                or record.task_id != claims.task_id
                or record.identity_id != claims.subject
            ):
                raise _Known(
                    TokenUnknown(f"tether has no record of issuing token `{claims.jti}`"), claims
                )
            task = ledger.load_task(connection, claims.task_id)
        if task is None:
            raise _Known(TokenUnknown(f"task `{claims.task_id}` of the token is unknown"), claims)
        if task.status == ENDED:
            raise _Known(TaskEnded(f"task `{task.id}` has ended"), claims, task)
        if record.revoked_at is not None:
            raise _Known(TokenRevoked("the token was revoked"), claims, task)
        return VerifiedToken(claims, (*record.chain, claims.jti), task)

    def _claims(self, token: object, now: float) -> TaskTokenClaims:
        return verify_task_token(
            token, self._keys, issuer=self.issuer, audience=self.audience, now=now
        )

    def close(self) -> None:
        self.revocations.close()


class _Known(Exception):
    """A refusal after the signature verified: the claims (and task) are trustworthy."""

    def __init__(
        self, error: TetherError, claims: TaskTokenClaims, task: TaskRecord | None = None
    ) -> None:
        super().__init__(error.message)
        self.error = error
        self.claims = claims
        self.task = task
