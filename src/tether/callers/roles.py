"""Caller roles (deny by default) and the authenticated caller."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    """What a caller of tether may do.

    * ``pep``: AuthZEN endpoints, token introspection, events about its own decisions
    * ``workload``: open and end its own tasks, exchange its proof for task tokens
    * ``ingest``: submit event batches
    * ``approver``: decide approvals (never its own requests)
    * ``auditor``: read everything, change nothing
    * ``admin``: estate, keys, trust, offboarding
    """

    PEP = "pep"
    WORKLOAD = "workload"
    INGEST = "ingest"
    APPROVER = "approver"
    AUDITOR = "auditor"
    ADMIN = "admin"


# A route open to everyone: only discovery documents, JWKS and /healthz may use it.
PUBLIC: frozenset[Role] = frozenset()


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: an identity of the inventory with its roles."""

    identity_id: str
    roles: frozenset[Role]
    credential: str  # api_key | jwt_svid | x509_svid | oidc | admin_token | workload_proof
    credential_id: str = ""  # key id, jti or a hash prefix: never the secret itself
    attributes: dict[str, str] = field(default_factory=dict)

    def has_any(self, roles: frozenset[Role]) -> bool:
        return bool(self.roles & roles)
