"""Who may call tether, as the store says: an in-memory snapshot, refreshed within 1 s.

The snapshot holds what authentication needs and nothing more: active API keys (salted
hashes), every identity's kind, status and tether roles, the workload bindings (the
estate's ``workload:``) and the trust anchors. :meth:`CallerDirectory.refresh` compares a
cheap fingerprint of the tables with the last one and reloads only on a change; the
service calls it every reload interval, so a revoked key or a removed role stops working
within that interval (500 ms by default). Every reload bumps ``generation``, which the
authenticator's caches check.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, select

from tether.callers.roles import Role
from tether.callers.trust import spiffe_trust_domains, trust_store_from_anchors
from tether.identity import HttpxJwksFetcher, TrustConfigInvalid, TrustStore, WorkloadBinding
from tether.store.caller_tables import api_keys, caller_roles
from tether.store.tables import estate_revisions, identities, trust_anchors

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredKey:
    """An active API key as the store keeps it: never the secret."""

    key_id: str
    identity_id: str
    salt: str
    secret_hash: str


@dataclass(frozen=True)
class CallerRecord:
    """An identity of the inventory, as far as calling tether goes."""

    identity_id: str
    kind: str
    status: str
    roles: frozenset[Role]

    @property
    def active(self) -> bool:
        return self.status == "active"


@dataclass(frozen=True)
class DirectorySnapshot:
    generation: int
    keys: Mapping[str, StoredKey]
    identities: Mapping[str, CallerRecord]
    bindings: tuple[WorkloadBinding, ...]
    spiffe_ids: Mapping[str, str]  # SPIFFE ID -> identity id
    trust: TrustStore
    spiffe_domains: frozenset[str]  # trust domain names, e.g. `example.org`


def parse_roles(values: Any) -> frozenset[Role]:
    """Roles from a stored list; values this version does not know are ignored."""
    known = {r.value for r in Role}
    return frozenset(Role(v) for v in values or () if v in known)


class CallerDirectory:
    """The store's callers, cached in memory; safe to share across threads."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._snapshot: DirectorySnapshot | None = None
        self._fingerprint: tuple[Any, ...] | None = None
        self._fetcher: HttpxJwksFetcher | None = None

    @property
    def snapshot(self) -> DirectorySnapshot:
        snapshot = self._snapshot
        if snapshot is None:
            self.refresh()
            snapshot = self._snapshot
            assert snapshot is not None
        return snapshot

    def refresh(self, *, force: bool = False) -> bool:
        """Reload if the caller tables changed since the last load; ``True`` if it did."""
        with self._lock:
            with self._engine.connect() as connection:
                anchors = [dict(r) for r in connection.execute(select(trust_anchors)).mappings()]
                # Anchor contents too: `tether trust add` may replace a bundle in place.
                fingerprint = (*connection.execute(_FINGERPRINT).one(), _digest(anchors))
                if not force and self._snapshot is not None and fingerprint == self._fingerprint:
                    return False
                snapshot = self._load(connection, anchors)
            self._snapshot = snapshot
            self._fingerprint = fingerprint
        log.debug("caller directory reloaded (generation %s)", snapshot.generation)
        return True

    def close(self) -> None:
        if self._fetcher is not None:
            self._fetcher.close()

    def _load(self, connection: Any, anchors: list[dict[str, Any]]) -> DirectorySnapshot:
        roles = {
            r.identity_id: parse_roles(r.roles)
            for r in connection.execute(select(caller_roles.c.identity_id, caller_roles.c.roles))
        }
        records: dict[str, CallerRecord] = {}
        bindings: list[WorkloadBinding] = []
        spiffe_ids: dict[str, str] = {}
        rows = connection.execute(
            select(identities.c.id, identities.c.kind, identities.c.status, identities.c.workload)
        )
        for row in rows:
            records[row.id] = CallerRecord(
                row.id, row.kind, row.status, roles.get(row.id, frozenset())
            )
            if row.workload and WorkloadBinding.proves(row.workload):
                try:
                    binding = WorkloadBinding.from_workload(row.id, row.workload)
                except TrustConfigInvalid as exc:
                    log.warning("workload of identity `%s` is not usable: %s", row.id, exc.message)
                    continue
                bindings.append(binding)
                if binding.spiffe_id is not None:
                    spiffe_ids[str(binding.spiffe_id)] = row.id
        keys = {
            r.key_id: StoredKey(r.key_id, r.identity_id, r.salt, r.secret_hash)
            for r in connection.execute(select(api_keys).where(api_keys.c.revoked_at.is_(None)))
        }
        if self._fetcher is None and any(
            (a["settings"] or {}).get("jwks_uri") and not (a["settings"] or {}).get("jwks")
            for a in anchors
        ):
            self._fetcher = HttpxJwksFetcher()
        previous = self._snapshot.generation if self._snapshot is not None else 0
        return DirectorySnapshot(
            generation=previous + 1,
            keys=keys,
            identities=records,
            bindings=tuple(bindings),
            spiffe_ids=spiffe_ids,
            trust=trust_store_from_anchors(anchors, fetcher=self._fetcher),
            spiffe_domains=spiffe_trust_domains(anchors),
        )


def _digest(anchors: list[dict[str, Any]]) -> str:
    rows = sorted(([a["name"], a["kind"], a["settings"]] for a in anchors), key=lambda a: a[0])
    return hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()


def _scalar(expression: Any) -> Any:
    return expression.scalar_subquery()


# What changes when a caller is added, revoked, re-roled, disabled or the estate is applied.
_FINGERPRINT = select(
    _scalar(select(func.max(estate_revisions.c.revision))),
    _scalar(select(func.count()).select_from(api_keys)),
    _scalar(select(func.count(api_keys.c.revoked_at))),
    _scalar(select(func.count()).select_from(caller_roles)),
    _scalar(select(func.max(caller_roles.c.updated_at))),
    _scalar(select(func.count()).select_from(identities)),
    _scalar(select(func.max(identities.c.updated_at))),
)
