"""What the store records, as the edges read it: the read models behind ``/v1`` and the CLI.

The HTTP routes (and the dashboard) ask :class:`Records` for the inventory, decisions,
access paths, open tasks and tokens, findings and drift scores, exceptions, lifecycle,
grants, metrics and review sign-offs,
instead of handing the SQLAlchemy engine to each domain function themselves. Reads that
must see what was just decided (paths, reports) commit the queued decisions first.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from tether.drift.exceptions import (
    DriftException,
    add_exception,
    expire_exception,
    list_exceptions,
)
from tether.drift.findings import (
    DailyScore,
    FindingQuery,
    daily_scores,
    query_findings,
    unexcepted_counts,
)
from tether.drift.model import Finding
from tether.inventory import list_decisions, list_identities, show_identity
from tether.live import PolicySnapshot
from tether.paths import DEFAULT_LIMIT, AccessPath, build_path
from tether.review.access import AccessReview, review_access
from tether.review.grants import GrantReview, OAuthGrant, list_grants, review_grants
from tether.review.lifecycle import DEFAULT_STALE_DAYS, IdentityLifecycle, identity_lifecycles
from tether.review.metrics import EstateMetrics, compute_metrics, snapshots
from tether.review.report import Report
from tether.review.signoff import SignOff, get_sign_off, recent_sign_offs, sign_off
from tether.store.sink import DecisionSink
from tether.tokens.ledger import IssuedToken, list_tasks, live_tokens_of_tasks
from tether.tokens.tasks import TaskRecord


class Records:
    """The read side of one store (and the record-keeping writes of exceptions and sign-offs)."""

    def __init__(
        self,
        engine: Engine,
        decisions: DecisionSink,
        snapshot: Callable[[], PolicySnapshot],
    ) -> None:
        self._engine = engine
        self._decisions = decisions
        self._snapshot = snapshot

    # --- inventory and decisions ---------------------------------------------------------

    def identities(self) -> list[dict[str, Any]]:
        return list_identities(self._engine)

    def identity(self, identity_id: str) -> dict[str, Any]:
        """Raises: NotFound."""
        return show_identity(self._engine, identity_id)

    def decisions(self, *, limit: int, **filters: Any) -> list[dict[str, Any]]:
        return list_decisions(self._engine, limit=limit, **filters)

    def access_path(
        self,
        identity_id: str,
        *,
        task: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> AccessPath:
        # Decisions are committed in batches: commit what is queued first, so a path read
        # right after a decision shows it.
        self._decisions.flush()
        return build_path(
            self._engine,
            identity_id,
            task=task,
            since=since,
            until=until,
            limit=limit,
            classifier=self._snapshot().classifier,
        )

    # --- tasks and tokens -----------------------------------------------------------------

    def open_tasks(self, identity_id: str, *, now: datetime, limit: int = 50) -> list[TaskRecord]:
        """The tasks of ``identity_id`` neither ended nor expired at ``now``, newest first."""
        return list_tasks(self._engine, identity_id=identity_id, state="open", limit=limit, now=now)

    def live_tokens(self, task_ids: list[str], *, now: datetime) -> list[IssuedToken]:
        """The tokens of those tasks neither revoked nor expired at ``now``, newest first."""
        return live_tokens_of_tasks(self._engine, task_ids, now=now)

    # --- findings and exceptions ---------------------------------------------------------

    def findings(self, query: FindingQuery) -> list[Finding]:
        return query_findings(self._engine, query)

    def open_finding_counts(self) -> dict[str, int]:
        """Per identity, how many of its findings no exception covers."""
        return unexcepted_counts(self._engine)

    def drift_scores(
        self, identity_id: str, *, since: datetime, until: datetime
    ) -> list[DailyScore]:
        """The identity's drift score per day (its highest unexcepted finding score)."""
        return daily_scores(self._engine, identity_id, since=since, until=until)

    def exceptions(self, *, now: datetime, expiring_within: timedelta) -> list[DriftException]:
        return list_exceptions(self._engine, now=now, expiring_within=expiring_within)

    def add_exception(self, **fields: Any) -> DriftException:
        """Raises: InvalidRequest (see :func:`tether.drift.exceptions.add_exception`)."""
        return add_exception(self._engine, **fields)

    def expire_exception(self, exception_id: str, *, actor: str, now: datetime) -> DriftException:
        """Raises: NotFound."""
        return expire_exception(self._engine, exception_id, actor=actor, now=now)

    # --- lifecycle, grants, metrics ------------------------------------------------------

    def lifecycles(
        self,
        *,
        now: datetime,
        stale_days: int = DEFAULT_STALE_DAYS,
        identity: str | None = None,
    ) -> list[IdentityLifecycle]:
        return identity_lifecycles(self._engine, now=now, stale_days=stale_days, identity=identity)

    def access_review(
        self, *, since: datetime, until: datetime, identity: str | None = None
    ) -> AccessReview:
        """Entitlement beside observed use (see :func:`tether.review.access.review_access`)."""
        return review_access(self._engine, since=since, until=until, identity=identity)

    def grants_of(self, identity_id: str) -> list[OAuthGrant]:
        """The third-party OAuth grants whose app is ``identity_id``."""
        return [g for g in list_grants(self._engine) if g.identity == identity_id]

    def grants(self, *, window_days: int, review_every_days: int) -> list[GrantReview]:
        return review_grants(
            self._engine, window_days=window_days, review_every_days=review_every_days
        )

    def metrics(self, *, window_days: int) -> EstateMetrics:
        return compute_metrics(self._engine, window_days=window_days)

    def metric_trend(self, *, last: int) -> list[EstateMetrics]:
        return snapshots(self._engine, last=last)

    # --- review sign-offs ----------------------------------------------------------------

    def recent_sign_offs(self) -> list[dict[str, Any]]:
        return recent_sign_offs(self._engine)

    def sign_off(self, report: Report, **fields: Any) -> SignOff:
        """Raises: Conflict (the report changed under the reviewer), InvalidRequest."""
        return sign_off(self._engine, report, **fields)

    def get_sign_off(self, review_id: str) -> SignOff:
        """Raises: NotFound."""
        return get_sign_off(self._engine, review_id)
