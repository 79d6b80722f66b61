"""The flat view of an identity's path: its events and decisions merged in time order.

The structured path (workload proof → task → tokens → tool calls → resources) is
:func:`tether.paths.build_path`; this is the timeline beside it: every stored
event attributed to the identity (``ix_events_identity_at``) and every decision made about
it as a subject (``ix_decisions_subject_at``), in time order, optionally within
``[since, until)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select

from tether.paths._model import recorded_link
from tether.store.tables import decisions
from tether.store.telemetry_tables import events


@dataclass(frozen=True, slots=True)
class PathStep:
    """One step of an identity's observed path: an ingested event or a tether decision."""

    at: datetime
    kind: str  # event | decision
    ref: str  # the event's seq, or the decision id
    source: str
    action: str
    resource: str | None
    outcome: str
    task_id: str | None = None
    token_id: str | None = None
    tool_name: str | None = None
    call_id: str | None = None
    parent_call_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        found = asdict(self)
        found["at"] = self.at.isoformat()
        return found


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def identity_path(
    engine: Engine,
    identity_id: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 1000,
) -> list[PathStep]:
    """The first ``limit`` steps of ``identity_id``'s path in time order."""
    event_query = select(events).where(events.c.identity_id == identity_id)
    decision_query = select(decisions).where(decisions.c.subject_id == identity_id)
    if since is not None:
        event_query = event_query.where(events.c.at >= since)
        decision_query = decision_query.where(decisions.c.at >= since)
    if until is not None:
        event_query = event_query.where(events.c.at < until)
        decision_query = decision_query.where(decisions.c.at < until)
    event_query = event_query.order_by(events.c.at, events.c.seq).limit(limit)
    decision_query = decision_query.order_by(decisions.c.at, decisions.c.seq).limit(limit)
    with engine.connect() as connection:
        steps = [
            PathStep(
                _utc(r["at"]),
                "event",
                str(r["seq"]),
                r["source"],
                r["action"],
                r["resource"],
                r["outcome"],
                r["task_id"],
                r["token_id"],
                r["tool_name"],
                r["call_id"],
                r["parent_call_id"],
            )
            for r in connection.execute(event_query).mappings()
        ]
        for r in connection.execute(decision_query).mappings():
            recorded = recorded_link(r["context"])
            steps.append(
                PathStep(
                    _utc(r["at"]),
                    "decision",
                    r["decision_id"],
                    "tether",
                    r["action"],
                    f"{r['resource_type']}::{r['resource_id']}",
                    r["outcome"],
                    recorded[0],
                    recorded[1],
                )
            )
    steps.sort(key=lambda step: step.at)
    return steps[:limit]
