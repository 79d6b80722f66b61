"""The live estate: the policy snapshot every decision reads, and who is offboarded.

``tether apply`` writes a new estate revision to the store; :meth:`LiveEstate.reload`
compiles the newest one into a :class:`PolicySnapshot` and swaps it in whole, so a
decision sees one revision from start to end. A revision that cannot be compiled is not
retried (the same bundle fails the same way) and the last good snapshot keeps serving.
Offboarded identities (``tether identity offboard``) are a set read from the store, denied
at every decision.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Engine, func, select

from tether.estate.compiled import EMPTY_ESTATE, CompiledEstate, ResourceClassifier
from tether.policy import PolicyEngine, PolicyInvalid, scope_action_names
from tether.store.lifecycle_tables import offboardings
from tether.store.tables import estate_revisions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PolicySnapshot:
    """Everything a decision needs, swapped atomically on reload."""

    revision: int | None
    estate: CompiledEstate
    engine: PolicyEngine
    classifier: ResourceClassifier
    action_names: frozenset[str]

    @classmethod
    def of(cls, revision: int | None, estate: CompiledEstate) -> PolicySnapshot:
        actions = scope_action_names(estate.policies)
        return cls(revision, estate, estate.engine(), estate.classifier(), frozenset(actions))


class LiveEstate:
    """The store's newest estate revision, compiled, and the offboarded identities."""

    def __init__(self, store: Engine) -> None:
        self._store = store
        self.snapshot = PolicySnapshot.of(None, EMPTY_ESTATE)
        self.offboarded: frozenset[str] = frozenset()
        self._unloadable_revision: int | None = None

    def estate(self) -> CompiledEstate:
        return self.snapshot.estate

    def revision_and_estate(self) -> tuple[int | None, CompiledEstate]:
        snapshot = self.snapshot
        return snapshot.revision, snapshot.estate

    def latest_revision(self) -> int | None:
        with self._store.connect() as connection:
            value = connection.execute(select(func.max(estate_revisions.c.revision))).scalar()
        return int(value) if value is not None else None

    def reload(self) -> bool:
        """Load the newest estate revision if it differs from the live one.

        Raises:
            PolicyInvalid: the newest revision cannot be compiled (the live one stays).
        """
        latest = self.latest_revision()
        if latest in (self.snapshot.revision, self._unloadable_revision):
            return False
        with self._store.connect() as connection:
            bundle = connection.execute(
                select(estate_revisions.c.bundle).where(estate_revisions.c.revision == latest)
            ).scalar_one()
        try:
            snapshot = PolicySnapshot.of(latest, CompiledEstate.from_bundle(bundle))
        except Exception as exc:
            self._unloadable_revision = latest
            raise PolicyInvalid(f"estate revision `{latest}` cannot be loaded: {exc!r}") from exc
        self.snapshot = snapshot
        log.info("loaded estate revision %s", latest)
        return True

    def refresh(self) -> None:
        """:meth:`reload`, for a background loop: a failure is logged (once per broken
        revision) and the live snapshot keeps serving."""
        try:
            self.reload()
        except Exception:
            log.exception(
                "reloading the estate failed; keeping revision %s", self.snapshot.revision
            )

    def refresh_offboarded(self) -> None:
        """Reload the ids of offboarded identities."""
        with self._store.connect() as connection:
            ids = connection.execute(select(offboardings.c.identity_id)).scalars()
            self.offboarded = frozenset(ids)
