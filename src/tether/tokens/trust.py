"""Who may prove workload identity, as the store says: trust anchors and workload bindings.

The estate's ``trust:`` entries (and ``tether trust add``) are rows of ``trust_anchors``;
a SPIFFE anchor keeps its JWKS bundle inline (``settings["jwks"]``), an OIDC anchor its
JWKS or a ``jwks_uri``. :func:`trust_store_from_rows` builds a
:class:`~tether.identity.TrustStore` from them, leaving out (and reporting) an anchor
it cannot use rather than trusting it half-way. Identities bind workloads with their
``workload:`` field (:class:`~tether.identity.WorkloadBinding`).

:class:`WorkloadTrust` keeps both in memory and rebuilds them when the rows change: at
most every ``refresh_interval_s`` it compares a fingerprint of the tables, so a rotated
bundle, a new anchor or a new identity is used within that interval, without a restart.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from tether.identity import (
    HttpxJwksFetcher,
    JwksFetcher,
    TrustConfigInvalid,
    TrustStore,
    VerifiedWorkload,
    WorkloadBinding,
    resolve_identity,
    verify_workload_proof,
)
from tether.store.record_chain import append_audit
from tether.store.tables import identities, trust_anchors

log = logging.getLogger(__name__)

SPIFFE = "spiffe"
OIDC = "oidc"


def add_anchor(store: TrustStore, kind: str, name: str, settings: Mapping[str, Any]) -> None:
    """Trust one anchor row in ``store``.

    Raises:
        TrustConfigInvalid: the anchor cannot be used (says why).
    """
    require_kid = settings.get("require_kid", True)
    if not isinstance(require_kid, bool):
        raise TrustConfigInvalid(f"`require_kid` of trust anchor `{name}` must be true or false")
    audience = settings.get("audience")
    if kind == SPIFFE:
        if settings.get("jwks") is None:
            raise TrustConfigInvalid(f"SPIFFE trust anchor `{name}` has no JWKS bundle")
        store.add_spiffe_domain(name, settings["jwks"], audience=audience, require_kid=require_kid)
    elif kind == OIDC:
        if settings.get("jwks") is not None:
            store.add_oidc_issuer(
                name, jwks=settings["jwks"], audience=audience, require_kid=require_kid
            )
        elif settings.get("jwks_uri"):
            store.add_oidc_issuer(
                name, jwks_uri=settings["jwks_uri"], audience=audience, require_kid=require_kid
            )
        else:
            raise TrustConfigInvalid(f"OIDC trust anchor `{name}` has no JWKS and no `jwks_uri`")
    else:
        raise TrustConfigInvalid(f"trust anchor `{name}` has unknown kind `{kind}`")


def trust_store_from_rows(
    rows: Iterable[Mapping[str, Any]], *, fetcher: JwksFetcher | None = None
) -> tuple[TrustStore, list[str]]:
    """A trust store of every usable anchor row, and a problem for each unusable one."""
    store = TrustStore(fetcher=fetcher)
    problems: list[str] = []
    for row in rows:
        try:
            add_anchor(store, row["kind"], row["name"], row["settings"] or {})
        except TrustConfigInvalid as exc:
            problems.append(f"trust anchor `{row['name']}` is not used: {exc.message}")
    return store, problems


@dataclass(frozen=True)
class BoundIdentity:
    """An identity a verified workload maps to."""

    id: str
    kind: str
    workload_class: str | None
    status: str


@dataclass(frozen=True)
class TrustView:
    """One consistent load of anchors, bindings and identities."""

    store: TrustStore
    bindings: tuple[WorkloadBinding, ...]
    identities: Mapping[str, BoundIdentity]
    problems: tuple[str, ...] = ()
    fingerprint: str = field(default="", compare=False)


class WorkloadTrust:
    """Verifies workload proofs against the store's anchors and maps them to identities.

    Args:
        engine: the store.
        audience: tether's audience (an anchor's own ``audience`` wins).
        refresh_interval_s: how stale the anchors and bindings may be.
        clock: monotonic seconds.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        audience: str,
        refresh_interval_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self.audience = audience
        self._interval = refresh_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._view: TrustView | None = None
        self._checked = float("-inf")
        self._expiries = 0  # change notices so far: one during a refresh is not lost
        self._fetcher: HttpxJwksFetcher | None = None

    def view(self) -> TrustView:
        """The current anchors and bindings, reloaded if they changed."""
        view = self._view
        if view is not None and self._clock() - self._checked < self._interval:
            return view
        return self.refresh()

    def expire(self) -> None:
        """Check the anchors and bindings at the next use (a change notice said so)."""
        self._expiries += 1
        self._checked = float("-inf")

    def refresh(self, *, force: bool = False) -> TrustView:
        with self._lock:
            view = self._view
            if not force and view is not None and self._clock() - self._checked < self._interval:
                return view  # refreshed by the thread this one waited for
            expiries, started = self._expiries, self._clock()
            with self._engine.connect() as connection:
                anchors = [dict(r) for r in connection.execute(select(trust_anchors)).mappings()]
                fingerprint = _fingerprint(connection, anchors)
                view = self._view
                if force or view is None or view.fingerprint != fingerprint:
                    view = self._load(connection, anchors, fingerprint)
                    self._view = view
            if self._expiries == expiries:  # else a notice came meanwhile: check again
                self._checked = started
        return view

    def _load(
        self, connection: Connection, anchors: list[dict[str, Any]], fingerprint: str
    ) -> TrustView:
        if self._fetcher is None and any((a["settings"] or {}).get("jwks_uri") for a in anchors):
            self._fetcher = HttpxJwksFetcher()
        store, problems = trust_store_from_rows(anchors, fetcher=self._fetcher)
        for problem in problems:
            log.warning("%s", problem)
        bindings: list[WorkloadBinding] = []
        known: dict[str, BoundIdentity] = {}
        rows = connection.execute(
            select(
                identities.c.id,
                identities.c.kind,
                identities.c.workload_class,
                identities.c.status,
                identities.c.workload,
            ).where(identities.c.workload.is_not(None))
        )
        for row in rows:
            if not row.workload or not WorkloadBinding.proves(row.workload):
                continue
            try:
                bindings.append(WorkloadBinding.from_workload(row.id, row.workload))
            except TrustConfigInvalid as exc:
                log.warning("workload of identity `%s` is not usable: %s", row.id, exc.message)
                continue
            known[row.id] = BoundIdentity(row.id, row.kind, row.workload_class, row.status)
        return TrustView(store, tuple(bindings), known, tuple(problems), fingerprint)

    def verify(self, token: str, *, now: datetime | None = None) -> VerifiedWorkload:
        """Verify a JWT-SVID or OIDC workload token.

        Raises:
            IdentityProofError: the subclass and ``code`` name the failing check.
        """
        return verify_workload_proof(token, self.view().store, audience=self.audience, now=now)

    def identify(self, workload: VerifiedWorkload) -> BoundIdentity:
        """The identity a verified workload is bound to.

        Raises:
            UnknownWorkload: no identity binds it.
            WorkloadAmbiguous: several do.
        """
        view = self.view()
        return view.identities[resolve_identity(workload, view.bindings)]

    def close(self) -> None:
        if self._fetcher is not None:
            self._fetcher.close()
            self._fetcher = None


