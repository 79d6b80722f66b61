"""Workloads proving themselves: a verified proof, bound to an active identity, or refused.

A proof that does not verify is refused with the identity library's code and nothing
is written (anyone can send garbage). A proof that verifies but binds no identity (or
several), or binds an identity that is not active, is refused *and recorded* in the
audit log as ``workload.refused``: a trusted domain's workload that tether does not know
is worth someone's attention.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from tether.errors import Forbidden, TetherError
from tether.identity import UnknownWorkload, VerifiedWorkload
from tether.identity.errors import WorkloadAmbiguous
from tether.tokens import ledger
from tether.tokens.trust import BoundIdentity, WorkloadTrust, describe_workload


@dataclass(frozen=True)
class Workload:
    """A workload that proved itself and the identity it is bound to."""

    proof: VerifiedWorkload
    identity: BoundIdentity

    @property
    def name(self) -> str:
        return describe_workload(self.proof)


def authenticate_workload(
    trust: WorkloadTrust, engine: Engine, proof: str, *, attempt: str, now: datetime
) -> Workload:
    """Verify a workload proof and find its active identity.

    Args:
        attempt: what the workload was trying (``task.open``, ``token.issue``...), recorded
            with a refusal.

    Raises:
        IdentityProofError: the proof does not verify, or binds no (or several) identities.
        Forbidden: the identity is not active.
    """
    verified = trust.verify(proof, now=now)
    try:
        identity = trust.identify(verified)
    except (UnknownWorkload, WorkloadAmbiguous) as exc:
        _record_refusal(engine, verified, exc, attempt, now)
        raise
    if identity.status != "active":
        error = Forbidden(
            f"identity `{identity.id}` is {identity.status}; it cannot open tasks or "
            "receive tokens",
            code="identity_inactive",
        )
        _record_refusal(engine, verified, error, attempt, now)
        raise error
    return Workload(verified, identity)


def _record_refusal(
    engine: Engine, workload: VerifiedWorkload, error: TetherError, attempt: str, now: datetime
) -> None:
    name = describe_workload(workload)
    with engine.begin() as connection:
        ledger.record_event(
            connection,
            actor=name,
            action="workload.refused",
            target=name,
            details={
                "error_code": error.code,
                "attempt": attempt,
                "issuer": workload.issuer,
                "subject": workload.subject,
                "proof": workload.token_id,
            },
            at=now,
        )
