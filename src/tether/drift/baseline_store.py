"""Baselines in the store: learn them from stored events and decisions, version, load.

``rebuild_baselines`` reads the learning window (default 30 days up to ``now``) of the
``events`` and ``decisions`` tables, oldest first, feeds each identity's observations to a
:class:`~tether.drift.baselines.BaselineLearner` and stores the result as a new version
in ``drift_baselines`` (the previous versions stay, for the record).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    Text,
    case,
    cast,
    func,
    insert,
    null,
    select,
)

from tether.drift.baselines import BaselineLearner, LearnedBaseline
from tether.drift.cloud import CLOUD_SOURCES
from tether.drift.directory import Directory
from tether.drift.model import Observation
from tether.drift.observations import (
    LONG_TERM_KEY_PREFIX,
    OBSERVED_COLUMNS,
    from_decision,
    observation_of,
)
from tether.store.drift_tables import drift_baselines
from tether.store.tables import decisions
from tether.store.telemetry_tables import events

DEFAULT_WINDOW = timedelta(days=30)
_CHUNK = 2000


def select_observed_events() -> Select[Any]:
    """``select`` of the :data:`~tether.drift.observations.OBSERVED_COLUMNS` of ``events``
    (what :func:`~tether.drift.observations.observation_of` reads, in its order), with
    ``raw`` as stored text, and only where it holds a long-term AWS key id (``AKIA``): the
    one field of it an observation reads, so the rest is neither sent nor decoded."""
    text = cast(events.c.raw, Text)
    raw = case((text.contains(LONG_TERM_KEY_PREFIX), text), else_=null())
    return select(*(raw.label("raw") if c == "raw" else events.c[c] for c in OBSERVED_COLUMNS))


def stored_observations(
    connection: Connection,
    directory: Directory,
    *,
    since: datetime,
    until: datetime,
    identity_id: str | None = None,
    unattributed: bool = False,
) -> Iterator[Observation]:
    """Observations of stored events, then stored decisions, in the window (each oldest first).

    With ``unattributed``, cloud audit events naming no principal are observed too (as
    :data:`~tether.drift.observations.UNATTRIBUTED`); a baseline has no use for them.
    """
    attributed: ColumnElement[bool] = events.c.identity_id.is_not(None)
    if unattributed:
        attributed = attributed | events.c.source.in_(sorted(CLOUD_SOURCES))
    query = (
        select_observed_events()
        .where(events.c.at >= since, events.c.at < until, attributed)
        .order_by(events.c.seq)
    )
    if identity_id is not None:
        query = query.where(events.c.identity_id == identity_id)
    result = connection.execution_options(yield_per=_CHUNK).execute(query)
    for rows in result.partitions():
        # Rows by position, a chunk at a time: no mapping per row (detection reads two
        # dozen fields of every event).
        for values in rows:
            obs = observation_of(values, directory)
            if obs is not None:
                yield obs
    query = (
        select(decisions)
        .where(decisions.c.at >= since, decisions.c.at < until)
        .order_by(decisions.c.seq)
    )
    if identity_id is not None:
        query = query.where(
            (decisions.c.subject_id == identity_id) | (decisions.c.caller == identity_id)
        )
    for row in connection.execution_options(yield_per=_CHUNK).execute(query).mappings():
        for obs in from_decision(row, directory):
            if identity_id is None or obs.identity_id == identity_id:
                yield obs


def rebuild_baselines(
    engine: Engine,
    directory: Directory,
    *,
    now: datetime,
    window: timedelta = DEFAULT_WINDOW,
    identity_id: str | None = None,
) -> list[LearnedBaseline]:
    """Learn and store a new baseline version for one identity (or every observed one)."""
    since = now - window
    learners: dict[str, BaselineLearner] = {}
    with engine.connect() as connection:
        for obs in stored_observations(
            connection, directory, since=since, until=now, identity_id=identity_id
        ):
            learner = learners.get(obs.identity_id)
            if learner is None:
                learner = learners[obs.identity_id] = BaselineLearner(obs.identity_id)
            learner.add(obs)
    if identity_id is not None and identity_id not in learners:
        learners[identity_id] = BaselineLearner(identity_id)
    built: list[LearnedBaseline] = []
    with engine.begin() as connection:
        versions = (
            dict(
                connection.execute(
                    select(drift_baselines.c.identity_id, func.max(drift_baselines.c.version))
                    .where(drift_baselines.c.identity_id.in_(list(learners)))
                    .group_by(drift_baselines.c.identity_id)
                ).all()
            )
            if len(learners) <= 1000
            else _all_versions(connection)
        )
        for ident, learner in learners.items():
            baseline = learner.build(int(versions.get(ident) or 0) + 1)
            connection.execute(
                insert(drift_baselines).values(
                    identity_id=ident,
                    version=baseline.version,
                    built_at=now,
                    window_start=since,
                    window_end=now,
                    observations=baseline.observations,
                    data=baseline.to_json(),
                )
            )
            built.append(baseline)
    return built


def _all_versions(connection: Connection) -> dict[str, int]:
    rows = connection.execute(
        select(drift_baselines.c.identity_id, func.max(drift_baselines.c.version)).group_by(
            drift_baselines.c.identity_id
        )
    )
    return {r[0]: int(r[1]) for r in rows}


def load_latest_baselines(connection: Connection) -> dict[str, LearnedBaseline]:
    """The newest version of every identity's baseline."""
    latest = (
        select(drift_baselines.c.identity_id, func.max(drift_baselines.c.version).label("v"))
        .group_by(drift_baselines.c.identity_id)
        .subquery()
    )
    rows = connection.execute(
        select(drift_baselines).join(
            latest,
            (drift_baselines.c.identity_id == latest.c.identity_id)
            & (drift_baselines.c.version == latest.c.v),
        )
    )
    return {
        r.identity_id: LearnedBaseline.from_json(r.identity_id, r.version, r.observations, r.data)
        for r in rows
    }


def latest_built_at(connection: Connection) -> datetime | None:
    value = connection.execute(select(func.max(drift_baselines.c.built_at))).scalar()
    return value if isinstance(value, datetime) else None
