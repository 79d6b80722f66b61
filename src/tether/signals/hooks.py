"""CAEP events for what tether's token authority does: revocations and key rotations.

``tether.tokens`` does not import this package (dependencies point inward): the
authority exposes two optional callbacks, and :func:`attach` sets them.

* a task ends: ``session-revoked``, subject ``{"format": "opaque", "id": <task id>}``,
  ``txn`` the task id (the ``txn`` every token of the task carries);
* a token is revoked: one ``session-revoked`` per token revoked (it and the tokens
  delegated from it), subject the token's ``jti``, ``txn`` its task;
* the signing keys rotate: ``credential-change``, subject tether's issuer
  (``{"format": "uri"}``), ``credential_type`` ``jwk``, ``change_type`` ``create``, with
  the new ``kid`` as ``friendly_name``.

A failure to emit is logged and never undoes (or fails) the revocation itself.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from tether.signals.events import (
    CREDENTIAL_CHANGE,
    SESSION_REVOKED,
    credential_change,
    opaque,
    session_revoked,
)
from tether.signals.transmitter import Transmitter
from tether.tokens import SigningKey, TaskAuthority

log = logging.getLogger(__name__)


class TokenSignals:
    """The callbacks :class:`~tether.tokens.TaskAuthority` calls."""

    def __init__(self, transmitter: Transmitter) -> None:
        self._transmitter = transmitter

    def sessions_revoked(
        self, subjects: Sequence[str], task_id: str, actor: str, reason: str
    ) -> None:
        for subject in subjects:
            try:
                self._transmitter.emit(
                    SESSION_REVOKED,
                    opaque(subject),
                    session_revoked(
                        self._transmitter.now().timestamp(),
                        initiating_entity=_initiating(reason),
                        reason_admin=reason,
                    ),
                    txn=task_id,
                )
            except Exception:
                log.exception("emitting session-revoked for `%s` failed", subject)

    def keys_rotated(self, key: SigningKey) -> None:
        try:
            self._transmitter.emit(
                CREDENTIAL_CHANGE,
                {"format": "uri", "uri": self._transmitter.issuer},
                credential_change(
                    key.created_at.timestamp(),
                    credential_type="jwk",
                    change_type="create",
                    friendly_name=key.kid,
                    initiating_entity="admin",
                    reason_admin=f"signing key rotated; new key `{key.kid}` ({key.alg})",
                ),
            )
        except Exception:
            log.exception("emitting credential-change for key `%s` failed", key.kid)


def _initiating(reason: str) -> str | None:
    """CAEP ``initiating_entity`` when the reason tells it: a policy (drift response,
    offboarding); otherwise left out (who acted is in the audit log)."""
    lowered = reason.lower()
    if any(word in lowered for word in ("drift", "policy", "offboard", "finding")):
        return "policy"
    return None


def attach(authority: TaskAuthority, transmitter: Transmitter) -> TokenSignals:
    """Make ``authority`` emit CAEP events through ``transmitter``."""
    signals = TokenSignals(transmitter)
    authority.on_sessions_revoked = signals.sessions_revoked
    authority.on_keys_rotated = signals.keys_rotated
    return signals