def _fingerprint(connection: Connection, anchors: list[dict[str, Any]]) -> str:
    count, updated = connection.execute(
        select(func.count(), func.max(identities.c.updated_at)).select_from(identities)
    ).one()
    canonical = json.dumps(
        {
            "anchors": sorted(
                ([a["name"], a["kind"], a["settings"]] for a in anchors), key=lambda a: a[0]
            ),
            "identities": [count, str(updated)],
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def describe_workload(workload: VerifiedWorkload) -> str:
    """How events name a workload: its SPIFFE ID, or issuer and subject."""
    if workload.spiffe_id is not None:
        return str(workload.spiffe_id)
    return f"{workload.issuer} {workload.subject}"


# --- trust anchors made from the command line (origin `cli`) -------------------------------

CLI_ORIGIN = "cli"


def anchor_kind(name: str) -> str:
    """``spiffe`` for a trust domain ID (``spiffe://...``), else ``oidc`` (an issuer URL)."""
    return SPIFFE if name.lower().startswith("spiffe://") else OIDC


def list_trust_anchors(engine: Engine) -> list[dict[str, Any]]:
    """Every anchor with its origin, audience, key count and whether tether can use it."""
    with engine.connect() as connection:
        rows = [
            dict(r)
            for r in connection.execute(
                select(trust_anchors).order_by(trust_anchors.c.name)
            ).mappings()
        ]
    listed: list[dict[str, Any]] = []
    for row in rows:
        settings = row["settings"] or {}
        problem = None
        try:
            add_anchor(TrustStore(), row["kind"], row["name"], settings)
        except TrustConfigInvalid as exc:
            problem = exc.message
        jwks = settings.get("jwks") or {}
        listed.append(
            {
                "name": row["name"],
                "kind": row["kind"],
                "origin": row["origin"],
                "audience": settings.get("audience"),
                "require_kid": settings.get("require_kid", True),
                "keys": len(jwks.get("keys", [])) if isinstance(jwks, dict) else 0,
                "jwks_uri": settings.get("jwks_uri"),
                "usable": problem is None,
                "problem": problem,
            }
        )
    return listed


def add_trust_anchor(
    engine: Engine,
    name: str,
    settings: Mapping[str, Any],
    *,
    actor: str,
    now: datetime,
) -> str:
    """Trust an anchor (or replace one made the same way: a bundle rotation); the kind.

    Raises:
        TrustConfigInvalid: the anchor is not usable, or the estate declares it.
    """
    kind = anchor_kind(name)
    if kind == SPIFFE:
        name = name.rstrip("/")
    add_anchor(TrustStore(), kind, name, settings)  # validate before anything is written
    stored = {**dict(settings), SPIFFE if kind == SPIFFE else "oidc_issuer": name}
    with engine.begin() as connection:
        origin = connection.execute(
            select(trust_anchors.c.origin).where(trust_anchors.c.name == name)
        ).scalar()
        if origin is not None and origin != CLI_ORIGIN:
            raise TrustConfigInvalid(
                f"trust anchor `{name}` is declared by the estate; change it in the estate files"
            )
        if origin is None:
            connection.execute(
                insert(trust_anchors).values(
                    name=name, kind=kind, settings=stored, origin=CLI_ORIGIN
                )
            )
        else:
            connection.execute(
                update(trust_anchors)
                .where(trust_anchors.c.name == name)
                .values(kind=kind, settings=stored)
            )
        _record(connection, actor, "trust.add" if origin is None else "trust.update", name, now)
    return kind


def remove_trust_anchor(engine: Engine, name: str, *, actor: str, now: datetime) -> bool:
    """Stop trusting an anchor made from the command line; ``False`` if there was none.

    Raises:
        TrustConfigInvalid: the estate declares it.
    """
    with engine.begin() as connection:
        origin = connection.execute(
            select(trust_anchors.c.origin).where(trust_anchors.c.name == name)
        ).scalar()
        if origin is None:
            return False
        if origin != CLI_ORIGIN:
            raise TrustConfigInvalid(
                f"trust anchor `{name}` is declared by the estate; remove it from the estate files"
            )
        connection.execute(delete(trust_anchors).where(trust_anchors.c.name == name))
        _record(connection, actor, "trust.remove", name, now)
    return True


def _record(connection: Connection, actor: str, action: str, name: str, now: datetime) -> None:
    append_audit(
        connection,
        [{"at": now, "actor": actor, "action": action, "target": name, "details": {}}],
    )
