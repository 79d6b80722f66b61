"""Mapping a verified workload to a tether identity (the estate's ``workload:`` field).

Three kinds of binding, from most to least specific:

* a SPIFFE ID, matched exactly against a verified JWT-SVID;
* ``{issuer, subject}``, matched exactly against ``iss``/``sub`` of a verified
  OIDC token (or the trust domain ID and SPIFFE ID of a JWT-SVID);
* ``{issuer, claims: {name: value}}``, where every named claim must equal its
  value, type included (``true`` never matches ``1``).

The most specific matching bindings decide. If they name different identities
the workload is ambiguous and refused; if none match it is unknown. Both are
errors the caller records: a valid proof alone grants nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tether.identity._spiffe_id import SpiffeId
from tether.identity._verified import VerifiedWorkload
from tether.identity.errors import (
    SpiffeIdInvalid,
    TrustConfigInvalid,
    UnknownWorkload,
    WorkloadAmbiguous,
    shown,
)

ClaimValue = str | int | bool


#: Keys of a ``workload`` that names a cloud principal instead of a proof.
CLOUD_PRINCIPALS = ("aws_role", "k8s_service_account", "gcp_service_account")


@dataclass(frozen=True)
class WorkloadBinding:
    """Binds one workload to the tether identity ``identity_id``; build with a ``for_*`` method."""

    identity_id: str
    spiffe_id: SpiffeId | None = None
    issuer: str | None = None
    subject: str | None = None
    claims: tuple[tuple[str, ClaimValue], ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.identity_id, str) or not self.identity_id:
            raise TrustConfigInvalid("a workload binding needs an identity id")
        by_spiffe = self.spiffe_id is not None
        by_issuer = self.issuer is not None
        if by_spiffe == by_issuer:
            raise TrustConfigInvalid(
                f"the binding of {shown(self.identity_id)} needs a SPIFFE ID or an issuer, not both"
            )
        if by_spiffe and (self.subject is not None or self.claims):
            raise TrustConfigInvalid(
                f"the binding of {shown(self.identity_id)} has a SPIFFE ID; it takes nothing else"
            )
        if by_issuer and (self.subject is None) == (not self.claims):
            raise TrustConfigInvalid(
                f"the binding of {shown(self.identity_id)} needs a `subject` or `claims` "
                "with its issuer, not both"
            )
        for name, value in self.claims:
            if not isinstance(name, str) or type(value) not in (str, int, bool):
                raise TrustConfigInvalid(
                    f"claim {shown(name)} of the binding of {shown(self.identity_id)} "
                    "must be a string, integer or boolean"
                )

    @classmethod
    def for_spiffe_id(cls, identity_id: str, spiffe_id: SpiffeId | str) -> WorkloadBinding:
        """Bind a SPIFFE ID, e.g. ``spiffe://example.org/agents/billing-bot``."""
        if isinstance(spiffe_id, str):
            try:
                spiffe_id = SpiffeId.parse(spiffe_id)
            except SpiffeIdInvalid as exc:
                raise TrustConfigInvalid(exc.message) from exc
        return cls(identity_id, spiffe_id=spiffe_id)

    @classmethod
    def for_subject(cls, identity_id: str, issuer: str, subject: str) -> WorkloadBinding:
        """Bind an OIDC ``iss`` and ``sub`` pair."""
        return cls(identity_id, issuer=issuer, subject=subject)

    @classmethod
    def for_claims(
        cls, identity_id: str, issuer: str, claims: Mapping[str, ClaimValue]
    ) -> WorkloadBinding:
        """Bind every token of ``issuer`` whose claims include all of ``claims``."""
        return cls(identity_id, issuer=issuer, claims=tuple(sorted(claims.items())))

    @staticmethod
    def proves(workload: str | Mapping[str, Any]) -> bool:
        """Whether ``workload`` is a proof tether verifies (not a cloud principal such as
        ``{aws_role: ...}``, which only attributes audit events)."""
        return isinstance(workload, str) or not any(k in workload for k in CLOUD_PRINCIPALS)

    @classmethod
    def from_workload(cls, identity_id: str, workload: str | Mapping[str, Any]) -> WorkloadBinding:
        """Read the estate's ``workload:`` value: a SPIFFE ID or ``{issuer, subject|claims}``.

        Raises:
            TrustConfigInvalid: the value is none of those.
        """
        if isinstance(workload, str):
            return cls.for_spiffe_id(identity_id, workload)
        unknown = sorted(set(workload) - {"issuer", "subject", "claims"})
        if unknown:
            raise TrustConfigInvalid(f"a workload binding has unknown key {shown(unknown[0])}")
        issuer, subject, claims = (
            workload.get("issuer"),
            workload.get("subject"),
            workload.get("claims"),
        )
        if not isinstance(issuer, str) or not issuer:
            raise TrustConfigInvalid("a workload binding needs an `issuer` string")
        if claims is not None:
            if not isinstance(claims, Mapping) or not claims or subject is not None:
                raise TrustConfigInvalid("`claims` must be a non-empty map, without `subject`")
            return cls.for_claims(identity_id, issuer, claims)
        if not isinstance(subject, str) or not subject:
            raise TrustConfigInvalid("a workload binding needs a `subject` or `claims`")
        return cls.for_subject(identity_id, issuer, subject)

    @property
    def specificity(self) -> int:
        """3 for a SPIFFE ID, 2 for issuer and subject, 1 for issuer and claims."""
        if self.spiffe_id is not None:
            return 3
        return 2 if self.subject is not None else 1

    def matches(self, workload: VerifiedWorkload) -> bool:
        """Whether this binding applies to ``workload``."""
        if self.spiffe_id is not None:
            return workload.kind == "spiffe" and workload.spiffe_id == self.spiffe_id
        if workload.issuer != self.issuer:
            return False
        if self.subject is not None:
            return workload.subject == self.subject
        return all(_same(workload.claims.get(name, _ABSENT), value) for name, value in self.claims)


_ABSENT = object()


def _same(actual: object, expected: ClaimValue) -> bool:
    return type(actual) is type(expected) and actual == expected


def resolve_identity(workload: VerifiedWorkload, bindings: Iterable[WorkloadBinding]) -> str:
    """The tether identity id bound to a verified workload.

    Raises:
        UnknownWorkload: no binding matches.
        WorkloadAmbiguous: the most specific matching bindings name different identities.
    """
    matches = [binding for binding in bindings if binding.matches(workload)]
    if not matches:
        raise UnknownWorkload(f"no identity is bound to workload {_describe(workload)}")
    best = max(binding.specificity for binding in matches)
    identities = sorted({b.identity_id for b in matches if b.specificity == best})
    if len(identities) > 1:
        raise WorkloadAmbiguous(
            f"workload {_describe(workload)} is bound to several identities: "
            + ", ".join(shown(identity) for identity in identities)
        )
    return identities[0]


def _describe(workload: VerifiedWorkload) -> str:
    if workload.spiffe_id is not None:
        return shown(str(workload.spiffe_id))
    return f"{shown(workload.subject)} of issuer {shown(workload.issuer)}"
