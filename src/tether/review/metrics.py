"""Estate metrics: the share of identities with excessive privilege and not rotated in policy.

Two figures, shown beside the industry figures NHIMG quotes (97 % of NHIs have excessive
privileges, 71 % are not rotated within recommended time frames):

* **excessive privilege** = identities (not offboarded) with at least one entitlement, of
  which some entitled action went unused in the window, over all such identities. An
  entitled action is used when an allowed or constrained decision for the identity, or an
  allowed ingested event attributed to it, names that action on a resource one of the
  entitlement's patterns matches (an event that names no resource type matches on the
  action alone);
* **not rotated within policy** = identities holding a long-lived static secret that is
  ``rotation_overdue`` (:mod:`tether.review.lifecycle`), over all identities holding one.

Each run of :func:`record_snapshot` keeps one row in ``estate_metric_snapshots``, so the
trend over time is the list of past snapshots (:func:`snapshots`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, select

from tether.estate import ResourcePattern, parse_pattern
from tether.review.lifecycle import IdentityLifecycle, identity_lifecycles
from tether.review.report_model import ReportSection, Row, section
from tether.store.lifecycle_tables import estate_metric_snapshots
from tether.store.tables import decisions, entitlements
from tether.store.telemetry_tables import events
from tether.tokens.ledger import utc

DEFAULT_WINDOW_DAYS = 90
INDUSTRY_EXCESSIVE = 97.0
INDUSTRY_NOT_ROTATED = 71.0
INDUSTRY_SOURCE = "NHIMG"


@dataclass(frozen=True)
class EstateMetrics:
    at: datetime
    window_days: int
    identities: int
    entitled: int
    excessive: tuple[str, ...]
    rotation_governed: int
    not_rotated: tuple[str, ...]
    seq: int | None = None

    @property
    def excessive_share(self) -> float | None:
        return _share(len(self.excessive), self.entitled)

    @property
    def not_rotated_share(self) -> float | None:
        return _share(len(self.not_rotated), self.rotation_governed)

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "window_days": self.window_days,
            "identities": self.identities,
            "excessive_privilege": {
                "share_percent": self.excessive_share,
                "count": len(self.excessive),
                "of": self.entitled,
                "identities": list(self.excessive),
                "industry_percent": INDUSTRY_EXCESSIVE,
            },
            "not_rotated": {
                "share_percent": self.not_rotated_share,
                "count": len(self.not_rotated),
                "of": self.rotation_governed,
                "identities": list(self.not_rotated),
                "industry_percent": INDUSTRY_NOT_ROTATED,
            },
            "industry_source": INDUSTRY_SOURCE,
        }


def _share(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def compute_metrics(
    engine: Engine,
    *,
    now: datetime | None = None,
    window_days: int = DEFAULT_WINDOW_DAYS,
    lifecycles: Sequence[IdentityLifecycle] | None = None,
) -> EstateMetrics:
    """The two estate figures now (nothing is stored; see :func:`record_snapshot`)."""
    moment = now or datetime.now(UTC)
    items = list(lifecycles) if lifecycles is not None else identity_lifecycles(engine, now=moment)
    active = {i.identity_id for i in items if i.offboarding is None and i.status != "offboarded"}
    since = moment - timedelta(days=window_days)
    grants: dict[str, list[tuple[list[str], list[ResourcePattern]]]] = defaultdict(list)
    observed: dict[str, set[tuple[str, str | None, str | None]]] = defaultdict(set)
    with engine.connect() as connection:
        for identity, actions, resources in connection.execute(
            select(entitlements.c.identity_id, entitlements.c.actions, entitlements.c.resources)
        ):
            if identity in active:
                patterns = [parse_pattern(text) for text in resources or ()]
                grants[identity].append(
                    (list(actions or ()), [p for p in patterns if not isinstance(p, str)])
                )
        decided = (
            select(
                decisions.c.subject_id,
                decisions.c.action,
                decisions.c.resource_type,
                decisions.c.resource_id,
            )
            .distinct()
            .where(
                decisions.c.at >= since,
                decisions.c.outcome.in_(("allow", "constrain")),
                decisions.c.subject_id.in_(list(grants)),
            )
        )
        seen = (
            select(events.c.identity_id, events.c.action, events.c.resource_type, events.c.resource)
            .distinct()
            .where(
                events.c.at >= since,
                events.c.outcome == "allowed",
                events.c.identity_id.in_(list(grants)),
            )
        )
        for query in (decided, seen):
            for identity, action, resource_type, resource in connection.execute(query):
                observed[identity].add((action, resource_type, resource))
    excessive = sorted(
        identity for identity, held in grants.items() if _some_unused(held, observed[identity])
    )
    governed = [i for i in items if i.identity_id in active and i.credential.static]
    not_rotated = sorted(
        i.identity_id for i in governed if any(f == "rotation_overdue" for f, _ in i.flags)
    )
    return EstateMetrics(
        at=moment,
        window_days=window_days,
        identities=len(active),
        entitled=len(grants),
        excessive=tuple(excessive),
        rotation_governed=len(governed),
        not_rotated=tuple(not_rotated),
    )


def _some_unused(
    held: Iterable[tuple[list[str], list[ResourcePattern]]],
    observed: set[tuple[str, str | None, str | None]],
) -> bool:
    for actions, patterns in held:
        for action in actions:
            if not any(
                seen_action == action
                and (
                    resource_type is None
                    or any(p.matches(resource_type, resource or "") for p in patterns)
                )
                for seen_action, resource_type, resource in observed
            ):
                return True
    return False


def record_snapshot(engine: Engine, metrics: EstateMetrics) -> EstateMetrics:
    """Keep ``metrics`` as one snapshot of the trend; the stored value (with its ``seq``)."""
    with engine.begin() as connection:
        result = connection.execute(
            insert(estate_metric_snapshots).values(
                at=metrics.at,
                window_days=metrics.window_days,
                identities=metrics.identities,
                entitled=metrics.entitled,
                excessive=len(metrics.excessive),
                excessive_share=metrics.excessive_share,
                rotation_governed=metrics.rotation_governed,
                not_rotated=len(metrics.not_rotated),
                not_rotated_share=metrics.not_rotated_share,
                details={
                    "excessive": list(metrics.excessive),
                    "not_rotated": list(metrics.not_rotated),
                },
            )
        )
        key = result.inserted_primary_key
    seq = int(key[0]) if key is not None else None
    return replace(metrics, seq=seq)


def snapshots(engine: Engine, *, last: int = 10) -> list[EstateMetrics]:
    """The newest ``last`` snapshots, oldest first (the trend)."""
    query = (
        select(estate_metric_snapshots).order_by(estate_metric_snapshots.c.seq.desc()).limit(last)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).mappings().all()
    return [
        EstateMetrics(
            at=utc(r["at"]),
            window_days=r["window_days"],
            identities=r["identities"],
            entitled=r["entitled"],
            excessive=tuple((r["details"] or {}).get("excessive", ())),
            rotation_governed=r["rotation_governed"],
            not_rotated=tuple((r["details"] or {}).get("not_rotated", ())),
            seq=r["seq"],
        )
        for r in reversed(rows)
    ]


def metrics_section(current: EstateMetrics, trend: Sequence[EstateMetrics]) -> ReportSection:
    """The two figures beside the industry's, then one row per past snapshot."""
    rows: list[Row] = [
        {
            "row_type": "excessive_privilege",
            "row_id": "metric:excessive_privilege",
            "metric": "excessive privilege",
            "at": current.at.isoformat(),
            "share_percent": current.excessive_share,
            "count": len(current.excessive),
            "of": current.entitled,
            "industry_percent": INDUSTRY_EXCESSIVE,
        },
        {
            "row_type": "not_rotated",
            "row_id": "metric:not_rotated",
            "metric": "not rotated within policy",
            "at": current.at.isoformat(),
            "share_percent": current.not_rotated_share,
            "count": len(current.not_rotated),
            "of": current.rotation_governed,
            "industry_percent": INDUSTRY_NOT_ROTATED,
        },
    ]
    for past in trend:
        for metric, share, count, whole in (
            ("excessive privilege", past.excessive_share, len(past.excessive), past.entitled),
            (
                "not rotated within policy",
                past.not_rotated_share,
                len(past.not_rotated),
                past.rotation_governed,
            ),
        ):
            rows.append(
                {
                    "row_type": "estate_metric",
                    "row_id": f"snapshot:{past.seq}:{metric}",
                    "metric": metric,
                    "at": past.at.isoformat(),
                    "share_percent": share,
                    "count": count,
                    "of": whole,
                    "industry_percent": INDUSTRY_EXCESSIVE
                    if metric == "excessive privilege"
                    else INDUSTRY_NOT_ROTATED,
                }
            )
    summary = {
        "excessive privilege %": current.excessive_share or 0.0,
        f"industry ({INDUSTRY_SOURCE}) excessive %": INDUSTRY_EXCESSIVE,
        "not rotated %": current.not_rotated_share or 0.0,
        f"industry ({INDUSTRY_SOURCE}) not rotated %": INDUSTRY_NOT_ROTATED,
    }
    return section(
        "metrics",
        "Estate metrics",
        ("metric", "at", "share_percent", "count", "of", "industry_percent"),
        rows,
        summary=summary,
        frameworks={"owasp-asi": ["ASI03"], "nist-csf": ["PR.AA-05", "GV.OV-03"]},
        description=(
            f"Share of identities with excessive privilege (entitled, some entitlement unused "
            f"in {current.window_days} days) and share of static secrets not rotated within "
            f"policy, beside the industry figures ({INDUSTRY_SOURCE}); then the trend."
        ),
        chart="bar",
    )


def review_sections(
    engine: Engine, *, now: datetime, since: datetime, identity: str | None
) -> list[ReportSection]:
    """The estate metrics of a review report (estate-wide: none for a single identity)."""
    if identity is not None:
        return []
    current = compute_metrics(engine, now=now, window_days=max(1, (now - since).days))
    return [metrics_section(current, snapshots(engine))]
