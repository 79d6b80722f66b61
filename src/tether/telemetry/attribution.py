"""Attribution at ingest: estate identities by principal rules, the rest discovered.

Until the estate expresses principal rules of its own, they are read from the
``identities`` table: an identity's ``workload`` (a SPIFFE ID, or ``issuer``/``subject``)
a cloud principal ``{aws_role | k8s_service_account | gcp_service_account: ...}``, and its
``principals: [...]`` attribute each become a rule. A principal pattern is read
by its shape: an IAM role ARN matches every session of the role, ``system:serviceaccount:
NS:NAME`` or ``serviceaccount:NS/NAME`` a Kubernetes service account, an email a GCP
principal, ``agent:ID`` a GenAI agent id, a pattern with ``*`` a glob, anything else the
principal key exactly. A principal no rule matches becomes a *discovered* identity
(``origin = discovered``) the first time it is seen; estate rows are never touched.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select

from tether.store.tables import identities
from tether.telemetry.arn import role_identity
from tether.telemetry.errors import PrincipalRuleInvalid
from tether.telemetry.model import ObservedAccess
from tether.telemetry.resolve import PrincipalResolver, PrincipalRule, discovered_identity

DISCOVERED = "discovered"
# What of a principal resolution reads besides kind and key (see PrincipalResolver).
_RESOLVED_BY = ("namespace", "name", "arn", "role_arn", "session_arn", "aws_arn", "email")
_CACHE_LIMIT = 1 << 16


def rules_for(identity_id: str, pattern: str) -> Iterator[PrincipalRule]:
    """The principal rules one pattern of an identity stands for (see the module doc)."""
    try:
        if "*" in pattern or "?" in pattern:
            yield PrincipalRule.by_glob(identity_id, pattern)
            return
        if pattern.startswith("arn:") and role_identity(pattern) is not None:
            yield PrincipalRule.by_role_arn(identity_id, pattern)
        elif pattern.startswith("system:serviceaccount:"):
            namespace, _, name = pattern.removeprefix("system:serviceaccount:").partition(":")
            yield PrincipalRule.by_service_account(identity_id, f"{namespace}/{name}")
        elif pattern.startswith("serviceaccount:"):
            yield PrincipalRule.by_service_account(identity_id, pattern.split(":", 1)[1])
        elif pattern.startswith("agent:"):
            yield PrincipalRule.by_agent_id(identity_id, pattern.split(":", 1)[1])
        elif "@" in pattern:
            yield PrincipalRule.by_gcp_email(identity_id, pattern)
        yield PrincipalRule.by_key(identity_id, pattern)
    except PrincipalRuleInvalid:
        return  # an identity attribute that is no principal pattern matches nothing


def cloud_patterns(workload: Mapping[str, Any]) -> Iterator[str]:
    """The principal patterns of a cloud ``workload`` (``{aws_role: ...}``, ...)."""
    role = workload.get("aws_role")
    if isinstance(role, str) and role:
        # A bare role name is that role in any account (the estate did not say which).
        yield role if role.startswith("arn:") else f"arn:*:iam::*:role/{role}"
    account = workload.get("k8s_service_account")
    if isinstance(account, str) and account:
        yield f"serviceaccount:{account}"
    email = workload.get("gcp_service_account")
    if isinstance(email, str) and email:
        yield email


def _patterns(workload: Any, attributes: Mapping[str, Any]) -> Iterator[str]:
    if isinstance(workload, str) and workload:
        yield workload
    elif isinstance(workload, Mapping):
        subject = workload.get("subject")
        if isinstance(subject, str) and subject:
            yield subject
        yield from cloud_patterns(workload)
    principals = attributes.get("principals")
    if isinstance(principals, str):
        principals = [principals]
    if isinstance(principals, list):
        yield from (p for p in principals if isinstance(p, str) and p)


class Attributor:
    """Resolves principals to identity ids, creating discovered identities as needed.

    Built from the ``identities`` table once per ingest; :meth:`attribute` is pure
    in-memory work, :meth:`take_new` hands over the discovered rows to insert.
    """

    def __init__(self, connection: Connection) -> None:
        rules: list[PrincipalRule] = []
        self._known_ids: set[str] = set()
        self._discovered: dict[tuple[str, str], str] = {}
        query = select(
            identities.c.id, identities.c.origin, identities.c.workload, identities.c.attributes
        )
        for identity_id, origin, workload, attributes in connection.execute(query):
            self._known_ids.add(identity_id)
            attributes = attributes if isinstance(attributes, Mapping) else {}
            if origin == DISCOVERED:
                kind, key = attributes.get("principal_kind"), attributes.get("principal_key")
                if isinstance(kind, str) and isinstance(key, str):
                    self._discovered[(kind, key)] = identity_id
                continue
            for pattern in _patterns(workload, attributes):
                rules.extend(rules_for(identity_id, pattern))
        self._resolver = PrincipalResolver(rules)
        # Keyed by what resolution reads, not by the principal: principals of one role
        # differ only in session attributes and share a hash, so a dict keyed by them
        # degrades to a linear scan of every session seen.
        self._cache: dict[tuple[str | None, ...], str | None] = {}
        self._new: list[dict[str, Any]] = []

    def attribute(self, event: ObservedAccess) -> str | None:
        """The identity id of ``event``'s principal (None only when the source named nobody)."""
        if event.identity_id is not None:
            return event.identity_id
        principal = event.principal
        attributes = principal.attributes
        cache_key = (principal.kind, principal.key, *map(attributes.get, _RESOLVED_BY))
        try:
            return self._cache[cache_key]
        except KeyError:
            pass
        found = self._resolver.resolve(principal)
        if found is None and not principal.is_unknown:
            found = self._discovered.get((principal.kind, principal.key))
            if found is None:
                found = self._discover(event)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()  # bounded memory on endless distinct sessions
        self._cache[cache_key] = found
        return found

    def _discover(self, event: ObservedAccess) -> str:
        principal = event.principal
        found = discovered_identity(principal, source=event.source, first_seen=event.at)
        identity_id = str(found["id"])
        if identity_id in self._known_ids:
            # Readable ids collide across accounts and clusters: keep them apart.
            digest = hashlib.sha256(f"{principal.kind}\n{principal.key}".encode()).hexdigest()
            identity_id = f"{identity_id[:54]}-{digest[:8]}"
        self._known_ids.add(identity_id)
        self._discovered[(principal.kind, principal.key)] = identity_id
        now = datetime.now(UTC)
        attributes = {
            key: found[key]
            for key in ("source", "first_seen", "principal_kind", "principal_key", "display_name")
        }
        attributes["principal_attributes"] = found["attributes"]
        attributes["managed"] = False
        self._new.append(
            {
                "id": identity_id,
                "kind": found["kind"],
                "workload_class": None,
                "owner": None,
                "workload": None,
                "attributes": attributes,
                "status": "active",
                "origin": DISCOVERED,
                "created_at": now,
                "updated_at": now,
                "last_used_at": event.at,
            }
        )
        return identity_id

    def take_new(self) -> list[dict[str, Any]]:
        """The discovered identities found since the last call (to insert)."""
        new, self._new = self._new, []
        return new

    def forget(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Undo :meth:`take_new` rows that were not stored (their batch rolled back)."""
        for row in rows:
            attributes = row["attributes"]
            self._discovered.pop((attributes["principal_kind"], attributes["principal_key"]), None)
            self._known_ids.discard(row["id"])
        self._cache.clear()
