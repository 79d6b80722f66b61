"""Principal resolution: which estate identity a raw principal from telemetry is.

A :class:`PrincipalRule` maps principals to an identity id by one of six matches:

=======================  ===============================================================
``key``                  the principal key, exactly (an ARN, a username, an email, an id)
``glob``                 a shell-style pattern on the key or an ARN or email attribute
``aws_role``             an IAM role ARN: every session of the role matches (the role's
                         path is ignored, as STS session ARNs drop it), and EKS users
                         authenticated through the role too
``k8s_service_account``  ``namespace/name`` of a Kubernetes service account
``gcp_email``            a GCP principal's email, case-insensitively
``agent``                a GenAI agent id (``gen_ai.agent.id``)
=======================  ===============================================================

Exact matches (every kind but ``glob``) win over globs; among matches of one tier the
first rule given wins. A principal no rule matches is *discovered, unmanaged*: the
caller records it with :func:`discovered_identity`.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from tether.telemetry.arn import role_identity, role_of_session
from tether.telemetry.errors import PrincipalRuleInvalid
from tether.telemetry.model import PrincipalKind, RawPrincipal, Source

# Attributes a glob is tried on besides the key.
_GLOB_ATTRIBUTES = ("arn", "role_arn", "session_arn", "aws_arn", "email")


class MatchBy(StrEnum):
    """How a :class:`PrincipalRule` compares its pattern with a principal."""

    KEY = "key"
    GLOB = "glob"
    AWS_ROLE = "aws_role"
    K8S_SERVICE_ACCOUNT = "k8s_service_account"
    GCP_EMAIL = "gcp_email"
    AGENT = "agent"


@dataclass(frozen=True, slots=True)
class PrincipalRule:
    """Principals matching ``pattern`` (compared as ``by`` says) are identity ``identity_id``.

    Raises:
        PrincipalRuleInvalid: the pattern cannot be what ``by`` expects.
    """

    identity_id: str
    by: MatchBy
    pattern: str

    def __post_init__(self) -> None:
        if not self.identity_id:
            raise PrincipalRuleInvalid("a principal rule needs an identity id")
        if not self.pattern:
            raise PrincipalRuleInvalid(f"the `{self.by}` rule for `{self.identity_id}` is empty")
        if self.by is MatchBy.AWS_ROLE and role_identity(self.pattern) is None:
            raise PrincipalRuleInvalid(
                f"`{self.pattern}` is not an IAM role ARN (`arn:aws:iam::ACCOUNT:role/NAME`)"
            )
        if self.by is MatchBy.K8S_SERVICE_ACCOUNT and not _is_namespaced_name(self.pattern):
            raise PrincipalRuleInvalid(f"`{self.pattern}` is not a `namespace/name` pair")
        if self.by is MatchBy.GCP_EMAIL and "@" not in self.pattern:
            raise PrincipalRuleInvalid(f"`{self.pattern}` is not an email address")

    @classmethod
    def by_key(cls, identity_id: str, key: str) -> PrincipalRule:
        return cls(identity_id, MatchBy.KEY, key)

    @classmethod
    def by_glob(cls, identity_id: str, pattern: str) -> PrincipalRule:
        return cls(identity_id, MatchBy.GLOB, pattern)

    @classmethod
    def by_role_arn(cls, identity_id: str, role_arn: str) -> PrincipalRule:
        return cls(identity_id, MatchBy.AWS_ROLE, role_arn)

    @classmethod
    def by_service_account(cls, identity_id: str, namespaced_name: str) -> PrincipalRule:
        return cls(identity_id, MatchBy.K8S_SERVICE_ACCOUNT, namespaced_name)

    @classmethod
    def by_gcp_email(cls, identity_id: str, email: str) -> PrincipalRule:
        return cls(identity_id, MatchBy.GCP_EMAIL, email)

    @classmethod
    def by_agent_id(cls, identity_id: str, agent_id: str) -> PrincipalRule:
        return cls(identity_id, MatchBy.AGENT, agent_id)


def _is_namespaced_name(value: str) -> bool:
    namespace, slash, name = value.partition("/")
    return bool(namespace and slash and name and "/" not in name)


class PrincipalResolver:
    """Rules indexed once, for resolving a stream of principals quickly."""

    def __init__(self, rules: Iterable[PrincipalRule]) -> None:
        self._keys: dict[str, str] = {}
        self._roles: dict[tuple[str, str], str] = {}
        self._service_accounts: dict[str, str] = {}
        self._emails: dict[str, str] = {}
        self._agents: dict[str, str] = {}
        self._globs: list[tuple[re.Pattern[str], str]] = []
        for rule in rules:
            if rule.by is MatchBy.KEY:
                self._keys.setdefault(rule.pattern, rule.identity_id)
            elif rule.by is MatchBy.AWS_ROLE:
                role = role_identity(rule.pattern)
                if role is not None:
                    self._roles.setdefault(role, rule.identity_id)
            elif rule.by is MatchBy.K8S_SERVICE_ACCOUNT:
                self._service_accounts.setdefault(rule.pattern, rule.identity_id)
            elif rule.by is MatchBy.GCP_EMAIL:
                self._emails.setdefault(rule.pattern.lower(), rule.identity_id)
            elif rule.by is MatchBy.AGENT:
                self._agents.setdefault(rule.pattern, rule.identity_id)
            else:
                compiled = re.compile(fnmatch.translate(rule.pattern))
                self._globs.append((compiled, rule.identity_id))

    def resolve(self, principal: RawPrincipal) -> str | None:
        """The identity id of ``principal``, or None when no rule matches (or it is unknown)."""
        if principal.is_unknown:
            return None
        found = self._keys.get(principal.key) or self._exact(principal)
        if found is not None:
            return found
        candidates = [principal.key]
        candidates += [
            principal.attributes[a] for a in _GLOB_ATTRIBUTES if a in principal.attributes
        ]
        for pattern, identity_id in self._globs:
            if any(pattern.match(candidate) for candidate in candidates):
                return identity_id
        return None

    def _exact(self, principal: RawPrincipal) -> str | None:
        kind = principal.kind
        attributes = principal.attributes
        if kind == PrincipalKind.K8S_SERVICE_ACCOUNT:
            namespaced = f"{attributes.get('namespace')}/{attributes.get('name')}"
            return self._service_accounts.get(namespaced)
        if kind in (PrincipalKind.GCP_SERVICE_ACCOUNT, PrincipalKind.GCP_USER):
            return self._emails.get(principal.key.lower())
        if kind == PrincipalKind.AGENT:
            return self._agents.get(principal.key)
        if kind == PrincipalKind.AWS_ASSUMED_ROLE:
            return self._role(principal.key)
        if kind == PrincipalKind.K8S_USER:
            return self._role(attributes.get("aws_arn"))
        return None

    def _role(self, arn: str | None) -> str | None:
        if not arn or not self._roles:
            return None
        role = role_identity(role_of_session(arn) or arn)
        return self._roles.get(role) if role else None


def resolve(
    principal: RawPrincipal, rules: Sequence[PrincipalRule] | PrincipalResolver
) -> str | None:
    """The identity id ``rules`` give ``principal``, or None (then it is discovered, unmanaged).

    Pass a :class:`PrincipalResolver` when resolving many principals against one rule set.
    """
    resolver = rules if isinstance(rules, PrincipalResolver) else PrincipalResolver(rules)
    return resolver.resolve(principal)


# Estate identity kinds (see DESIGN.md, estate as code) a principal kind suggests.
_ESTATE_KINDS: dict[str, str] = {
    PrincipalKind.AGENT: "agent",
    PrincipalKind.AWS_ASSUMED_ROLE: "workload",
    PrincipalKind.AWS_IAM_USER: "service_account",
    PrincipalKind.AWS_SERVICE: "workload",
    PrincipalKind.AWS_ROOT: "user",
    PrincipalKind.AWS_FEDERATED_USER: "user",
    PrincipalKind.K8S_SERVICE_ACCOUNT: "service_account",
    PrincipalKind.K8S_USER: "user",
    PrincipalKind.GCP_SERVICE_ACCOUNT: "service_account",
    PrincipalKind.GCP_USER: "user",
    PrincipalKind.AZURE_USER: "user",
    PrincipalKind.AZURE_SERVICE_PRINCIPAL: "service_account",
    PrincipalKind.OPENAI_USER: "user",
    PrincipalKind.OPENAI_API_KEY: "api_key",
    PrincipalKind.OPENAI_SERVICE_ACCOUNT: "service_account",
    PrincipalKind.ANTHROPIC_USER: "user",
    PrincipalKind.ANTHROPIC_API_KEY: "api_key",
    PrincipalKind.OTEL_SERVICE: "workload",
}


def discovered_identity(
    principal: RawPrincipal,
    *,
    source: Source | str | None = None,
    first_seen: datetime | None = None,
) -> dict[str, Any]:
    """What to record for a principal no rule resolves: a discovered, unmanaged identity.

    The suggested ``id`` is readable (``aws-role-billing``, ``k8s-payments-worker``) and
    may collide across accounts or clusters; the caller keeps it unique. ``kind`` is the
    estate identity kind the principal most likely is; a reviewer confirms it.
    """
    kind = _ESTATE_KINDS.get(principal.kind, "workload")
    if principal.kind == PrincipalKind.K8S_USER and principal.key.startswith("system:"):
        kind = "workload"  # nodes, controllers and other control-plane components
    return {
        "id": suggested_id(principal),
        "kind": kind,
        "source": str(source) if source is not None else None,
        "first_seen": first_seen.isoformat() if first_seen is not None else None,
        "principal_kind": principal.kind,
        "principal_key": principal.key,
        "display_name": principal.display_name or principal.key,
        "attributes": dict(principal.attributes),
        "managed": False,
    }


def suggested_id(principal: RawPrincipal) -> str:
    """A readable identity id for ``principal`` (lowercase letters, digits and ``-``)."""
    attributes = principal.attributes
    kind = principal.kind
    if kind == PrincipalKind.AWS_ASSUMED_ROLE:
        name = f"aws-role-{attributes.get('role_name') or principal.key.rsplit('/', 1)[-1]}"
    elif kind == PrincipalKind.AWS_IAM_USER:
        name = f"aws-user-{attributes.get('user_name') or principal.key.rsplit('/', 1)[-1]}"
    elif kind == PrincipalKind.K8S_SERVICE_ACCOUNT:
        name = f"k8s-{attributes.get('namespace')}-{attributes.get('name')}"
    elif kind in (PrincipalKind.GCP_SERVICE_ACCOUNT, PrincipalKind.GCP_USER):
        name = f"gcp-{principal.key.partition('@')[0]}"
    elif kind == PrincipalKind.AGENT:
        name = principal.key
    else:
        family = kind.partition(":")[0]
        name = f"{family}-{principal.display_name or principal.key}"
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:63].rstrip("-") or "discovered"
